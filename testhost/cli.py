"""The local Debian 12 test host (qemu): ``scripts/local-host VERB`` (see docs/local-host.md).

Its command line is one of the operator commands' (``python -m operate local-host``, operate/cli.py):
the same exit-code table, with ``ssh CMD`` the exception that exits with CMD's own code, as ssh does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from . import image as image_mod
from . import lifecycle, netns, runner, vm
from .config import HOSTNAME, config
from .util import LocalHostError, ensure_host_packages

EXITS = {
    0: "done (up and verify: the host checks passed; audit: the hardening index reached its target)",
    1: "a step failed (one line says why), a host check failed, or audit found warnings or a low index",
    2: "the host checks could not run (pytest interrupted, or nothing collected)",
}


def _checks(rc: int) -> int:
    """pytest's exit code as the table's: 0 passed, 1 a check failed, anything else not checked."""
    return rc if rc in (0, 1) else 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="verb", required=True)
    u = sub.add_parser("up", help="build/reuse image, boot, wait for SSH, converge, verify")
    u.add_argument("--no-converge", action="store_true", help="only boot and wait for SSH")
    u.add_argument("--no-verify", action="store_true", help="skip testinfra")
    c = sub.add_parser("converge", help="run the pyinfra deploy against the guest")
    c.add_argument("--json", action="store_true", help="print {changed, operations} as JSON on stdout")
    c.add_argument("pyinfra_args", nargs=argparse.REMAINDER, help="extra pyinfra arguments after --")
    v = sub.add_parser("verify", help="run tests/hosts (testinfra) against the guest")
    v.add_argument("pytest_args", nargs=argparse.REMAINDER, help="extra pytest arguments after --")
    sh = sub.add_parser("ssh", help="run COMMAND as root on the guest (exit: its own code), or open a root shell")
    sh.add_argument("command", nargs=argparse.REMAINDER)
    d = sub.add_parser("down", help="stop VM, services, namespace (keeps caches and data disk)")
    d.add_argument("--purge", action="store_true", help="also delete the state dir, data disk included")
    st = sub.add_parser("status", help="is it running, ports, state dir")
    st.add_argument("--json", action="store_true")
    au = sub.add_parser("audit", help="Lynis on the guest: hardening index, warnings, suggestions not taken")
    au.add_argument(
        "--profile",
        choices=("platform", "stock"),
        default="platform",
        help="platform: Debian's profile + certificate expiry of the platform's certificates only "
        "(default); stock: Debian's profile alone (~20 min more under emulation)",
    )
    sc = sub.add_parser("scan", help="TCP-scan the guest from the scan namespace")
    sc.add_argument("--ports", default="1-65535")
    im = sub.add_parser("image", help="build (or reuse) the cached base image and print its path")
    im.add_argument("--rebuild", action="store_true")
    im.add_argument("--prune", action="store_true", help="delete cached images of other recipes")
    sub.add_parser("recreate", help="new VM from the base image with the same data disk")
    sub.add_parser("reboot", help="reboot the guest in place")
    ac = sub.add_parser("accel", help="show the accelerator choice (kvm/tcg) and why")
    ac.add_argument("--probe", action="store_true", help="run the KVM probe boot even if cached")


def run_command(args: argparse.Namespace) -> int:
    try:
        s = config()
    except ValueError as e:  # a bad LLM_LOCAL_* setting: one line, before anything starts
        print(f"local-host: error: {e}", file=sys.stderr)
        return 3
    try:
        return _run(args, s)
    except LocalHostError as e:
        print(f"local-host: error: {e}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, s) -> int:

    def strip_dashes(extra: list[str]) -> list[str]:
        return extra[1:] if extra[:1] == ["--"] else extra

    if args.verb == "up":
        return _checks(
            lifecycle.up(s, do_converge=not args.no_converge, do_verify=not (args.no_verify or args.no_converge))
        )
    if args.verb == "converge":
        lifecycle.require_running(s)
        changed, names = runner.converge(json=args.json, s=s, extra_args=strip_dashes(args.pyinfra_args))
        if args.json:
            print(json.dumps({"changed": changed, "operations": names}))
        return 0
    if args.verb == "verify":
        lifecycle.require_running(s)
        return _checks(runner.verify(s, strip_dashes(args.pytest_args)))
    if args.verb == "ssh":
        lifecycle.require_running(s)
        cmd = strip_dashes(args.command)
        if not cmd:
            os.execvp("ssh", [*vm.ssh_args(s, tty=True), "sudo", "-i"])
        from operate.remote import Remote

        tty = sys.stdin.isatty() and sys.stdout.isatty()
        return subprocess.run(Remote(vm.ssh_args(s, tty=tty), HOSTNAME).argv(" ".join(cmd))).returncode
    if args.verb == "down":
        lifecycle.down(s, purge=args.purge)
        return 0
    if args.verb == "status":
        if args.json:
            print(json.dumps(lifecycle.status(s), indent=2))
        else:
            lifecycle.print_status(s)
        return 0
    if args.verb == "audit":
        from . import audit

        lifecycle.require_running(s)
        return audit.run(s, profile=args.profile)
    if args.verb == "scan":
        lifecycle.require_running(s)
        print(" ".join(str(x) for x in netns.scan(args.ports, s)))
        return 0
    if args.verb == "image":
        ensure_host_packages()
        img = image_mod.ensure_image(s, rebuild=args.rebuild)
        if args.prune:
            running_image = vm.vm_info(s).get("image") if vm.is_running(s) else None
            in_use = (Path(running_image),) if running_image else ()
            for removed in image_mod.prune_images(s, keep=img.dir, also_keep=in_use):
                print(f"removed {removed}", file=sys.stderr)
        print(img.dir)
        return 0
    if args.verb == "recreate":
        vm.stop(s)
        lifecycle.ensure_running(s, fresh=True)
        return 0
    if args.verb == "reboot":
        lifecycle.require_running(s)
        vm.reboot(s)
        return 0
    if args.verb == "accel":
        accel, why = vm.detect_accel(s, probe=True)
        print(f"chosen: {accel}: {why}")
        if args.probe:  # probe even where the module checks already ruled KVM out
            (s.cache_dir / "kvm-probe.json").unlink(missing_ok=True)
            ok, pwhy = vm.probe_kvm(s, image_mod.ensure_image(s))
            print(f"probe: {'works' if ok else 'broken'}: {pwhy}")
        return 0
    raise AssertionError(f"verb {args.verb!r} has a parser and no code")
