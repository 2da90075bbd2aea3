"""Issue 20: zero-downtime rotation of the model host's public key (operate/rotate_key.py), with a fake
Pulumi/App Platform and a fake host layer at the boundaries. The fake host accepts what a converge
would render from the stack's secrets at that moment (proxy.accepted_keys), and the fake app uses
the key it last got pushed, once its deployment is live: every step checks that the key the app uses
is accepted by the host."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import pytest

from components.hostdata import host_secrets, required_host_secrets
from hosts import secret_values
from hosts.roles import proxy
from operate import automation
from operate import rotate_key as rk

ROOT = Path(__file__).resolve().parents[2]
OLD = "old-key-0123456789abcdef"


class World:
    def __init__(self, *, live_after: int = 1, pending=(), refuse_new: bool = False):
        self.config = {"vllmApiKey": OLD}
        self.events: list[str] = []
        self.host_keys: list[str] = [OLD]  # what nginx accepts (rendered at the last converge)
        self.app_key = OLD  # what the running app sends
        self.pushed: str | None = None
        self.live_after = live_after
        self.pending = list(pending)
        self.refuse_new = refuse_new
        self.failed_requests = 0

    def request(self) -> None:
        """One gateway call with the app's current key."""
        if self.app_key not in self.host_keys:
            self.failed_requests += 1

    def log(self, event: str) -> None:
        self.events.append(event)
        self.request()


class FakePlatform:
    def __init__(self, w: World):
        self.w = w

    def get(self, key):
        return self.w.config.get(key)

    def set(self, key, value):
        self.w.config[key] = value
        self.w.log(f"set {key}")

    def remove(self, key):
        self.w.config.pop(key, None)
        self.w.log(f"remove {key}")

    def pending_changes(self):
        return self.w.pending

    def push(self):
        self.w.pushed = self.w.config["vllmApiKey"]
        self.w.log("push")
        return "2026-01-01T00:00:00Z"

    def live(self, since):
        self.w.live_after -= 1
        if self.w.live_after <= 0:
            self.w.app_key = self.w.pushed  # the new deployment serves the traffic
            self.w.log("live")
            return True, "deployment d2 ACTIVE"
        self.w.log("deploying")
        return False, "deployment d2 DEPLOYING"


class FakeHosts:
    def __init__(self, w: World):
        self.w = w

    def converge(self):
        keys = [self.w.config["vllmApiKey"]]
        if self.w.config.get("vllmApiKeyPrevious"):
            keys.append(self.w.config["vllmApiKeyPrevious"])
        if self.w.refuse_new:
            keys = [k for k in keys if k == OLD]
        self.w.host_keys = keys
        self.w.log("converge")

    def accepts(self, key):
        self.w.log("probe " + ("old" if key == OLD else "new"))
        return key in self.w.host_keys


def run(w: World, **kw):
    said: list[str] = []
    clock = iter(range(0, 100000, 10))
    rk.rotate(
        "vllm",
        FakePlatform(w),
        FakeHosts(w),
        rk.Options(grace=5, timeout=kw.pop("timeout", 60), poll=10),
        say=said.append,
        sleep=lambda s: w.log(f"sleep {s:.0f}"),
        clock=lambda: next(clock),
        **kw,
    )
    return said


def test_rotation_order_and_no_failed_request():
    w = World(live_after=3)
    said = run(w)
    assert w.events == [
        "set vllmApiKeyPrevious",
        "set vllmApiKey",  # the old key is kept before the new one is written
        "converge",
        "probe new",
        "probe old",  # hosts accept both before App Platform changes
        "push",
        "deploying",
        "sleep 10",
        "deploying",
        "sleep 10",
        "live",  # the app's deployment awaited
        "sleep 5",  # grace for requests in flight
        "remove vllmApiKeyPrevious",
        "converge",
        "probe old",
        "probe new",
    ]
    assert w.failed_requests == 0
    assert w.app_key != OLD and w.host_keys == [w.app_key] and "vllmApiKeyPrevious" not in w.config
    assert not any(OLD in line or w.app_key in line for line in said)  # no key value printed


def test_old_key_accepted_until_the_deployment_is_live():
    w = World(live_after=10**6)
    with pytest.raises(rk.RotationError, match="not live after 60 s .*both keys stay accepted; rerun to resume"):
        run(w)
    assert OLD in w.host_keys and w.config["vllmApiKeyPrevious"] == OLD and w.app_key == OLD
    assert "remove vllmApiKeyPrevious" not in w.events and w.failed_requests == 0


def test_rerun_resumes_with_the_same_new_key():
    w = World(live_after=10**6)
    with pytest.raises(rk.RotationError):
        run(w)
    new = w.config["vllmApiKey"]
    w.live_after = 1
    said = run(w)
    assert said[0].startswith("resuming") and w.config["vllmApiKey"] == new and w.host_keys == [new]
    assert w.failed_requests == 0


