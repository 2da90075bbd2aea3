"""Turn a finished fine-tuning run into an Ollama model on the host: merge the run's output into
its base model (``llamafactory-cli export`` in a waited-for systemd unit), ``ollama create`` from the
merged directory, and one smoke prompt through Ollama's API. Starting and following the training is
``workflow``.
"""

from __future__ import annotations

import json
import shlex

from components.catalogue import service

from . import training
from .host import Host, RemoteError
from .workflow import RunInfo, exec_line, host_run_dir, log_tail, render_script, systemd_run, unit_name

OLLAMA = "/usr/local/bin/ollama"
OLLAMA_API = service("ollama").url
SMOKE_PROMPT = "In one short sentence: what are you?"


def export_merged(host: Host, run: RunInfo, merge_yaml: str, *, token: bool) -> str:
    """Run ``llamafactory-cli export`` (waits); returns the host path of the merged directory."""
    d = host_run_dir(run.name)
    merged_host = f"{d}/merged"
    host.remote.write(f"{d}/merge.yaml", merge_yaml)
    cli = f"llamafactory-cli export {training.run_dir(run.name)}/merge.yaml"
    script = render_script(
        run.name, "export", [f"rm -rf {merged_host}", exec_line(cli, token=token, extra_env={}, log=f"{d}/export.log")]
    )
    host.remote.write(f"{d}/export.sh", script, mode="755")
    unit = f"{unit_name(run.name)}-export"
    _run_logged(
        host,
        run.name,
        f"systemctl reset-failed {unit} 2>/dev/null; "
        + systemd_run(unit, f"{d}/export.sh", f"llm-platform export {run.name}", wait=True),
        what="llamafactory-cli export",
        log="export.log",
        failed=f"export of {run.name} failed",
    )
    if host.remote.read(f"{merged_host}/Modelfile") is None:
        raise RemoteError(f"export of {run.name} wrote no {merged_host}/Modelfile; see {d}/export.log")
    return merged_host


def ollama_create(host: Host, run: RunInfo, model: str, merged_host: str, quantize: str | None) -> None:
    d = host_run_dir(run.name)
    q = f" --quantize {shlex.quote(quantize)}" if quantize else ""
    _run_logged(
        host,
        run.name,
        f"cd {merged_host} && {OLLAMA} create {shlex.quote(model)} -f Modelfile{q} > {d}/ollama-create.log 2>&1",
        what="ollama create",
        log="ollama-create.log",
        failed=f"ollama create {model} failed",
    )


def _run_logged(host: Host, name: str, command: str, *, what: str, log: str, failed: str) -> None:
    """Run a step of run ``name`` that writes ``log`` in its directory (no time limit); when it fails,
    RemoteError: ``failed``, its exit code and the log's last lines."""
    res = host.remote.run(command, check=False, timeout=None, what=what)
    if res.rc != 0:
        raise RemoteError(
            f"{failed} (exit {res.rc}); last lines of {host_run_dir(name)}/{log}:\n{log_tail(host, name, log)}"
        )


def smoke(host: Host, model: str, prompt: str = SMOKE_PROMPT, timeout: int = 900) -> str:
    """Ask the new model one question through Ollama's API; returns the (non-empty) answer."""
    body = json.dumps({"model": model, "prompt": prompt, "stream": False, "options": {"num_predict": 64}})
    res = host.remote.run(
        f"curl -sS --max-time {timeout} -X POST {OLLAMA_API}/api/generate -d @-",
        input=body,
        check=False,
        timeout=timeout + 60,
        what="smoke prompt",
    )
    if res.rc != 0:
        raise RemoteError(f"smoke prompt to {model} failed: {(res.stderr or res.stdout).strip()[:300]}")
    try:
        answer = json.loads(res.stdout).get("response", "")
    except (ValueError, AttributeError):
        raise RemoteError(
            f"smoke prompt to {model}: unexpected answer from Ollama: {res.stdout.strip()[:300]}"
        ) from None
    if not isinstance(answer, str) or not answer.strip():
        raise RemoteError(f"smoke prompt to {model}: empty answer ({res.stdout.strip()[:300]})")
    return answer.strip()
