"""``scripts/finetune``: dataset → LoRA/QLoRA/full fine-tuning in LLaMA-Factory → merged model → Ollama.

    scripts/finetune validate FILE [--format alpaca|sharegpt] [--max-tokens N] [--eval-ratio 0.1]
    scripts/finetune run STACK [HOST] --dataset FILE --name NAME [--base-model M] [--method auto|lora|qlora|full]
                         [--device auto|cuda|cpu] [--lora-rank 16] [--epochs 3] [--learning-rate 2e-4]
                         [--cutoff-len 2048] [--template qwen] [--detach]
    scripts/finetune status STACK [HOST] --name NAME [--once]
    scripts/finetune export STACK [HOST] --name NAME [--quantize q4_K_M] [--model-name NAME]

STACK is a stack of stacks/ (its host is reached over SSH as the admin user) or ``local`` (the local
test host of scripts/local-host). See docs/finetune.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from operate import cli

from . import dataset, export, formats, models, training, upload, workflow
from .dataset_file import DatasetError
from .host import RemoteError
from .training import ConfigError
from .workflow import Detached, TrainingFailed, eprint

MAX_LISTED = 50
# The run's defaults are TrainParams' own: the options below restate none of them.
TRAIN_DEFAULTS = {f.name: f.default for f in dataclasses.fields(training.TrainParams)}


class Failure(Exception):
    def __init__(self, message: str, code: int = cli.Exit.FAILED):
        super().__init__(message)
        self.code = code


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _env_pair(text: str) -> tuple[str, str]:
    if "=" not in text or not text.split("=", 1)[0]:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k, v


def _name(text: str) -> str:
    try:
        return training.check_name(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--name ")) from None


EXITS = {
    0: "done (validated, started, finished, exported; or detached: the training keeps running)",
    1: "failed: bad rows, a refused training config, the training failed, a host problem",
    2: "unreadable input: no such dataset file, not JSON, too large",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="cmd", required=True, metavar="{validate,run,status,export}")

    v = sub.add_parser("validate", help="check a dataset locally (nothing leaves the machine)")
    v.add_argument("file")
    _dataset_opts(v)
    v.add_argument(
        "--max-tokens",
        type=int,
        default=dataset.DEFAULT_MAX_TOKENS,
        help="context length the rows must fit (default %(default)s)",
    )
    v.add_argument(
        "--write-split", metavar="PREFIX", help="also write PREFIX.train.json and PREFIX.eval.json (normalised)"
    )

    r = sub.add_parser("run", help="validate, upload, register and start training (detached on the host)")
    _target(r)
    r.add_argument("--dataset", required=True, metavar="FILE")
    r.add_argument("--name", required=True, type=_name, help="run, dataset and (by default) Ollama model name")
    _dataset_opts(r)
    r.add_argument("--base-model", default=TRAIN_DEFAULTS["base_model"])
    r.add_argument("--method", default="auto", choices=training.METHODS)
    r.add_argument(
        "--device",
        default="auto",
        choices=training.DEVICES,
        help="cpu: train without a GPU (very slow; refused unless given)",
    )
    r.add_argument("--lora-rank", type=int, default=TRAIN_DEFAULTS["lora_rank"])
    r.add_argument("--epochs", type=_float, default=TRAIN_DEFAULTS["epochs"])
    r.add_argument("--learning-rate", type=_float, default=TRAIN_DEFAULTS["learning_rate"])
    r.add_argument(
        "--cutoff-len",
        type=int,
        default=TRAIN_DEFAULTS["cutoff_len"],
        help="max tokens per row (also the validation limit)",
    )
    r.add_argument(
        "--template",
        default=TRAIN_DEFAULTS["template"],
        help="LLaMA-Factory chat template of the base model (qwen, llama3, ...)",
    )
    r.add_argument("--batch-size", type=int, default=TRAIN_DEFAULTS["batch_size"], help="per-device train batch size")
    r.add_argument(
        "--grad-accum",
        type=int,
        default=TRAIN_DEFAULTS["gradient_accumulation_steps"],
        help="gradient accumulation steps",
    )
    r.add_argument("--logging-steps", type=int, default=TRAIN_DEFAULTS["logging_steps"])
    r.add_argument("--save-steps", type=int, default=TRAIN_DEFAULTS["save_steps"])
    r.add_argument("--max-samples", type=int, help="use at most this many rows (quick trials)")
    r.add_argument(
        "--exec-env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for llamafactory-cli (not for secrets: it is visible on the host)",
    )
    r.add_argument("--detach", action="store_true", help="start and return at once")
    r.add_argument("--interval", type=_float, default=5.0, help=argparse.SUPPRESS)

    s = sub.add_parser("status", help="re-attach to a run's progress (or print its final state)")
    _target(s)
    s.add_argument("--name", required=True, type=_name)
    s.add_argument("--once", action="store_true", help="print the current state and return")
    s.add_argument("--interval", type=_float, default=5.0, help=argparse.SUPPRESS)

    e = sub.add_parser("export", help="merge the adapter, create the Ollama model, smoke-test it, record it")
    _target(e)
    e.add_argument("--name", required=True, type=_name)
    e.add_argument("--quantize", choices=training.QUANTIZE, help="quantize while importing into Ollama")
    e.add_argument("--model-name", type=_name, help="Ollama model name (default: the run name)")
    e.add_argument("--prompt", default=export.SMOKE_PROMPT, help="the smoke prompt")


def _target(p: argparse.ArgumentParser) -> None:
    cli.add_stack(p, local=True, help="a stack's host is reached over SSH as the admin user")
    p.add_argument("host", nargs="?", help="host name in the stack (optional for 'local' or a one-host stack)")


def _dataset_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=formats.FORMATS, help="default: detected from the first row")
    p.add_argument(
        "--eval-ratio",
        type=_float,
        default=dataset.DEFAULT_EVAL_RATIO,
        help="share of rows held out for evaluation (default %(default)s)",
    )
    p.add_argument("--seed", type=int, default=dataset.DEFAULT_SEED, help=argparse.SUPPRESS)


# --- validate -------------------------------------------------------------------------------------


def check_dataset(path: str, fmt: str | None, max_tokens: int, eval_ratio: float, seed: int) -> dataset.Report:
    """Validate and print the report; raise Failure on bad rows."""
    rep = dataset.validate(path, fmt, max_tokens=max_tokens, eval_ratio=eval_ratio, seed=seed)
    for p in rep.problems[:MAX_LISTED]:
        eprint(f"{rep.path}: {p}")
    if len(rep.problems) > MAX_LISTED:
        eprint(f"{rep.path}: ... and {len(rep.problems) - MAX_LISTED} more problems")
    for w in rep.warnings:
        eprint(f"warning: {w}")
    print(rep.summary(), flush=True)
    if not rep.ok:
        raise Failure(f"dataset invalid: {rep.bad_rows} bad row(s) of {rep.total} in {rep.path}; nothing was uploaded")
    return rep


def cmd_validate(a: argparse.Namespace) -> int:
    rep = check_dataset(a.file, a.format, a.max_tokens, a.eval_ratio, a.seed)
    if a.write_split:
        from pathlib import Path

        parts = {Path(f"{a.write_split}.{part}.json"): idx for part, idx in (("train", rep.train), ("eval", rep.eval))}
        for out in parts:
            if not out.parent.is_dir():
                raise Failure(f"--write-split {a.write_split}: no directory {out.parent}")
        _write_all({out: lambda idx=idx: upload.dumps_rows([rep.rows[i] for i in idx]) for out, idx in parts.items()})
        for out, idx in parts.items():
            print(f"wrote {out} ({len(idx)} rows)")
    print("dataset OK")
    return 0


def _write_all(files: dict) -> None:
    """Write every file (path → a function giving its text) or none: each to a temporary file beside
    it, all renamed into place once all are written, so a crash or a full disk leaves no partial split."""
    import os
    import tempfile
    from pathlib import Path

    umask = os.umask(0)
    os.umask(umask)
    written: dict[Path, Path] = {}
    try:
        for out, text in files.items():
            fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
            written[out] = Path(tmp)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                os.fchmod(f.fileno(), 0o666 & ~umask)  # as a plain open() would create it
                f.write(text())
        for out, tmp in written.items():
            os.replace(tmp, out)
    except (OSError, UnicodeError) as e:
        raise Failure(f"cannot write {out}: {getattr(e, 'strerror', None) or e}") from None
    finally:
        for tmp in written.values():
            tmp.unlink(missing_ok=True)


# --- run / status ---------------------------------------------------------------------------------


def _resolve(a: argparse.Namespace):
    from .host import resolve

    return resolve(a.stack, a.host)


def cmd_run(a: argparse.Namespace) -> int:
    training.check_name(a.name)
    rep = check_dataset(a.dataset, a.format, a.cutoff_len, a.eval_ratio, a.seed)
    host = _resolve(a)
    print(f"host: {host.remote.label}", flush=True)
    workflow.preflight(host)
    gpus, note = workflow.gpus(host)
    if note:
        eprint(f"warning: {note}")
    choice = training.choose_method(a.method, a.base_model, gpus, a.device)
    for w in choice.warnings:
        eprint(f"warning: {w}")
    params = training.TrainParams(
        name=a.name, base_model=a.base_model, method=choice.method, device=choice.device, lora_rank=a.lora_rank,
        epochs=a.epochs, learning_rate=a.learning_rate, cutoff_len=a.cutoff_len, template=a.template,
        val_size=a.eval_ratio, batch_size=a.batch_size, gradient_accumulation_steps=a.grad_accum,
        logging_steps=a.logging_steps, save_steps=a.save_steps, seed=a.seed, max_samples=a.max_samples,
    )  # fmt: skip
    cfg = training.train_config(params)
    print(f"method: {choice.method} on {choice.device} ({choice.reason})", flush=True)

    ds_path = workflow.upload_dataset(host, a.name, upload.dumps_rows(rep.rows))
    print(f"uploaded {len(rep.rows)} rows to {ds_path}", flush=True)
    entry = upload.dataset_info_entry(a.name, rep.fmt, rep.rows)
    changed = workflow.register_dataset(host, a.name, entry)
    print(f"dataset_info.json: {a.name!r} {'registered' if changed else 'already registered'} ({rep.fmt})", flush=True)

    header = (
        f"LLaMA-Factory training config written by scripts/finetune run ({a.name}).\n"
        f"Method {choice.method} on {choice.device}: {choice.reason}.\n"
        "No secrets here: the Hugging Face token reaches the container as an environment variable."
    )
    train_yaml = training.render_yaml(cfg, header)
    run = workflow.RunInfo(
        name=a.name, base_model=a.base_model, method=choice.method, device=choice.device, template=a.template,
        dataset=a.name, rows=len(rep.rows), output_dir=cfg["output_dir"], started_at=time.time(),
    )  # fmt: skip
    token = workflow.write_token_env(host)
    extra_env = dict(a.exec_env)
    if choice.device == "cpu":
        extra_env.setdefault("CUDA_VISIBLE_DEVICES", "")
    workflow.start_training(host, run, train_yaml, token=token, extra_env=extra_env)
    steps = training.estimate_steps(len(rep.rows), a.eval_ratio, a.epochs, a.batch_size, a.grad_accum)
    print(
        f"started {workflow.unit_name(a.name)} on {host.name}: ~{steps} steps; config "
        f"{workflow.host_run_dir(a.name)}/train.yaml, log {workflow.host_run_dir(a.name)}/train.log",
        flush=True,
    )
    if a.detach:
        print(f"detached. Follow it: scripts/finetune status {host.cli_args()} --name {a.name}")
        return 0
    return _follow(host, run, a.interval, once=False)


def _follow(host, run: workflow.RunInfo, interval: float, once: bool) -> int:
    try:
        st = workflow.follow(host, run, interval=interval, once=once, out=lambda s: print(s, flush=True))
    except KeyboardInterrupt:
        raise Detached() from None
    if st.exit_code == 0:
        p = st.progress
        done = f" after {p.step} steps, loss {p.loss:.4f}" if p and p.loss is not None else ""
        print(f"training {run.name} finished{done}; output {workflow.host_path(run.output_dir)}")
        print(f"next: scripts/finetune export {host.cli_args()} --name {run.name} [--quantize q4_K_M]")
    elif once:
        print(f"training {run.name}: {'running' if st.running else st.unit} (unit {workflow.unit_name(run.name)})")
    return 0


def cmd_status(a: argparse.Namespace) -> int:
    training.check_name(a.name)
    host = _resolve(a)
    run = workflow.read_run(host, a.name)
    print(
        f"run {run.name} on {host.remote.label}: {run.method} of {run.base_model} on {run.device}, {run.rows} rows",
        flush=True,
    )
    return _follow(host, run, a.interval, once=a.once)


# --- export ---------------------------------------------------------------------------------------


def cmd_export(a: argparse.Namespace) -> int:
    training.check_name(a.name)
    model = a.model_name or a.name
    training.check_name(model, "--model-name")
    host = _resolve(a)
    workflow.preflight(host)
    run = workflow.read_run(host, a.name)
    st = workflow.poll(host, run)
    if st.running:
        raise Failure(f"training {a.name} is still running (scripts/finetune status {host.cli_args()} --name {a.name})")
    if st.exit_code != 0:
        raise Failure(
            f"training {a.name} did not finish successfully ("
            + (f"exit {st.exit_code}" if st.exit_code is not None else f"no exit code, unit {st.unit}")
            + "): nothing to export"
        )
    merge = training.merge_config(run.name, run.base_model, run.template, run.method)
    header = f"LLaMA-Factory export config written by scripts/finetune export ({run.name})."
    token = workflow.write_token_env(host)
    print(
        f"merging {run.method} output of {run.name} into {run.base_model} (llamafactory-cli export, on CPU) ...",
        flush=True,
    )
    t0 = time.monotonic()
    merged = export.export_merged(host, run, training.render_yaml(merge, header), token=token)
    print(f"merged model in {merged} ({time.monotonic() - t0:.0f}s)", flush=True)
    print(f"ollama create {model}" + (f" --quantize {a.quantize}" if a.quantize else "") + " ...", flush=True)
    export.ollama_create(host, run, model, merged, a.quantize)
    answer = export.smoke(host, model, a.prompt)
    print(f"smoke prompt answered: {answer.splitlines()[0][:200]}", flush=True)
    _record_model(host, model)
    return 0


def _record_model(host, model: str) -> None:
    if host.is_local:
        path, changed = models.add_local_model(host.local_state_dir, model)
        print(
            f"{'recorded' if changed else 'already recorded'} {model} in {path} (the local inventory's extra Ollama "
            "models)"
        )
        return
    from components.stackfile import STACKS_DIR

    path = STACKS_DIR / f"Pulumi.{host.stack}.yaml"
    try:
        changed = models.add_model_to_stack_file(path, model)
    except models.StackFileError as e:
        raise Failure(f"model {model} is served, but the stack file was not updated: {e}") from None
    if changed:
        rel = path.relative_to(STACKS_DIR.parent)
        print(f"added {model} to llm-platform:host → ollama.models in {rel}; commit it so the next converge keeps it:")
        print(f"  git add {rel} && git commit -m 'ollama: serve fine-tuned {model}' -- {rel}")
    else:
        print(f"{model} is already in {path.name} (ollama.models)")


COMMANDS = {"validate": cmd_validate, "run": cmd_run, "status": cmd_status, "export": cmd_export}


def run_command(a: argparse.Namespace) -> int:
    try:
        return COMMANDS[a.cmd](a)
    except Detached:
        name = getattr(a, "name", "")
        eprint(
            f"\ndetached; the training keeps running on the host. Re-attach: scripts/finetune status "
            f"{a.stack}{' ' + a.host if a.host else ''} --name {name}"
        )
        return cli.Exit.OK
    except Failure as e:
        eprint(f"error: {e}")
        return e.code
    except DatasetError as e:
        eprint(f"error: {e}")
        return cli.Exit.NOT_CHECKED
    except (ConfigError, RemoteError, TrainingFailed) as e:
        eprint(f"error: {e}")
        return cli.Exit.FAILED
