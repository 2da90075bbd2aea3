"""scripts/finetune's host side against a fake host: commands, files, secrets handling, progress
following, and the one-line errors of the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from operate import cli as operate_cli
from operate.finetune import cli, export, training, workflow
from operate.finetune.host import Host, resolve
from operate.remote import Remote, RemoteError, Result

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "finetune"
TOKEN = "hf_TESTTOKENvalue123"


class FakeRemote(Remote):
    """Files in a dict; commands answered by the first matching (substring → Result) rule."""

    def __init__(self, rules=None):
        super().__init__(["ssh", "fake"], "fake-host (admin@192.0.2.1)")
        self.files: dict[str, tuple[str, str]] = {}
        self.commands: list[str] = []
        self.inputs: list[str] = []
        self.rules = list(rules or [])

    def run(self, command, *, input=None, check=True, timeout=600, what=None, sudo=True):
        self.commands.append(command)
        if input is not None:
            self.inputs.append(input if isinstance(input, str) else input.decode())
        for needle, res in self.rules:
            if needle in command:
                res = res() if callable(res) else res
                if check and res.rc != 0:
                    raise RemoteError(f"{self.label}: {what} failed (exit {res.rc})")
                return res
        return Result(0, "", "")

    def read(self, path):
        return self.files[path][0] if path in self.files else None

    def write(self, path, content, mode="644"):
        self.commands.append(f"<write {path} mode {mode}>")
        self.files[path] = (content if isinstance(content, str) else content.decode(), mode)


def make_host(rules=None, secrets=None, stack="staging") -> Host:
    return Host(stack, "llm-staging", FakeRemote(rules), ["base", "llamafactory"], secrets or {})


def run_info(**kw) -> workflow.RunInfo:
    d = dict(
        name="bot",
        base_model="Qwen/Qwen2.5-0.5B-Instruct",
        method="lora",
        device="cpu",
        template="qwen",
        dataset="bot",
        rows=10,
        output_dir="/app/output/bot/adapter",
        started_at=0.0,
    )
    d.update(kw)
    return workflow.RunInfo(**d)


# --- paths and commands ---------------------------------------------------------------------------


def test_host_paths_follow_the_container_volumes():
    assert workflow.host_path("/app/output/bot/adapter") == "/data/finetune/output/bot/adapter"
    assert workflow.host_path("/app/data/bot.json") == "/data/datasets/bot.json"
    with pytest.raises(ValueError):
        workflow.host_path("/etc/passwd")


def test_exec_line_passes_the_token_by_name_only():
    line = workflow.exec_line(
        "llamafactory-cli train /app/output/bot/train.yaml",
        token=True,
        extra_env={"CUDA_VISIBLE_DEVICES": ""},
        log="/data/finetune/output/bot/train.log",
    )
    assert line == (
        "docker exec -e HF_TOKEN -e HUGGING_FACE_HUB_TOKEN -e CUDA_VISIBLE_DEVICES= llm-llamafactory "
        "llamafactory-cli train /app/output/bot/train.yaml > /data/finetune/output/bot/train.log 2>&1"
    )
    # no token: no bare -e (a bare name would unset the container's own HF_TOKEN)
    assert "-e" not in workflow.exec_line("x", token=False, extra_env={}, log="/l").split()


def test_systemd_run_command():
    cmd = workflow.systemd_run("llm-finetune-bot", "/data/finetune/output/bot/train.sh", "desc here", wait=False)
    assert cmd.startswith("systemd-run --unit=llm-finetune-bot ")
    assert "--collect" in cmd and "--property=EnvironmentFile=-/etc/llm-platform/secrets/finetune.env" in cmd
    assert cmd.endswith(" /bin/sh /data/finetune/output/bot/train.sh") and "--wait" not in cmd
    assert "--wait" in workflow.systemd_run("u", "/s", "d", wait=True)


# --- preflight ------------------------------------------------------------------------------------


def test_preflight_container_not_running():
    host = make_host([("docker inspect", Result(0, "false\n", ""))])
    with pytest.raises(RemoteError, match=r"LLaMA-Factory container llm-llamafactory is not running .*stopped"):
        workflow.preflight(host)
    host = make_host([("docker inspect", Result(1, "Error: No such object: llm-llamafactory\n", ""))])
    with pytest.raises(RemoteError, match="does not exist"):
        workflow.preflight(host)
    workflow.preflight(make_host([("docker inspect", Result(0, "true\n", ""))]))


def test_preflight_refuses_a_host_without_the_role():
    host = make_host([("docker inspect", Result(0, "true\n", ""))])
    host.roles = ["base", "ollama"]
    with pytest.raises(RemoteError, match="does not run LLaMA-Factory"):
        workflow.preflight(host)


def test_gpus():
    assert workflow.gpus(make_host([("nvidia-smi", Result(3, "", ""))])) == ([], None)
    gpus, note = workflow.gpus(make_host([("nvidia-smi", Result(0, "20475, 19000\n", ""))]))
    assert round(gpus[0].total_gb) == 20 and note is None
    gpus, note = workflow.gpus(make_host([("nvidia-smi", Result(9, "", "NVIDIA-SMI has failed"))]))
    assert gpus == [] and "NVIDIA-SMI has failed" in note


# --- dataset, token, start ------------------------------------------------------------------------


def test_register_dataset_is_idempotent():
    host = make_host()
    entry = {"file_name": "bot.json", "formatting": "alpaca", "columns": {"prompt": "instruction"}}
    host.remote.files["/data/datasets/dataset_info.json"] = (json.dumps({"other": {"file_name": "o.json"}}), "644")
    assert workflow.register_dataset(host, "bot", entry)
    info = json.loads(host.remote.read("/data/datasets/dataset_info.json"))
    assert info == {"other": {"file_name": "o.json"}, "bot": entry}
    writes = [c for c in host.remote.commands if c.startswith("<write")]
    assert not workflow.register_dataset(host, "bot", entry)
    assert [c for c in host.remote.commands if c.startswith("<write")] == writes


def test_register_dataset_refuses_a_broken_registry():
    host = make_host()
    host.remote.files["/data/datasets/dataset_info.json"] = ("{broken", "644")
    with pytest.raises(RemoteError, match="dataset_info.json is not valid JSON"):
        workflow.register_dataset(host, "bot", {})
    assert host.remote.read("/data/datasets/dataset_info.json") == "{broken"


def test_token_goes_to_a_0600_file_only(monkeypatch):
    monkeypatch.delenv("LLM_SECRET_HUGGINGFACE_API_KEY", raising=False)
    host = make_host(secrets={"huggingfaceApiKey": TOKEN})
    assert workflow.write_token_env(host)
    content, mode = host.remote.files[workflow.ENV_FILE]
    assert mode == "600" and content == f"HF_TOKEN={TOKEN}\nHUGGING_FACE_HUB_TOKEN={TOKEN}\n"
    assert not any(TOKEN in c for c in host.remote.commands)
    assert not workflow.write_token_env(make_host())


def test_token_from_the_environment_wins(monkeypatch):
    monkeypatch.setenv("LLM_SECRET_HUGGINGFACE_API_KEY", "hf_fromenv")
    host = make_host(secrets={"huggingfaceApiKey": TOKEN})
    assert host.secret("huggingfaceApiKey") == "hf_fromenv"


def test_start_training_files_and_unit():
    host = make_host([("systemctl is-active", Result(0, "inactive\n", ""))])
    run = run_info()
    yaml_text = training.render_yaml(
        training.train_config(training.TrainParams(name="bot", method="lora", device="cpu")), "h"
    )
    workflow.start_training(host, run, yaml_text, token=True, extra_env={"CUDA_VISIBLE_DEVICES": ""})
    files = host.remote.files
    d = "/data/finetune/output/bot"
    assert files[f"{d}/train.yaml"][0] == yaml_text
    assert json.loads(files[f"{d}/run.json"][0])["method"] == "lora"
    script, mode = files[f"{d}/train.sh"]
    assert mode == "755"
    assert (
        "docker exec -e HF_TOKEN -e HUGGING_FACE_HUB_TOKEN -e CUDA_VISIBLE_DEVICES= llm-llamafactory llamafactory-cli "
        "train /app/output/bot/train.yaml > /data/finetune/output/bot/train.log 2>&1" in script
    )
    assert f"echo $? > {d}/train.exit" in script
    prep = next(c for c in host.remote.commands if "rm -f" in c)
    assert f"{d}/train.exit" in prep and "/data/finetune/output/bot/adapter/trainer_log.jsonl" in prep
    assert host.remote.commands[-1].startswith("systemd-run --unit=llm-finetune-bot")


def test_start_training_refuses_a_running_one():
    host = make_host([("systemctl is-active", Result(0, "active\n", ""))])
    with pytest.raises(RemoteError, match=r"already running .*scripts/finetune status staging llm-staging --name bot"):
        workflow.start_training(host, run_info(), "x", token=False, extra_env={})


def test_read_run():
    host = make_host()
    with pytest.raises(RemoteError, match="no fine-tuning run named 'bot'"):
        workflow.read_run(host, "bot")
    host.remote.files["/data/finetune/output/bot/run.json"] = (run_info().to_json(), "644")
    assert workflow.read_run(host, "bot") == run_info()


# --- progress following ---------------------------------------------------------------------------


LOG = (
    '{"current_steps": %d, "total_steps": 4, "loss": %.2f, "percentage": %.1f, '
    '"elapsed_time": "0:00:0%d", "remaining_time": "0:00:0%d"}'
)


def poll_text(state: str, step: int | None = None, exit_code: int | None = None, line: str = "") -> str:
    out = [f"@state {state}"]
    if exit_code is not None:
        out.append(f"@exit {exit_code}")
    if step is not None:
        out.append("@log " + LOG % (step, 2.0 - step * 0.25, step * 25.0, step, 4 - step))
    if line:
        out.append(f"@line {line}")
    return "\n".join(out) + "\n"


def test_parse_poll():
    st = workflow.parse_poll(poll_text("active", 2, line="Loading checkpoint shards"))
    assert st.running and st.exit_code is None and st.progress.step == 2 and st.log_line == "Loading checkpoint shards"
    st = workflow.parse_poll(poll_text("inactive", 4, exit_code=0))
    assert not st.running and st.exit_code == 0
    st = workflow.parse_poll("@state \n")
    assert st.unit == "inactive" and st.progress is None


def scripted(*texts: str):
    seq = list(texts)

    def next_result():
        return Result(0, seq.pop(0) if len(seq) > 1 else seq[0], "")

    return next_result


def test_follow_prints_progress_until_success():
    host = make_host(
        [
            (
                "@state",
                scripted(
                    poll_text("active", line="Loading model"),
                    poll_text("active", 1),
                    poll_text("active", 1),
                    poll_text("active", 3),
                    poll_text("inactive", 4, exit_code=0),
                ),
            )
        ]
    )
    lines: list[str] = []
    st = workflow.follow(host, run_info(), interval=0, out=lines.append, sleep=lambda s: None)
    assert st.exit_code == 0
    assert lines == [
        "  ... Loading model",
        "step 1/4 (25.0%)  loss 1.7500  elapsed 0:00:01  ETA 0:00:03",
        "step 3/4 (75.0%)  loss 1.2500  elapsed 0:00:03  ETA 0:00:01",
        "step 4/4 (100.0%)  loss 1.0000  elapsed 0:00:04  ETA 0:00:00",
    ]


def test_follow_reports_a_failure_with_the_log_tail():
    host = make_host(
        [
            ("@state", scripted(poll_text("active", 1), poll_text("failed", 1, exit_code=1))),
            ("tail -n 20", Result(0, "Traceback ...\ntorch.OutOfMemoryError: CUDA out of memory\n", "")),
        ]
    )
    with pytest.raises(workflow.TrainingFailed, match=r"(?s)failed \(exit 1\).*CUDA out of memory"):
        workflow.follow(host, run_info(), interval=0, out=lambda s: None, sleep=lambda s: None)


def test_follow_notices_a_vanished_run():
    host = make_host([("@state", Result(0, poll_text("inactive", 2), ""))])
    with pytest.raises(workflow.TrainingFailed, match="not running and left no exit code"):
        workflow.follow(host, run_info(), interval=0, out=lambda s: None, sleep=lambda s: None)


def test_follow_once_returns_while_running():
    host = make_host([("@state", Result(0, poll_text("active", 2), ""))])
    lines: list[str] = []
    st = workflow.follow(host, run_info(), once=True, out=lines.append, sleep=lambda s: None)
    assert st.running and lines == ["step 2/4 (50.0%)  loss 1.5000  elapsed 0:00:02  ETA 0:00:02"]


# --- export pieces --------------------------------------------------------------------------------


def test_smoke_needs_a_non_empty_answer():
    host = make_host([("api/generate", Result(0, json.dumps({"response": " Hello there. "}), ""))])
    assert export.smoke(host, "bot") == "Hello there."
    body = json.loads(host.remote.inputs[-1])
    assert body["model"] == "bot" and body["stream"] is False
    with pytest.raises(RemoteError, match="empty answer"):
        export.smoke(make_host([("api/generate", Result(0, '{"response": ""}', ""))]), "bot")
    with pytest.raises(RemoteError, match="smoke prompt to bot failed"):
        export.smoke(make_host([("api/generate", Result(7, "", "curl: (7) Failed to connect"))]), "bot")


def test_ollama_create_runs_in_the_merged_dir():
    host = make_host()
    export.ollama_create(host, run_info(), "bot", "/data/finetune/output/bot/merged", "q4_K_M")
    assert host.remote.commands[-1] == (
        "cd /data/finetune/output/bot/merged && /usr/local/bin/ollama create bot -f Modelfile --quantize q4_K_M "
        "> /data/finetune/output/bot/ollama-create.log 2>&1"
    )


# --- remote ---------------------------------------------------------------------------------------


def test_remote_maps_ssh_failures():
    with pytest.raises(
        RemoteError, match="cannot reach h over SSH: ssh: connect to host h port 22: Connection refused"
    ):
        Remote(["sh", "-c", "echo 'ssh: connect to host h port 22: Connection refused' >&2; exit 255", "ssh"], "h").run(
            "true"
        )
    with pytest.raises(RemoteError, match="passwordless sudo"):
        Remote(["sh", "-c", "echo 'sudo: a password is required' >&2; exit 1", "ssh"], "h").run("true")


def test_remote_read_write_round_trip(tmp_path):
    # a stand-in for "ssh host": run the remote command here, without the sudo prefix
    r = Remote(["sh", "-c", 'c="$1"; eval "${c#sudo -n }"', "ssh"], "local-sh")
    path = str(tmp_path / "sub" / "f.json")
    r.write(path, "héllo\n", mode="600")
    assert r.read(path) == "héllo\n"
    assert oct(Path(path).stat().st_mode & 0o777) == "0o600"
    assert r.read(str(tmp_path / "missing")) is None


def test_resolve_a_stack_host_through_the_resolver(monkeypatch):
    from operate import targets
    from tests.unit.test_targets import PUB, stack_target

    monkeypatch.setattr(targets, "resolve", lambda stack, **kw: stack_target())
    monkeypatch.setattr("operate.cli.resolve_stack", lambda name, local: name)
    h = resolve("prod", None)
    assert h.remote.prefix[0] == "ssh" and h.remote.prefix[-1] == "llmadmin@203.0.113.209"
    assert "BatchMode=yes" in h.remote.prefix and "StrictHostKeyChecking=yes" in h.remote.prefix
    assert "llamafactory" in h.roles and not h.is_local and h.cli_args() == "prod llm-prod"
    assert (
        PUB
        in Path(next(o for o in h.remote.prefix if o.startswith("UserKnownHostsFile=")).split("=", 1)[1]).read_text()
    )
    with pytest.raises(RemoteError, match=r"no host 'x' \(hosts: llm-prod\)"):
        resolve("prod", "x")
    monkeypatch.setattr(targets, "resolve", lambda stack, **kw: targets.Target("dev", []))
    with pytest.raises(RemoteError, match="no model host .*nothing to fine-tune on"):
        resolve("dev", None)
    two = stack_target()
    two.hosts.append(targets.Host("llm-prod-2", two.hosts[0].data, "llmadmin", "203.0.113.211"))
    monkeypatch.setattr(targets, "resolve", lambda stack, **kw: two)
    with pytest.raises(RemoteError, match="several hosts"):
        resolve("prod", None)


def test_resolve_unknown_stack_and_stopped_local_host(tmp_path):
    from tests.unit.test_targets import local_state

    with pytest.raises(RemoteError, match=r"no stack file stacks/Pulumi.nope.yaml \(stacks: .*local\)"):
        resolve("nope", None)
    s = local_state(tmp_path)
    with pytest.raises(RemoteError, match="local test host is not running"):
        resolve("local", None, local_settings=s)
    with pytest.raises(RemoteError, match="is 'llm-local', not 'other'"):
        resolve("local", "other", local_settings=s)


# --- CLI one-line errors (in-process, fake host) ---------------------------------------------------


def test_cli_run_with_a_bad_dataset_touches_no_host(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_resolve", lambda a: pytest.fail("must not contact the host"))
    rc = operate_cli.main(["finetune", "run", "local", "--dataset", str(FIX / "alpaca_bad.jsonl"), "--name", "bot"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "line 2: missing field 'output'" in err
    assert err.strip().splitlines()[-1].startswith("error: dataset invalid: 8 bad row(s) of 11")
    assert "Traceback" not in err


def test_cli_run_refuses_no_gpu_without_device_cpu(monkeypatch, capsys):
    host = make_host([("docker inspect", Result(0, "true\n", "")), ("nvidia-smi", Result(3, "", ""))])
    monkeypatch.setattr(cli, "_resolve", lambda a: host)
    rc = operate_cli.main(["finetune", "run", "staging", "--dataset", str(FIX / "alpaca_good.jsonl"), "--name", "bot"])
    err = capsys.readouterr().err
    assert rc == 1 and "error: the host has no NVIDIA GPU" in err and "--device cpu" in err
    assert not any(c.startswith("<write") for c in host.remote.commands)  # nothing uploaded


def test_cli_run_end_to_end_on_a_fake_host(monkeypatch, capsys):
    monkeypatch.delenv("LLM_SECRET_HUGGINGFACE_API_KEY", raising=False)
    host = make_host(
        [
            ("docker inspect", Result(0, "true\n", "")),
            ("nvidia-smi", Result(0, "20475, 20000\n", "")),
            ("systemctl is-active llm-finetune-bot 2>/dev/null || true", Result(0, "inactive\n", "")),
            ("@state", Result(0, poll_text("inactive", 4, exit_code=0), "")),
        ],
        secrets={"huggingfaceApiKey": TOKEN},
    )
    monkeypatch.setattr(cli, "_resolve", lambda a: host)
    rc = operate_cli.main(
        [
            "finetune",
            "run",
            "staging",
            "llm-staging",
            "--dataset",
            str(FIX / "messages_good.jsonl"),
            "--name",
            "bot",
            "--interval",
            "0",
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "method: lora on cuda" in out  # 20 GB ≥ 16 GB for 7B
    assert "training bot finished after 4 steps" in out
    assert "scripts/finetune export staging llm-staging --name bot" in out
    assert TOKEN not in out + err
    files = host.remote.files
    uploaded = json.loads(files["/data/datasets/bot.json"][0])
    assert uploaded[0]["conversations"][0]["from"] == "system"
    assert json.loads(files["/data/datasets/dataset_info.json"][0])["bot"]["formatting"] == "sharegpt"
    assert "quantization_bit" not in files["/data/finetune/output/bot/train.yaml"][0]
    assert TOKEN not in files["/data/finetune/output/bot/train.yaml"][0]
    assert TOKEN not in files["/data/finetune/output/bot/train.sh"][0]


def test_cli_detach(monkeypatch, capsys, tmp_path):
    host = make_host([("docker inspect", Result(0, "true\n", "")), ("nvidia-smi", Result(3, "", ""))])
    host.stack, host.name, host.local_state_dir = "local", "llm-local", tmp_path  # the local test host
    monkeypatch.setattr(cli, "_resolve", lambda a: host)
    rc = operate_cli.main(
        [
            "finetune",
            "run",
            "local",
            "--dataset",
            str(FIX / "alpaca_good.jsonl"),
            "--name",
            "bot",
            "--device",
            "cpu",
            "--detach",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "detached. Follow it: scripts/finetune status local --name bot" in out
    assert "CUDA_VISIBLE_DEVICES=" in host.remote.files["/data/finetune/output/bot/train.sh"][0]
    assert not any("@state" in c for c in host.remote.commands)


def test_cli_ctrl_c_detaches(monkeypatch, capsys):
    host = make_host()
    host.remote.files["/data/finetune/output/bot/run.json"] = (run_info().to_json(), "644")

    def interrupt():
        raise KeyboardInterrupt

    host.remote.rules = [("@state", interrupt)]
    monkeypatch.setattr(cli, "_resolve", lambda a: host)
    rc = operate_cli.main(["finetune", "status", "staging", "llm-staging", "--name", "bot"])
    err = capsys.readouterr().err
    assert rc == 0 and "detached; the training keeps running" in err
    assert "scripts/finetune status staging llm-staging --name bot" in err


def test_cli_export_refuses_an_unfinished_run(monkeypatch, capsys):
    host = make_host([("docker inspect", Result(0, "true\n", "")), ("@state", Result(0, poll_text("active", 2), ""))])
    host.remote.files["/data/finetune/output/bot/run.json"] = (run_info().to_json(), "644")
    monkeypatch.setattr(cli, "_resolve", lambda a: host)
    assert operate_cli.main(["finetune", "export", "staging", "--name", "bot"]) == 1
    assert "error: training bot is still running" in capsys.readouterr().err
    host.remote.rules[1] = ("@state", Result(0, poll_text("failed", 2, exit_code=1), ""))
    assert operate_cli.main(["finetune", "export", "staging", "--name", "bot"]) == 1
    assert "did not finish successfully (exit 1)" in capsys.readouterr().err


def test_cli_export_records_the_model_in_the_stack_file(monkeypatch, capsys, tmp_path):
    import shutil

    from components import stackfile

    stacks = tmp_path / "stacks"
    stacks.mkdir()
    shutil.copy(stackfile.STACKS_DIR / "Pulumi.staging.yaml", stacks / "Pulumi.staging.yaml")
    monkeypatch.setattr(stackfile, "STACKS_DIR", stacks)
    host = make_host(
        [
            ("docker inspect", Result(0, "true\n", "")),
            ("@state", Result(0, poll_text("inactive", 4, exit_code=0), "")),
            ("api/generate", Result(0, '{"response": "I am a stand-in."}', "")),
        ]
    )
    host.remote.files["/data/finetune/output/bot/run.json"] = (run_info().to_json(), "644")
    host.remote.files["/data/finetune/output/bot/merged/Modelfile"] = ("FROM .\n", "644")
    monkeypatch.setattr(cli, "_resolve", lambda a: host)
    rc = operate_cli.main(
        ["finetune", "export", "staging", "--name", "bot", "--model-name", "support-bot", "--quantize", "q4_K_M"]
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    merge = host.remote.files["/data/finetune/output/bot/merge.yaml"][0]
    assert "adapter_name_or_path: /app/output/bot/adapter" in merge and "export_dir: /app/output/bot/merged" in merge
    assert any("ollama create support-bot -f Modelfile --quantize q4_K_M" in c for c in host.remote.commands)
    assert "smoke prompt answered: I am a stand-in." in out
    assert "support-bot" in (stacks / "Pulumi.staging.yaml").read_text()
    assert "git add stacks/Pulumi.staging.yaml" in out


def test_cli_bad_name_and_unknown_stack(capsys):
    # both are usage errors (exit 3), one line each
    assert operate_cli.main(["finetune", "status", "staging", "--name", "Bad Name"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: argument --name: 'Bad Name': use 1-63") and len(err.splitlines()) == 1, err
    assert operate_cli.main(["finetune", "status", "nope", "--name", "bot"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: argument STACK: no stack file stacks/Pulumi.nope.yaml") and len(err.splitlines()) == 1
