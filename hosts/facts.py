"""Facts the roles need that pyinfra does not ship. Each is read-only and cheap."""

from __future__ import annotations

import json
import re
import shlex

from pyinfra.api import FactBase

from components.catalogue import service


class UfwState(FactBase):
    """``{"active": bool, "defaults": {"incoming": ..., "outgoing": ...}, "rules": ["allow 22/tcp from X", ...]}``.

    Rules come from ``ufw show added`` (what the user added, v4 and v6 merged), normalised by
    ``hosts.ops.ufw_rule``.
    """

    def requires_command(self, *args, **kwargs) -> str:
        return "ufw"

    def command(self) -> str:
        return "ufw status verbose; echo '--- added'; ufw show added"

    def process(self, output):
        active, defaults, rules, added = False, {}, [], False
        for line in output:
            line = line.strip()
            if line == "--- added":
                added = True
            elif not added and line.startswith("Status:"):
                active = line.split(":", 1)[1].strip() == "active"
            elif not added and line.startswith("Default:"):
                for m in re.finditer(r"(\w+) \((\w+)\)", line):
                    defaults[m.group(2)] = m.group(1)
            elif added and line.startswith("ufw "):
                rules.append(line[4:])
        return {"active": active, "defaults": defaults, "rules": rules}

    def default(self):
        return {"active": False, "defaults": {}, "rules": []}


class GpuDevices(FactBase):
    """NVIDIA PCI devices (``lspci -d 10de:``); empty without a GPU or without lspci."""

    def command(self) -> str:
        return "(command -v lspci >/dev/null && lspci -d 10de:) || true"

    def process(self, output):
        return [line for line in output if line.strip()]

    def default(self):
        return []


class OllamaModels(FactBase):
    """Model names Ollama serves (``/api/tags``), or ``None`` when Ollama does not answer."""

    def command(self) -> str:
        return f"curl -fsS --max-time 5 {service('ollama').url}/api/tags 2>/dev/null || echo UNREACHABLE"

    def process(self, output):
        text = "\n".join(output).strip()
        if not text or text == "UNREACHABLE":
            return None
        try:
            return sorted(m["name"] for m in json.loads(text).get("models", []))
        except (ValueError, KeyError, TypeError):
            return None

    def default(self):
        return None


class DockerImageId(FactBase):
    """The local id of an image reference, or ``None`` when the image is not present."""

    def command(self, ref: str) -> str:
        return f"docker image inspect --format '{{{{.Id}}}}' {shlex.quote(ref)} 2>/dev/null || true"

    def process(self, output):
        return "\n".join(output).strip() or None

    def default(self):
        return None


class Account(FactBase):
    """One local account: ``{"uid", "gid", "home", "shell", "groups": [...]}``, or None if absent.

    pyinfra's ``Users`` fact reads every account with about ten processes each; under emulation
    that is ~14 s per operation. This asks for one account with two processes."""

    def command(self, user: str) -> str:
        return f"getent passwd {shlex.quote(user)} && id -nG {shlex.quote(user)} || true"

    def process(self, output):
        lines = [ln for ln in output if ln.strip()]
        if not lines:
            return None
        fields = lines[0].split(":")
        if len(fields) < 7:
            return None
        return {
            "uid": int(fields[2]),
            "gid": int(fields[3]),
            "home": fields[5],
            "shell": fields[6],
            "groups": lines[1].split() if len(lines) > 1 else [],
        }


class CpuFlags(FactBase):
    """The CPU's feature flags (``flags`` of the first processor in /proc/cpuinfo), sorted."""

    def command(self) -> str:
        return "grep -m1 '^flags' /proc/cpuinfo || true"

    def process(self, output):
        text = " ".join(output)
        return sorted(set(text.split(":", 1)[1].split())) if ":" in text else []

    def default(self):
        return []


def _key_values(output) -> list[tuple[str, str]] | None:
    """A fact's ``key=value`` lines as pairs, or None when its command printed nothing or ``absent``."""
    lines = [ln.strip() for ln in output if ln.strip()]
    if not lines or lines == ["absent"]:
        return None
    return [(key, value) for key, _, value in (line.partition("=") for line in lines)]


class BlockDeviceProbe(FactBase):
    """What is on a block device, read without writing: ``{"real": /dev/..., "children": n,
    "signatures": [...], "label": ...}`` (``blkid -p``: the superblocks themselves, not the cache;
    ``wipefs -n``: every signature it knows, partition tables included), or None when absent."""

    def command(self, device: str) -> str:
        d = shlex.quote(device)
        return (
            f"if [ -b {d} ]; then echo real=$(readlink -f {d}); echo children=$(($(lsblk -nro NAME {d} | wc -l) - 1)); "
            f"blkid -p -o export {d} 2>/dev/null | sed -n 's/^\\(TYPE\\|PTTYPE\\|LABEL\\)=/blkid_&/p'; "
            f"wipefs -n -p {d} 2>/dev/null | grep -v '^#' | sed 's/^/wipefs=/'; else echo absent; fi"
        )

    def process(self, output):
        pairs = _key_values(output)
        if pairs is None:
            return None
        out = {"real": None, "children": 0, "signatures": [], "label": None}
        for key, value in pairs:
            if key == "real":
                out["real"] = value
            elif key == "children":
                out["children"] = int(value or 0)
            elif key in ("blkid_TYPE", "blkid_PTTYPE"):
                out["signatures"].append(value)
            elif key == "blkid_LABEL":
                out["label"] = value
            elif key == "wipefs":
                fields = value.split(",")  # offset,uuid,label,type
                if len(fields) >= 4 and fields[3] not in out["signatures"]:
                    out["signatures"].append(fields[3])
        return out

    def default(self):
        return None


class StatOverride(FactBase):
    """A file's dpkg-statoverride and its mode now: ``{"override": "user group mode" or None,
    "mode": "755", "user", "group"}``, or None when the file is absent."""

    def command(self, path: str) -> str:
        p = shlex.quote(path)
        return (
            f"if [ -e {p} ]; then echo override=$(dpkg-statoverride --list {p} 2>/dev/null); "
            f"stat -c 'stat=%a %U %G' {p}; else echo absent; fi"
        )

    def process(self, output):
        pairs = _key_values(output)
        if pairs is None:
            return None
        out = {"override": None, "mode": None, "user": None, "group": None}
        for key, value in pairs:
            if key == "override":
                words = value.split()
                out["override"] = " ".join(words[:3]) if len(words) >= 4 else None  # user group mode path
            elif key == "stat":
                out["mode"], out["user"], out["group"] = value.split()
        return out

    def default(self):
        return None


class JsonFile(FactBase):
    """A JSON file's text (``None`` when absent); the operation that reads it parses it."""

    def command(self, path: str) -> str:
        p = shlex.quote(path)
        return f"if [ -f {p} ]; then echo present; cat {p}; else echo absent; fi"

    def process(self, output):
        if not output or output[0].strip() != "present":
            return None
        return "\n".join(output[1:])

    def default(self):
        return None
