"""Hostile or careless stack files, as `scripts/plan` sees them: each is refused with one line naming
the key (or file and line), never a traceback; the valid neighbours of each case are accepted."""

from __future__ import annotations

import copy
import json
import subprocess

import pytest

from components import yamlio

NS = "llm-platform"
ROGUE_KEY = "ssh-rsa AAAA"


@pytest.fixture
def plan_file(capsys, monkeypatch, tmp_path, pinned_stacks):
    """plan(text) → CompletedProcess of `scripts/plan prod` (in process) on that stack file text."""
    from components import stackfile
    from operate import cli

    def _plan(text: str | bytes, *args: str) -> subprocess.CompletedProcess:
        path = tmp_path / "Pulumi.prod.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        monkeypatch.setattr(stackfile, "STACKS_DIR", tmp_path)
        rc = cli.main(["plan", "prod", *args])
        out = capsys.readouterr()
        return subprocess.CompletedProcess(["prod"], rc, out.out, out.err)

    return _plan


@pytest.fixture
def prod(pinned_stacks) -> dict:
    return yamlio.load((pinned_stacks / "Pulumi.prod.yaml").read_text())


def edited(doc: dict, **changes) -> str:
    """The stack document with `a.b.c=value` style changes (keys under llm-platform:)."""
    doc = copy.deepcopy(doc)
    for path, value in changes.items():
        top, *rest = path.split("__")
        node = doc["config"]
        key = f"{NS}:{top}"
        if not rest:
            node[key] = value
            continue
        node = node.setdefault(key, {})
        for part in rest[:-1]:
            node = node.setdefault(part, {})
        node[rest[-1]] = value
    return yamlio.dump(doc)


def one_line(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 1, res.stdout[-500:]
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


# ---- §1: values that would reach a root shell, a unit file, nginx or htpasswd -------------------
@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"host__vllm__tag": "v0.11.0;touch${IFS}/tmp/pwned"}, "host.vllm.tag"),
        ({"host__vllm__tag": "LATEST"}, "host.vllm.tag"),
        ({"host__vllm__tag": "latest"}, "host.vllm.tag"),
        ({"host__vllm__tag": ""}, "host.vllm.tag"),
        ({"host__vllm__image": "vllm/vllm-openai $(id)"}, "host.vllm.image"),
        ({"host__vllm__model": "meta-llama/x' --trust-remote-code '"}, "host.vllm.model"),
        ({"host__vllm__servedModelName": 'name";evil'}, "host.vllm.servedModelName"),
        ({"host__ollama__models": ["x'; touch /tmp/pwned; echo '"]}, "host.ollama.models"),
        ({"host__ollama__keepAlive": "24h\nExecStartPre=/bin/sh -c 'touch /tmp/pwned'"}, "host.ollama.keepAlive"),
        ({"host__llamafactory__uiUser": "admin\nroot:$apr1$x$y"}, "host.llamafactory.uiUser"),
        ({"host__llamafactory__tag": "0.9.4;id"}, "host.llamafactory.tag"),
        ({"host__acmeEmail": "ops@intelia.example\nserver_name evil"}, "host.acmeEmail"),
        ({"host__domain": "llm.intelia.example;include /etc/shadow"}, "host.domain"),
        ({"host__sshPublicKeys": [ROGUE_KEY]}, "host.sshPublicKeys"),
        ({"host__adminCidrs": ["0.0.0.0/1", "128.0.0.0/1"]}, "host.adminCidrs"),
        ({"host__adminCidrs": ["::/1", "8000::/1"]}, "host.adminCidrs"),
        ({"host__adminCidrs": ["0.0.0.0/4"]}, "host.adminCidrs"),
        # an IPv6 scope id is one address to ipaddress, and str() keeps it: a root shell in ufw
        ({"host__adminCidrs": ["203.0.113.0/24", "2001:db8::1%$(id>&2);touch pwned/128"]}, "host.adminCidrs"),
        ({"host__adminCidrs": ["2001:db8::1%eth0/128"]}, "host.adminCidrs"),
        ({"host__adminCidrs": ["2001:db8::1%x\nallow all;/128"]}, "host.adminCidrs"),
        ({"host__adminCidrs": ["2001:DB8::/32"]}, "host.adminCidrs"),  # not its compressed form
        ({"host__adminCidrs": ["203.0.113.0/24", "203.0.113.0/24"]}, "host.adminCidrs"),
        ({"host__adminUser": "www-data"}, "host.adminUser"),
        ({"host__adminUser": "ollama"}, "host.adminUser"),
        ({"host__adminUser": "nobody"}, "host.adminUser"),
        ({"host__adminUser": "sshd"}, "host.adminUser"),
        ({"host__adminUser": "_apt"}, "host.adminUser"),
        ({"host__adminUser": "systemd-network"}, "host.adminUser"),
        ({"host__acmeEmail": "--server@x.example"}, "host.acmeEmail"),
        ({"budget": float("inf")}, "budget"),
        ({"budget": float("nan")}, "budget"),
        ({"app__aiService__instanceCount": True}, "app.aiService.instanceCount"),
        ({"app__aiService__envs": {"DB_PASSWORD": "hunter2"}}, "app.aiService.envs"),
        ({"app__aiService__envs": {"STRIPE_API_KEY": "sk"}}, "app.aiService.envs"),
        ({"app__aiService__branch": "main; rm -rf /"}, "app.aiService.branch"),
        ({"vllmApiKey": "plaintext-in-the-stack-file"}, "vllmApiKey"),
    ],
    ids=lambda v: json.dumps(v)[:48] if isinstance(v, dict) else v,
)
def test_hostile_value_is_refused_with_one_line(plan_file, prod, change, key):
    line = one_line(plan_file(edited(prod, **change)))
    assert line.startswith(f"error: {NS}:{key}"), line


