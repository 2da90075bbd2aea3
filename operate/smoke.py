"""``scripts/smoke STACK|local``: send poultry-health prompts (French, English, Spanish) to the
stack's OpenAI-compatible endpoint and report the latency of each: the first request (the cold
start) on its own line, then p50/p95 of the warm ones, against the platform's phase 1 goal of 3 s.

How many: 40 prompts by default (the nine below in turn), so the warm p95 is taken over 39 samples.
The nearest-rank p95 of fewer than 20 samples is simply their maximum (the nine prompts alone
measured the single slowest answer); the cold start (a model loading, a scaled-to-zero provider
waking) is one event, shown against the goal but not mixed into the percentiles.

Endpoints (``endpoint``, from the resolved target, ``operate.targets``): ``local`` → the local test
host through nginx (HTTPS, pebble's CA, the generated key); a phase 2 stack → its model host
(``host_base_url`` output, ``vllmApiKey`` secret); a phase 1 stack → Hugging Face's serverless
router with the stack's ``huggingfaceApiKey`` and model, which is what the ``llm`` gateway calls in
phase 1.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from operate import cli
from operate.httpclient import ResolveAdapter, reason

TARGET_SECONDS = 3.0
SAMPLE_SIZE = 40  # prompts per run: 1 cold + 39 warm
P95_MIN_SAMPLES = 20  # below this, the nearest-rank p95 is the maximum
HF_ROUTER = "https://router.huggingface.co/v1"
TIMEOUT = (10, 120)  # seconds: connect, then read (an answer of max_tokens on a cold model)

PROMPTS: list[tuple[str, str]] = [
    ("fr", "Quels sont les premiers signes de coccidiose dans un lot de poulets de chair ?"),
    ("fr", "Quelle température faut-il sous l'éleveuse pour des poussins d'un jour ?"),
    ("fr", "Génère trois phrases qu'un éleveur pourrait poser à un chatbot sur l'indice de consommation."),
    ("en", "How can I improve the feed conversion ratio of my broilers?"),
    ("en", "What chick behaviour tells me the brooding temperature is too low?"),
    ("en", "Write three questions a farmer might ask a chatbot about coccidiosis vaccination."),
    ("es", "¿Cuál es la temperatura ideal para pollitos de un día?"),
    ("es", "¿Cómo se calcula el índice de conversión alimenticia en pollos de engorde?"),
    ("es", "Escribe tres frases que un avicultor podría decirle a un chatbot sobre la coccidiosis."),
]


@dataclass
class Endpoint:
    base_url: str  # ends with /v1
    api_key: str
    model: str
    ca_file: str | None = None
    connect_host: str | None = None  # connect here, but verify TLS for the URL's host (like curl --resolve)
    connect_port: int | None = None


@dataclass
class Result:
    lang: str
    prompt: str
    seconds: float
    ok: bool
    detail: str
    cold: bool = False  # the run's first request: reported apart from the warm percentiles


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Client:
    """Requests to one endpoint over one kept-alive session: to ``connect_host:connect_port`` when the
    endpoint names them (TLS still checked for the URL's host), verified against ``ca_file`` when
    given. No proxies, netrc or CA bundle from the environment, no retries, no redirects followed."""

    session: requests.Session
    url: str  # what requests are sent to: the base URL, or its connect address; no trailing slash
    verify: str | bool
    headers: dict[str, str] = field(default_factory=dict)

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> requests.Response:
        return self.session.request(
            method,
            self.url + path,
            headers={**self.headers, **(headers or {})},
            verify=self.verify,
            timeout=TIMEOUT,
            allow_redirects=False,
            **kwargs,
        )

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def client(ep: Endpoint) -> Client:
    url = urlsplit(ep.base_url)
    session = requests.Session()
    session.trust_env = False
    base, headers = ep.base_url.rstrip("/"), {}
    if ep.connect_host or ep.connect_port:
        port = ep.connect_port or url.port or (443 if url.scheme == "https" else 80)
        base = f"{url.scheme}://{ep.connect_host or url.hostname}:{port}{url.path.rstrip('/')}"
        headers["Host"] = url.netloc
        session.mount(f"{url.scheme}://", ResolveAdapter(url.hostname or ""))
    return Client(session, base, ep.ca_file or True, headers)


def ask(ep: Endpoint, prompt: str, conn: Client | None = None, max_tokens: int = 128) -> tuple[float, str]:
    own = conn is None
    conn = client(ep) if conn is None else conn
    body = json.dumps(
        {
            "model": ep.model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": 0.2,
        }
    )
    headers = {"Authorization": f"Bearer {ep.api_key}", "Content-Type": "application/json"}
    try:
        t0 = time.monotonic()
        resp = conn.request("POST", "/chat/completions", data=body.encode(), headers=headers)
        dt = time.monotonic() - t0
    finally:
        if own:
            conn.close()
    if resp.status_code != 200:
        raise RuntimeError(f"HTTP {resp.status_code}: {resp.content[:200].decode(errors='replace')}")
    doc = json.loads(resp.content)
    text = doc["choices"][0]["message"]["content"] or ""
    if not text.strip():
        raise RuntimeError("empty answer")
    return dt, text


def run(ep: Endpoint, count: int = SAMPLE_SIZE) -> list[Result]:
    """``count`` prompts, the PROMPTS in turn, one after the other; the first is marked cold."""
    results = []
    with client(ep) as conn:
        for i in range(count):
            lang, prompt = PROMPTS[i % len(PROMPTS)]
            t0 = time.monotonic()
            try:
                dt, text = ask(ep, prompt, conn)
                results.append(Result(lang, prompt, dt, True, text.strip().replace("\n", " ")[:60], cold=i == 0))
            except (RuntimeError, requests.RequestException, KeyError, ValueError) as exc:
                results.append(Result(lang, prompt, time.monotonic() - t0, False, reason(exc)[:120], cold=i == 0))
    return results


def report(results: list[Result], target: float = TARGET_SECONDS) -> tuple[str, bool]:
    lines = [f"{'lang':<4} {'seconds':>7}  {'ok':<3} prompt → answer"]
    for r in results:
        lines.append(
            f"{r.lang:<4} {r.seconds:7.3f}  {'yes' if r.ok else 'NO':<3} {r.prompt[:55]} → {r.detail}"
            + ("  (cold start)" if r.cold else "")
        )
    for r in (r for r in results if r.cold and r.ok):
        verdict = "within" if r.seconds <= target else "over"
        lines.append(
            f"cold start (first request) {r.seconds:.3f}s: {verdict} the {target:.1f}s target "
            "(reported apart; not in the percentiles)"
        )
    warm = [r.seconds for r in results if r.ok and not r.cold]
    if warm:
        p50, p95 = percentile(warm, 50), percentile(warm, 95)
        within = p95 <= target
        lines.append(
            f"warm: p50 {p50:.3f}s  p95 {p95:.3f}s over {len(warm)} warm prompts  target {target:.1f}s: "
            f"{'within target' if within else 'OVER TARGET'}"
        )
        if len(warm) < P95_MIN_SAMPLES:
            lines.append(
                f"note: the p95 of fewer than {P95_MIN_SAMPLES} prompts is their maximum; "
                f"send at least {P95_MIN_SAMPLES + 1} (--prompts)"
            )
    else:
        within = False
        lines.append("no prompt was answered" if not any(r.ok for r in results) else "no warm prompt was answered")
    all_ok = all(r.ok for r in results)
    lines.append(f"{sum(r.ok for r in results)}/{len(results)} answered")
    return "\n".join(lines), all_ok and within


# --------------------------------------------------------------------------------------------------
def served_model(data: Any) -> str:
    """The model a host's /v1 answers for (its ``HostData``): vLLM's served name, or Ollama's first model."""
    return data.vllm.served_model_name if data.proxy_backend == "vllm" else data.ollama.models[0]


def endpoint(target: Any) -> Endpoint:
    """The /v1 endpoint of a resolved target (``operate.targets``): its model host's (the local test
    host through nginx, HTTPS checked against pebble's CA; a stack's by its ``host_base_url``
    output), with the host's served model and ``vllmApiKey``; a stack without a host (phase 1):
    Hugging Face's router, with the stack's ``huggingfaceApiKey`` and model."""
    from components.settings import DEFAULT_MODEL
    from operate.automation import Unavailable

    def secret(values: dict[str, str], key: str) -> str:
        if not values.get(key):
            raise Unavailable(f"stack {target.name} has no {key} secret")
        return values[key]

    if target.is_local:
        from testhost.config import DOMAIN

        s = target.local
        key = secret(target.secrets, "vllmApiKey")
        model = served_model(target.hosts[0].data)
        return Endpoint(
            f"https://{DOMAIN}/v1",
            key,
            model,
            ca_file=str(s.acme_root_ca),
            connect_host="127.0.0.1",
            connect_port=s.https_port,
        )
    base = target.stack.outputs().get("host_base_url")
    if base is not None and base.value:
        return Endpoint(base.value, secret(target.secrets, "vllmApiKey"), served_model(target.hosts[0].data))
    config = target.stack.get_all_config()
    values = {k.removeprefix("llm-platform:"): v.value for k, v in config.items() if k.startswith("llm-platform:")}
    app = json.loads(values["app"]) if "app" in values else {}
    model = app.get("llm", {}).get("huggingfaceModel", DEFAULT_MODEL)
    return Endpoint(HF_ROUTER, secret(values, "huggingfaceApiKey"), model)


EXITS = {
    0: "every prompt was answered and the warm p95 is within the target (or --no-enforce)",
    1: "a prompt was not answered, or the warm p95 is over the target",
    2: "the endpoint cannot be reached, or credentials are missing",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    cli.add_stack(parser, local=True)
    parser.add_argument(
        "--prompts",
        type=int,
        default=SAMPLE_SIZE,
        help=f"prompts to send, the nine in turn (default {SAMPLE_SIZE}: 1 cold + {SAMPLE_SIZE - 1} warm)",
    )
    parser.add_argument("--target", type=float, default=TARGET_SECONDS, help="warm p95 latency goal in seconds")
    parser.add_argument("--no-enforce", action="store_true", help="report only; exit 0 even over the target")


def run_command(args: argparse.Namespace) -> int:
    if args.prompts < 1:
        raise cli.UsageError("--prompts must be at least 1")
    from operate import targets
    from operate.automation import Unavailable

    try:
        ep = endpoint(targets.resolve(args.stack, refuse_unapplied=False))
    except (Unavailable, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return cli.Exit.NOT_CHECKED
    print(f"smoke: {args.prompts} prompts to {ep.base_url} (model {ep.model}), the first one the cold start")
    try:
        results = run(ep, args.prompts)
    except requests.RequestException as exc:
        print(f"error: cannot reach {ep.base_url}: {reason(exc)}", file=sys.stderr)
        return cli.Exit.NOT_CHECKED
    text, good = report(results, args.target)
    print(text)
    return cli.Exit.OK if good or args.no_enforce else cli.Exit.FAILED
