"""What ``scripts/finetune`` does on the host (through its ``operate.remote.Remote``) up to a finished
training: check the host, upload and register the dataset, start the training and follow it. Making an
Ollama model of the result is ``export``.

Host layout (the LLaMA-Factory container sees /data/datasets as /app/data and /data/finetune/output
as /app/output):

    /data/datasets/<name>.json                 the normalised dataset (JSON array)
    /data/datasets/dataset_info.json           LLaMA-Factory's dataset registry (merged, idempotent)
    /data/finetune/output/<name>/run.json      what was started: base model, method, template, ...
    /data/finetune/output/<name>/train.yaml    training config        train.sh    what the unit runs
    /data/finetune/output/<name>/train.log     llamafactory-cli output train.exit  its exit code
    /data/finetune/output/<name>/adapter/      LoRA adapter + trainer_log.jsonl (full runs: full/)
    /data/finetune/output/<name>/merge.yaml    export config          export.sh / export.log
    /data/finetune/output/<name>/merged/       merged model + Modelfile (FROM .) → ollama create
    /etc/llm-platform/secrets/finetune.env     HF_TOKEN (0600), read by the units, never by the YAML

Training runs in a transient systemd unit ``llm-finetune-<name>`` on the host (``systemd-run``) that
``docker exec``s ``llamafactory-cli train`` in the ``llm-llamafactory`` container, so it survives
the SSH session; the unit writes the exit code to ``train.exit``.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import dataclass
from typing import Callable

from components.catalogue import DATA_DIRS, SECRETS_DIR

from . import progress, training
from .host import Host, RemoteError
from .training import CONTAINER, ConfigError, Gpu

HOST_DATASETS = DATA_DIRS["datasets"]
HOST_OUTPUT = f"{DATA_DIRS['finetune']}/output"
ENV_FILE = f"{SECRETS_DIR}/finetune.env"


def host_run_dir(name: str) -> str:
    return f"{HOST_OUTPUT}/{name}"


def unit_name(name: str) -> str:
    return f"llm-finetune-{name}"


def host_path(container_path: str) -> str:
    """/app/output/... → /data/finetune/output/..., /app/data/... → /data/datasets/..."""
    for inside, outside in ((training.CONTAINER_OUTPUT, HOST_OUTPUT), (training.CONTAINER_DATA, HOST_DATASETS)):
        if container_path == inside or container_path.startswith(inside + "/"):
            return outside + container_path[len(inside) :]
    raise ValueError(f"{container_path} is not under a mounted volume")


# --- checks ---------------------------------------------------------------------------------------


def preflight(host: Host) -> None:
    """Reachable, runs the llamafactory role, container up."""
    host.remote.run("true", what="a first command", timeout=60)
    if host.roles and "llamafactory" not in host.roles:
        raise RemoteError(
            f"{host.remote.label} does not run LLaMA-Factory (roles: {', '.join(host.roles)}); "
            "enable host.llamafactory in the stack and converge"
        )
    res = host.remote.run(
        f"docker inspect -f '{{{{.State.Running}}}}' {CONTAINER} 2>&1", check=False, what="docker inspect"
    )
    if res.stdout.strip() != "true":
        why = "it does not exist" if "No such" in res.stdout or "no such" in res.stdout else "it is stopped"
        raise RemoteError(
            f"the LLaMA-Factory container {CONTAINER} is not running on {host.remote.label} ({why}): "
            f"systemctl status {CONTAINER}; scripts/converge {host.stack}"
        )


def gpus(host: Host) -> tuple[list[Gpu], str | None]:
    """The host's NVIDIA GPUs (empty when none), and a note when nvidia-smi exists but failed."""
    res = host.remote.run(
        "command -v nvidia-smi >/dev/null 2>&1 || exit 3; "
        "nvidia-smi --query-gpu=memory.total,memory.free --format=csv,noheader,nounits",
        check=False,
        what="nvidia-smi",
    )
    if res.rc == 3:
        return [], None
    if res.rc != 0:
        return [], f"nvidia-smi failed (exit {res.rc}): {(res.stderr or res.stdout).strip()[:200]}"
    return training.parse_nvidia_smi(res.stdout), None


# --- dataset --------------------------------------------------------------------------------------


def upload_dataset(host: Host, name: str, text: str) -> str:
    path = f"{HOST_DATASETS}/{name}.json"
    host.remote.write(path, text, mode="644")
    return path