def test_plaintext_secret_names_the_command(plan_file, prod):
    line = one_line(plan_file(edited(prod, vllmApiKey="plaintext")))
    assert (
        "pulumi config set --secret vllmApiKey" in line and "plaintext" not in line.split(":", 3)[-1].split("secret")[0]
    )


def test_secret_value_never_printed_in_the_refusal(plan_file, prod):
    line = one_line(plan_file(edited(prod, app__aiService__envs={"DB_PASSWORD": "hunter2"})))
    assert "hunter2" not in line


@pytest.mark.parametrize(
    "change",
    [
        {"host__vllm__tag": "v0.11.1"},
        {"host__ollama__models": ["llama3.2:3b", "hf.co/org/model-GGUF:Q4_K_M", "qwen2.5-coder:1.5b"]},
        {"host__ollama__keepAlive": "-1"},
        {"host__llamafactory__uiUser": "ml-team"},
        {"host__adminCidrs": ["10.0.0.0/8", "2a01:4f8:c0c::/48"]},
        {"host__adminCidrs": ["100.64.0.7/32", "2a01:4f8:c0c::1/128"]},
        {"host__adminUser": "ops-oncall"},
        {"host__adminCidrs": ["0.0.0.0/1", "128.0.0.0/1"], "host__allowWideAdminCidrs": True},
        {"app__aiService__envs": {"FEATURE_FLAGS": "a,b", "KEYBOARD_LAYOUT": "us"}},
    ],
    ids=lambda v: json.dumps(v)[:48],
)
def test_valid_neighbours_are_accepted(plan_file, prod, change):
    res = plan_file(edited(prod, **change))
    assert res.returncode == 0, res.stderr


# ---- §2/§3: the file itself ---------------------------------------------------------------------
def test_duplicate_key_names_both_lines(plan_file, pinned_stacks):
    text = (
        (pinned_stacks / "Pulumi.prod.yaml")
        .read_text()
        .replace(f"  {NS}:budget: 3000\n", f"  {NS}:budget: 3000\n  {NS}:budget: 999999\n", 1)
    )
    first = text.splitlines().index(f"  {NS}:budget: 3000") + 1  # where the stack file has it
    line = one_line(plan_file(text))
    assert "duplicate key" in line and f"{NS}:budget" in line, line
    assert f"Pulumi.prod.yaml:{first + 1}:" in line and f"line {first}" in line, line


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("config:\n  llm-platform:phase: [2\n", "started on line 2"),  # malformed flow sequence
        ("config:\n\tllm-platform:phase: 2\n", ":2"),  # a tab as indentation
        (b"config:\n  llm-platform:region: tor\xe9\n", ":2"),  # latin-1, not UTF-8
        ("- config\n- phase\n", ":1"),  # a top-level list
        ("config:\n  - llm-platform:phase: 2\n", ""),  # config: as a list
    ],
    ids=["malformed", "tab", "latin-1", "top-level-list", "config-list"],
)
def test_unreadable_stack_file_is_one_line_with_file_and_line(plan_file, text, where):
    line = one_line(plan_file(text))
    assert "Pulumi.prod.yaml" in line and where in line, line