def test_hosts_that_refuse_the_new_key_stop_before_app_platform():
    w = World(refuse_new=True)
    with pytest.raises(rk.RotationError, match="refuse the new key"):
        run(w)
    assert "push" not in w.events and w.app_key == OLD and w.failed_requests == 0


def test_other_pending_changes_refused_before_anything_changes():
    w = World(pending=["update llm-app"])
    with pytest.raises(rk.CannotStart, match=r"other changes pending \(update llm-app\)"):
        run(w)
    assert w.events == [] and w.config == {"vllmApiKey": OLD}


def test_a_new_key_the_host_would_refuse_is_refused_first():
    w = World()
    with pytest.raises(rk.CannotStart, match="16-512 characters"):
        run(w, key="has a space in it 0123456789")
    assert w.events == []


def test_nothing_to_rotate():
    w = World()
    w.config.clear()
    with pytest.raises(rk.CannotStart, match="no vllmApiKey"):
        run(w)


def test_generated_key_is_a_host_secret():
    from components.secrets import HOST_SECRET

    assert HOST_SECRET.fullmatch(rk.new_key())


def test_help_lists_exit_codes(capsys):
    from operate import cli

    assert cli.main(["rotate-key", "--help"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"exit codes.*\n  0 .*\n +here: rotated(.*\n)+  1 (.*\n)+ +here: a step failed(.*\n)+  2 ", out), (
        out
    )


# ---- the host layer: nginx enforces the public keys, vLLM has its own ------------------------------
@pytest.fixture
def secrets_env(monkeypatch):
    secret_values._file_values.cache_clear()
    monkeypatch.delenv(secret_values.FILE_ENV, raising=False)
    monkeypatch.setenv("LLM_SECRET_VLLM_API_KEY", "new-key-0123456789abcdef")
    yield monkeypatch
    secret_values._file_values.cache_clear()


def test_nginx_accepts_the_previous_key_during_a_rotation(secrets_env):
    assert proxy.accepted_keys() == ["new-key-0123456789abcdef"]
    secrets_env.setenv("LLM_SECRET_VLLM_API_KEY_PREVIOUS", OLD)
    assert proxy.accepted_keys() == ["new-key-0123456789abcdef", OLD]
    rendered = proxy.keys_map(proxy.accepted_keys())
    assert rendered.count("\n") == 2 and "old\\-key\\-0123456789abcdef" in rendered


def test_vllm_reads_only_its_host_local_key():
    assert "vllmApiKey" not in host_secrets(["vllm"]) and "vllmLocalKey" in required_host_secrets(["vllm"])
    assert {"vllmApiKey", "vllmApiKeyPrevious", "vllmLocalKey"} <= set(host_secrets(["proxy"]))
    assert "vllmApiKeyPrevious" not in required_host_secrets(["proxy"])


def test_nginx_sends_the_host_local_key_to_the_backend():
    assert (
        proxy.upstream_auth("local-key-0123456789") == 'proxy_set_header Authorization "Bearer local-key-0123456789";\n'
    )
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROOT / "hosts" / "templates"))
    text = env.get_template("nginx-https.conf.j2").render(
        domain="h.example.com",
        port=443,
        cert_dir="/c",
        backend="127.0.0.1:8000",
        backend_name="vllm",
        llamafactory=None,
        htpasswd="/h",
        upstream_auth=proxy.UPSTREAM_AUTH,
        admin_cidrs=["10.0.0.0/8"],
        node_exporter="127.0.0.1:9100",
        api_burst=40,
        api_conn=32,
    )
    v1 = text[text.index("location /v1/") : text.index("location = /_llm_api_key")]
    assert f"include {proxy.UPSTREAM_AUTH};" in v1


def test_the_local_key_is_required_where_a_host_is_and_never_on_app_platform():
    from components.secrets import SECRET_SPECS

    spec = {s.key: s for s in SECRET_SPECS}
    assert spec["vllmLocalKey"].required == "host" and spec["vllmLocalKey"].env is None
    assert spec["vllmApiKeyPrevious"].required == "never" and spec["vllmApiKeyPrevious"].env is None


# ---- the app's deployment ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("app", "live"),
    [
        ({"active_deployment": {"id": "d1", "phase": "ACTIVE", "created_at": "2025-12-31T23:00:00Z"}}, False),
        (
            {
                "active_deployment": {"id": "d1", "phase": "ACTIVE", "created_at": "2026-01-01T00:00:05Z"},
                "in_progress_deployment": {"id": "d3", "phase": "BUILDING"},
            },
            False,
        ),
        ({"active_deployment": {"id": "d2", "phase": "ACTIVE", "created_at": "2026-01-01T00:00:05Z"}}, True),
    ],
)
def test_deployment_live_only_when_a_deployment_since_the_push_is_active(app, live):
    assert automation.deployment_live(app, "2026-01-01T00:00:00Z")[0] is live