def register_dataset(host: Host, name: str, entry: dict) -> bool:
    """Merge ``entry`` into dataset_info.json (idempotent); True if the file changed."""
    path = f"{HOST_DATASETS}/dataset_info.json"
    existing = host.remote.read(path)
    try:
        new, changed = training.merge_dataset_info(existing, name, entry)
    except ConfigError as e:
        raise RemoteError(f"{host.remote.label}: {path}: {e}") from None
    if changed:
        host.remote.write(path, new, mode="644")
    return changed


# --- secrets --------------------------------------------------------------------------------------


def write_token_env(host: Host) -> bool:
    """Put the stack's Hugging Face token (if any) into the 0600 env file the units read. True if
    there is a token. The value travels on stdin and is never printed."""
    token = host.secret("huggingfaceApiKey")
    if not token:
        return False
    if "\n" in token or "\r" in token:
        raise RemoteError("the huggingfaceApiKey secret contains a line break")
    host.remote.write(ENV_FILE, f"HF_TOKEN={token}\nHUGGING_FACE_HUB_TOKEN={token}\n", mode="600")
    return True


def exec_line(cli: str, *, token: bool, extra_env: dict[str, str], log: str) -> str:
    """``docker exec`` of a llamafactory-cli command, output to ``log`` (host path). ``-e NAME``
    without a value passes the unit's own environment variable (from the env file), so the token
    is on no command line."""
    env = ["-e HF_TOKEN", "-e HUGGING_FACE_HUB_TOKEN"] if token else []
    env += [f"-e {shlex.quote(f'{k}={v}')}" for k, v in sorted(extra_env.items())]
    return f"docker exec {' '.join(env)}{' ' if env else ''}{CONTAINER} {cli} > {shlex.quote(log)} 2>&1"


def render_script(name: str, kind: str, body: list[str]) -> str:
    return (
        "#!/bin/sh\n"
        f"# generated by scripts/finetune: {kind} of run {name}; do not edit (rewritten on every start)\n"
        + "\n".join(body)
        + "\n"
    )


def systemd_run(unit: str, script: str, description: str, *, wait: bool) -> str:
    args = [
        "systemd-run", f"--unit={unit}", f"--description={description}", "--collect", "--quiet",
        f"--property=EnvironmentFile=-{ENV_FILE}",
    ]  # fmt: skip
    if wait:
        args.append("--wait")
    return " ".join(shlex.quote(a) for a in args) + f" /bin/sh {shlex.quote(script)}"


# --- training -------------------------------------------------------------------------------------


@dataclass
class RunInfo:
    name: str
    base_model: str
    method: str
    device: str
    template: str
    dataset: str
    rows: int
    output_dir: str  # inside the container
    started_at: float

    @classmethod
    def from_json(cls, text: str) -> "RunInfo":
        d = json.loads(text)
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2) + "\n"


def read_run(host: Host, name: str) -> RunInfo:
    text = host.remote.read(f"{host_run_dir(name)}/run.json")
    if text is None:
        raise RemoteError(
            f"no fine-tuning run named {name!r} on {host.remote.label} (start one: scripts/finetune run ...)"
        )
    try:
        return RunInfo.from_json(text)
    except (ValueError, KeyError, TypeError):
        raise RemoteError(f"{host_run_dir(name)}/run.json on {host.remote.label} is unreadable") from None


def start_training(host: Host, run: RunInfo, train_yaml: str, *, token: bool, extra_env: dict[str, str]) -> None:
    d = host_run_dir(run.name)
    unit = unit_name(run.name)
    state = host.remote.run(
        f"systemctl is-active {unit} 2>/dev/null || true", what="systemctl is-active"
    ).stdout.strip()
    if state in ("active", "activating", "deactivating", "reloading"):
        raise RemoteError(
            f"a training named {run.name!r} is already running on {host.remote.label} "
            f"(scripts/finetune status {host.cli_args()} --name {run.name})"
        )
    out_host = host_path(run.output_dir)
    host.remote.run(
        f"systemctl reset-failed {unit} 2>/dev/null; mkdir -p {d} && "
        f"rm -f {d}/train.exit {d}/train.log {out_host}/trainer_log.jsonl",
        what="prepare the run directory",
    )
    host.remote.write(f"{d}/train.yaml", train_yaml)
    host.remote.write(f"{d}/run.json", run.to_json())
    cli = f"llamafactory-cli train {training.run_dir(run.name)}/train.yaml"
    script = render_script(
        run.name,
        "training",
        [exec_line(cli, token=token, extra_env=extra_env, log=f"{d}/train.log"), f"echo $? > {d}/train.exit"],
    )
    host.remote.write(f"{d}/train.sh", script, mode="755")
    host.remote.run(
        systemd_run(unit, f"{d}/train.sh", f"llm-platform fine-tuning {run.name}", wait=False),
        what=f"start {unit}",
    )