def test_plan_never_prints_a_traceback_as_a_user_runs_it(tmp_path):
    """The script itself (not in process), on a file that is not YAML: exit 1, one line."""
    from tests.unit.test_plan_cli import run_plan_subprocess

    (tmp_path / "Pulumi.prod.yaml").write_bytes(b"config: {\xff\n")
    res = run_plan_subprocess("prod", stacks_dir=tmp_path)
    assert res.returncode == 1 and len(res.stderr.splitlines()) == 1 and "Traceback" not in res.stderr, res.stderr


# ---- The host side: whatever reaches it is quoted or refused -----------------------------------
def test_fact_commands_quote_their_arguments():
    import shlex

    from hosts.facts import Account, DockerImageId

    ref = "v0.11.0;touch${IFS}/tmp/pwned"
    cmd = DockerImageId().command(ref=ref)
    assert ref in shlex.split(cmd) and "$(" not in cmd.replace(shlex.quote(ref), "")
    assert shlex.quote("a;id") in Account().command(user="a;id")


@pytest.mark.parametrize(
    "value", ['abc" 1;\nmap evil', "short", "has space in it 123456", "tab\there-0123456789", "back\\slash0123456789"]
)
def test_host_secret_that_would_break_out_of_its_file_is_refused(value):
    from hosts import secret_values

    with pytest.raises(secret_values.MissingSecret) as info:
        secret_values.check("vllmApiKey", value)
    assert value not in str(info.value) and "vllmApiKey" in str(info.value)


def test_generated_and_typical_host_secrets_pass():
    import secrets as stdlib_secrets

    from hosts import secret_values

    for value in (stdlib_secrets.token_urlsafe(32), "hf_" + "A1b2" * 9, "sk-proj-" + "x" * 40):
        assert secret_values.check("k", value) == value


# ---- The deploy does not trust its input: host data that did not come through the settings ------
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("admin_cidrs", ["2001:db8::1%$(touch PWNED)/128"]),
        ("admin_cidrs", ["203.0.113.0/24\nallow all"]),
        ("admin_user", "www-data"),
        ("admin_user", "root"),
        ("domain", "llm.example.com;include /etc/shadow"),
        ("acme_email", "--server@x.example"),
        ("acme_directory", "http://acme.example/dir"),
        ("ssh_public_keys", ["ssh-ed25519 AAAA x\nssh-rsa"]),
        ("apt_proxy", 'http://10.0.2.2:3142";\nAPT::x "y'),
    ],
)
def test_host_data_refuses_what_the_settings_refuse(field, value):
    from pydantic import ValidationError

    from components.hostdata import HostData

    good = HostData.build(
        provider="hetzner",
        gpu=False,
        roles=["base", "firewall"],
        admin_user="llmadmin",
        admin_cidrs=["203.0.113.0/24"],
        ssh_public_keys=[_ed25519()],
        domain="llm.example.com",
        acme_email="ops@example.com",
        acme_directory="https://acme.example/dir",
        proxy_backend="vllm",
    ).model_dump(mode="json")
    HostData.model_validate(good)
    with pytest.raises(ValidationError) as info:
        HostData.model_validate({**good, field: value})
    assert field in str(info.value)


def _ed25519() -> str:
    import base64

    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes(32)
    return "ssh-ed25519 " + base64.b64encode(blob).decode() + " ops@example"


# ---- Issue 18 §4: bad input that got through or ended in a traceback ----------------------------
SECRET_VALUE = "hf_" + "Zq9" * 24  # 75 characters, as an operator's token would be


def test_a_secret_under_a_misspelled_key_is_never_echoed(plan_file, prod):
    line = one_line(plan_file(edited(prod, huggingfaceApikey=SECRET_VALUE)))
    assert line.startswith(f"error: {NS}:huggingfaceApikey: unknown key"), line
    assert SECRET_VALUE not in line and SECRET_VALUE[:12] not in line, line
    assert "huggingfaceApiKey" in line  # the key it was meant to be


@pytest.mark.parametrize(
    ("key", "env"), [("digitalocean:token", "DIGITALOCEAN_TOKEN"), ("hcloud:token", "HCLOUD_TOKEN")]
)
def test_a_provider_token_in_plain_text_is_refused(plan_file, prod, key, env):
    doc = copy.deepcopy(prod)
    doc["config"][key] = "dop_v1_" + "a1" * 32
    line = one_line(plan_file(yamlio.dump(doc)))
    assert line.startswith(f"error: {key}: "), line
    assert f"pulumi config set --secret {key} <value> -s prod" in line and env in line, line
    assert "a1a1a1" not in line
    doc["config"][key] = {"secure": "AAABAMSfake"}  # as `pulumi config set --secret` writes it
    assert plan_file(yamlio.dump(doc)).returncode == 0


def _host_scalar(prod: dict, value: str) -> str:
    """The stack file with ``value`` (YAML text) as the value of one env of ai-service."""
    return edited(prod, app__aiService__envs={"FEATURE": "PLACEHOLDER"}).replace("PLACEHOLDER", value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        # a billion-laughs alias bomb: a few hundred bytes, 10**9 values once expanded
        (
            "config:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"  a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
                f"*a{i - 1}, *a{i - 1}, *a{i - 1}]\n"
                for i in range(1, 9)
            )
            + f"  {NS}:budget: *a8\n",
            "aliases",
        ),
        ("config:\n  a: &a [*a]\n", "nested"),  # an alias inside itself
        (f"config:\n  {NS}:app: " + "[" * 2000 + "]" * 2000 + "\n", "nested"),
        (f"config:\n  {NS}:app: " + "{a: " * 2000 + "1" + "}" * 2000 + "\n", "nested"),
        (f"config:\n  {NS}:budget: {'9' * 5000}\n", "number"),
        ("config:\n" + "".join(f"  k{i}: [{', '.join(['1'] * 1000)}]\n" for i in range(30)), "values"),
        (f"config:\n  {NS}:budget: 3000\n  ? [{NS}:phase]\n  : 2\n", ":3: a list or mapping as a key"),
    ],
    ids=["alias-bomb", "alias-cycle", "deep-list", "deep-map", "5000-digits", "30000-values", "list-key"],
)
def test_a_stack_file_too_big_to_expand_is_one_line(plan_file, text, words):
    line = one_line(plan_file(text))
    assert "Pulumi.prod.yaml" in line and words in line, line


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("!!timestamp 2001-12-14", "timestamp"),
        ("2001-12-14", "timestamp"),
        ("!!set {a, b}", "set"),
        ("!!binary aGVsbG8=", "binary"),
        ("!!omap [{a: 1}]", "omap"),
    ],
)
def test_a_yaml_type_no_setting_takes_is_one_line_with_its_line(plan_file, prod, value, tag):
    line = one_line(plan_file(_host_scalar(prod, value)))
    assert "Pulumi.prod.yaml:" in line and tag in line and "quote" in line, line


def test_quoted_dates_and_anchors_within_bounds_still_work(plan_file, prod):
    assert plan_file(_host_scalar(prod, "'2001-12-14'")).returncode == 0
    text = edited(prod).replace("adminCidrs: [203.0.113.0/24]", "adminCidrs: &office [203.0.113.0/24]")
    assert plan_file(text).returncode == 0


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"huggingface__requestsPerMonth": 10**400}, "huggingface.requestsPerMonth"),
        ({"huggingface__usdPer1kRequests": 10**400}, "huggingface.usdPer1kRequests"),
        ({"budget": 10**400}, "budget"),
        ({"app__name": "llm-platform\n"}, "app.name"),
        ({"host__ollama__version": "٠.١٣.٥"}, "host.ollama.version"),  # Arabic-Indic digits
        ({"host__ollama__version": "0.13.5\n"}, "host.ollama.version"),
        ({"host__ollama__keepAlive": "٢٤h"}, "host.ollama.keepAlive"),
        ({"host__acmeDirectory": "https://acme.example:٤٤٣/dir"}, "host.acmeDirectory"),
        ({"host__vllm__image": "registry.example:٥٠٠٠/vllm"}, "host.vllm.image"),
        ({"host__image": "debian-12\x1b[8m"}, "host.image"),
        ({"host__image": "debian\x0012"}, "host.image"),
        ({"host__image": "debian-12\n"}, "host.image"),
        ({"host__image": "debian-12-x64 --user-data x"}, "host.image"),
        ({"host__image": "d" * 20000}, "host.image"),
        ({"app__aiService__repo": "intelia/" + "x" * 5000}, "app.aiService.repo"),
        ({"app__llm__repo": "o" * 40 + "/repo"}, "app.llm.repo"),
        ({"host__vllm__image": "a/" * 200 + "b"}, "host.vllm.image"),
        ({"host__llamafactory__image": "r" * 300}, "host.llamafactory.image"),
        ({"host__ollama__models": ["m" * 5000]}, "host.ollama.models"),
        ({"host__ollama__models": ["llama3.1:8b"] * 5000}, "host.ollama.models"),
        ({"host__ollama__models": ["llama3.1:8b", "qwen2.5:1.5b", "llama3.1:8b"]}, "host.ollama.models"),
        ({"host__ollama__models": [f"m{i}:1b" for i in range(100)]}, "host.ollama.models"),
    ],
    ids=lambda v: json.dumps(v)[:48] if isinstance(v, dict) else v,
)
def test_bad_value_is_refused_with_one_line(plan_file, prod, change, key):
    line = one_line(plan_file(edited(prod, **change)))
    assert line.startswith(f"error: {NS}:{key}"), line
    assert len(line) < 1000, line