@dataclass
class State:
    unit: str  # systemctl is-active: active, inactive, failed, ...
    exit_code: int | None
    progress: progress.Progress | None
    log_line: str  # last line of train.log (what it is doing before the first step)

    @property
    def running(self) -> bool:
        return self.exit_code is None and self.unit in ("active", "activating", "reloading")


def poll(host: Host, run: RunInfo) -> State:
    d = host_run_dir(run.name)
    tlog = f"{host_path(run.output_dir)}/trainer_log.jsonl"
    res = host.remote.run(
        f'echo "@state $(systemctl is-active {unit_name(run.name)} 2>/dev/null)"; '
        f'if [ -f {d}/train.exit ]; then echo "@exit $(cat {d}/train.exit)"; fi; '
        f"if [ -f {tlog} ]; then tail -n 5 {tlog} | sed 's/^/@log /'; fi; "
        f"if [ -f {d}/train.log ]; then tail -c 2000 {d}/train.log | tr '\\r' '\\n' | grep -v '^[[:space:]]*$' "
        "| tail -n 1 | sed 's/^/@line /'; fi; true",
        what="read the training state",
        timeout=120,
    )
    return parse_poll(res.stdout)


def parse_poll(text: str) -> State:
    unit, code, logs, line = "unknown", None, [], ""
    for raw in text.splitlines():
        if raw.startswith("@state "):
            unit = raw[7:].strip() or "inactive"
        elif raw.startswith("@exit "):
            try:
                code = int(raw[6:].strip())
            except ValueError:
                code = None
        elif raw.startswith("@log "):
            logs.append(raw[5:])
        elif raw.startswith("@line "):
            line = raw[6:].strip()
    return State(unit, code, progress.last_progress("\n".join(logs)), line)


def log_tail(host: Host, name: str, file: str = "train.log", lines: int = 20) -> str:
    res = host.remote.run(
        f"tail -n {lines} {host_run_dir(name)}/{file} 2>/dev/null | tr '\\r' '\\n' | grep -v '^[[:space:]]*$' "
        f"| tail -n {lines}",
        check=False,
        what=f"read {file}",
    )
    return res.stdout.rstrip()


class Detached(Exception):
    pass


class TrainingFailed(Exception):
    pass


def follow(
    host: Host,
    run: RunInfo,
    *,
    interval: float = 5.0,
    once: bool = False,
    out: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> State:
    """Print progress until the run ends (or once). Returns the final state; raises TrainingFailed
    (with the tail of train.log) when it failed. Ctrl-C is handled by the caller (detach)."""
    last_shown = None
    shown_line = ""
    lost = 0
    while True:
        st = poll(host, run)
        if st.progress is not None:
            line = progress.format_progress(st.progress)
            if line != last_shown:
                out(line)
                last_shown = line
        elif st.log_line and st.log_line != shown_line and st.running:
            out(f"  ... {st.log_line[:160]}")
            shown_line = st.log_line
        if st.exit_code is not None:
            if st.exit_code != 0:
                raise TrainingFailed(
                    f"training {run.name} failed (exit {st.exit_code}); last lines of "
                    f"{host_run_dir(run.name)}/train.log:\n{log_tail(host, run.name)}"
                )
            return st
        if not st.running:
            lost += 1
            if lost >= 2:  # twice in a row: not a race with the unit's start/stop
                raise TrainingFailed(
                    f"training {run.name} is not running and left no exit code (unit {unit_name(run.name)}: {st.unit}; "
                    f"host rebooted or unit stopped?); last lines of train.log:\n{log_tail(host, run.name)}"
                )
        else:
            lost = 0
        if once:
            return st
        sleep(interval)


def eprint(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