@pytest.mark.parametrize(
    "change",
    [
        {"host__image": "debian-12-x64"},
        {"host__image": "ubuntu-24.04"},
        {"host__image": "123456789"},  # a snapshot id
        {"huggingface__requestsPerMonth": 5_000_000},
        {"app__name": "llm-platform-prod"},
        {"host__ollama__models": ["llama3.1:8b", "hf.co/org/model-GGUF:Q4_K_M"]},
    ],
    ids=lambda v: json.dumps(v)[:48],
)
def test_valid_neighbours_of_section_4_are_accepted(plan_file, prod, change):
    res = plan_file(edited(prod, **change))
    assert res.returncode == 0, res.stderr


# The homelab stack: its compose file is a path in this repository, read with a bound.
HOMELAB = {
    "dockerHost": "unix:///var/run/docker.sock",
    "composeFile": "docker/homelab/compose.yml",
    "models": ["llama3.2:3b"],
    "gpu": False,
}


def homelab(**changes) -> str:
    return yamlio.dump({"config": {f"{NS}:homelab": {**HOMELAB, **changes}}})


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"composeFile": "/dev/zero"}, "homelab.composeFile"),
        ({"composeFile": "/etc/passwd"}, "homelab.composeFile"),
        ({"composeFile": "docker/../../../etc/x.yml"}, "homelab.composeFile"),
        ({"composeFile": "docker/homelab/compose.yml\n"}, "homelab.composeFile"),
        ({"composeFile": "README.md"}, "homelab.composeFile"),
        ({"composeFile": "docker/homelab/missing.yml"}, "homelab.composeFile"),
        ({"dockerHost": "unix:///var/run/docker.sock\n"}, "homelab.dockerHost"),
        ({"dockerHost": "ssh://user@host\x1b[8m"}, "homelab.dockerHost"),
        ({"models": ["llama3.2:3b"] * 5000}, "homelab.models"),
    ],
    ids=lambda v: json.dumps(v)[:48] if isinstance(v, dict) else v,
)
def test_bad_homelab_value_is_refused_with_one_line(plan_file, change, key):
    line = one_line(plan_file(homelab(**change)))
    assert line.startswith(f"error: {NS}:{key}"), line


def test_the_homelab_stack_still_plans(plan_file):
    assert plan_file(homelab()).returncode == 0


@pytest.mark.parametrize("name", ["zero", "fifo", "passwd-like", "list"])
def test_a_compose_file_is_read_with_a_bound_and_never_quoted(tmp_path, name):
    import os

    from components.homelab import ComposeError, load_compose

    secret = "root:x:0:0:SECRET-LINE:/root:/bin/bash"
    path = tmp_path / "compose.yml"
    if name == "zero":
        path.symlink_to("/dev/zero")
    elif name == "fifo":
        os.mkfifo(path)  # would block a plain read for ever
    elif name == "passwd-like":
        path.write_text(f"{secret}\n  bad: [indent\n")
    else:
        path.write_text(f"- {secret}\n")
    with pytest.raises(ComposeError) as info:
        load_compose(path)
    text = str(info.value)
    assert len(text.splitlines()) == 1 and "SECRET-LINE" not in text and "homelab.composeFile" in text, text


def test_a_compose_file_linking_out_of_the_repository_is_refused(tmp_path, monkeypatch):
    from components import homelab as lab

    monkeypatch.setattr(lab, "ROOT", tmp_path)
    (tmp_path / "compose.yml").symlink_to("/etc/hostname")
    with pytest.raises(lab.ComposeError, match="leads out of the repository"):
        lab.compose_path("compose.yml")
    (tmp_path / "inside.yml").write_text("services: {}\n")
    assert lab.compose_path("inside.yml") == tmp_path / "inside.yml"
