"""Ollama stand-in: ``bin/ollama`` of the stand-in release archive (its ``lib/ollama/`` holds this
package). Nothing is downloaded and no model runs.

``ollama serve`` listens on OLLAMA_HOST (127.0.0.1:11434) and keeps each model as a manifest under
OLLAMA_MODELS (``manifests/<host>/<namespace>/<model>/<tag>``, as Ollama lays them out), serving what
the deploy and scripts/finetune call: ``GET /api/version``, ``GET /api/tags``, ``POST /api/pull``,
``POST /api/create``, ``DELETE /api/delete``, ``POST /api/generate`` (one JSON answer) and the shared
OpenAI-compatible ``/v1``. The CLI: ``list``, ``rm NAME``, ``create NAME [-f Modelfile] [--quantize Q]``, ``-v``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .openai_api import Handler, answer, serve

VERSION = "0.0.0"  # bin/ollama sets the release's version
PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")
QUANTIZE = ("q4_K_M", "q4_K_S", "q8_0")


def host_port(value: str | None) -> tuple[str, int]:
    """OLLAMA_HOST as Ollama reads it: ``host``, ``host:port``, ``:port`` or a URL."""
    v = (value or "127.0.0.1:11434").split("://")[-1].rstrip("/")
    host, _, port = v.rpartition(":") if ":" in v else (v, "", "")
    return host or "127.0.0.1", int(port or 11434)


def manifest_path(name: str) -> str:
    """``llama3.1:8b`` → registry.ollama.ai/library/llama3.1/8b; ``hf.co/org/Repo`` → hf.co/org/Repo/latest."""
    base, tag = name.rsplit(":", 1) if ":" in name.rsplit("/", 1)[-1] else (name, "latest")
    parts = base.split("/")
    parts = {1: ["registry.ollama.ai", "library"], 2: ["registry.ollama.ai"]}.get(len(parts), []) + parts
    if len(parts) != 3 or not all(PART.fullmatch(p) for p in [*parts, tag]):
        raise ValueError(f"invalid model name {name!r}")
    return "/".join([*parts, tag])


def display(path: str) -> str:
    host, namespace, model, tag = path.split("/")
    prefix = (
        ""
        if (host, namespace) == ("registry.ollama.ai", "library")
        else f"{namespace}/"
        if host == "registry.ollama.ai"
        else f"{host}/{namespace}/"
    )
    return f"{prefix}{model}:{tag}"


class Store:
    def __init__(self, root: str):
        self.root = Path(root) / "manifests"

    def names(self) -> list[str]:
        return sorted(display(str(p.relative_to(self.root))) for p in self.root.glob("*/*/*/*") if p.is_file())

    def get(self, name: str) -> dict | None:
        try:
            return json.loads((self.root / manifest_path(name)).read_text())
        except (OSError, ValueError):
            return None

    def put(self, name: str, info: dict) -> None:
        path = self.root / manifest_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "schemaVersion": 2,
            "standin": True,
            "name": display(manifest_path(name)),
            "modified_at": time.time(),
            **info,
        }
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        tmp.replace(path)

    def delete(self, name: str) -> bool:
        path = self.root / manifest_path(name)
        if not path.is_file():
            return False
        path.unlink()
        return True


class OllamaHandler(Handler):
    label = "Ollama"

    def served(self) -> list[tuple[str, str]]:
        return [(n, n) for n in self.server.store.names()]

    def resolve(self, model: str) -> str | None:
        try:
            return display(manifest_path(model)) if self.server.store.get(model) else None
        except ValueError:
            return None

    def model(self, body: dict) -> str | None:
        """The request's model name, or None after answering 400 (Ollama's error shape)."""
        name = str(body.get("model") or body.get("name") or "")
        try:
            manifest_path(name)
            return name
        except ValueError as e:
            self.send_json(400, {"error": str(e)})
            return None

    def route(self, method: str, path: str) -> bool:
        store, get = self.server.store, method in ("GET", "HEAD")
        if get and path == "/api/version":
            self.send_json(200, {"version": VERSION})
        elif get and path == "/api/tags":
            models = [
                {
                    "name": n,
                    "model": n,
                    "size": 1 << 20,
                    "digest": hashlib.sha256(n.encode()).hexdigest(),
                    "details": {"format": "gguf"},
                    "modified_at": time.strftime(
                        "%Y-%m-%dT%H:%M:%SZ", time.gmtime((store.get(n) or {}).get("modified_at", 0))
                    ),
                }
                for n in store.names()
            ]
            self.send_json(200, {"models": models})
        elif method == "POST" and path in ("/api/pull", "/api/create"):
            body = self.json_body()
            if (name := self.model(body)) is None:
                return True
            if path == "/api/create" and body.get("quantize") and body["quantize"] not in QUANTIZE:
                return self.send_json(400, {"error": f"unsupported quantization type {body['quantize']}"}) or True
            keys = ("from", "template", "system", "parameters", "quantize")
            store.put(name, {"source": "pulled (stand-in)"} if path == "/api/pull" else {k: body.get(k) for k in keys})
            self.send_json(200, {"status": "success"})
        elif method == "DELETE" and path == "/api/delete":
            name = self.model(self.json_body())
            if name is not None:
                found = store.delete(name)
                self.send_json(200 if found else 404, {} if found else {"error": f"model '{name}' not found"})
        elif method == "POST" and path == "/api/generate":
            body = self.json_body()
            name = self.model(body)
            if name is not None and self.resolve(name) is None:
                self.send_json(404, {"error": f"model '{name}' not found, try pulling it first"})
            elif name is not None:
                self.send_json(
                    200,
                    {
                        "model": name,
                        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "response": answer("Ollama", name, str(body.get("prompt") or "")),
                        "done": True,
                        "done_reason": "stop",
                    },
                )
        else:
            return self.openai(method, path)
        return True


def call(method: str, path: str, body: dict | None = None) -> dict:
    host, port = host_port(os.environ.get("OLLAMA_HOST"))
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    req = urllib.request.Request(
        f"http://{host}:{port}{path}",
        method=method,
        headers={"Content-Type": "application/json"},
        data=None if body is None else json.dumps(body).encode(),
    )
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=600) as r:
            return json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        raise SystemExit(f"Error: {json.loads(e.read() or b'{}').get('error', e.reason)}") from None
    except OSError:
        raise SystemExit("Error: could not connect to ollama app, is it running?") from None


def parse_modelfile(text: str) -> dict:
    info: dict = {"parameters": {}}
    for m in re.finditer(r'^[ \t]*(\w+)[ \t]+(?:"""(.*?)"""|([^\n]*))[ \t]*$', text, re.M | re.S):
        word, value = m.group(1).upper(), m.group(2) if m.group(2) is not None else m.group(3).strip()
        if word == "PARAMETER":
            key, _, val = value.partition(" ")
            info["parameters"].setdefault(key, []).append(val.strip().strip('"'))
        elif word in ("FROM", "TEMPLATE", "SYSTEM"):
            info[word.lower()] = value
    return info


def create(args: list[str]) -> None:
    name, opts = (args[0], args[1:]) if args and not args[0].startswith("-") else ("", args)
    modelfile, quantize = "Modelfile", None
    for flag, value in zip(opts[::2], opts[1::2]):
        if flag in ("-f", "--file"):
            modelfile = value
        elif flag in ("-q", "--quantize"):
            quantize = value
    if not name:
        raise SystemExit("Error: usage: ollama create MODEL [-f Modelfile] [--quantize TYPE]")
    try:
        info = parse_modelfile(Path(modelfile).read_text())
    except OSError as e:
        raise SystemExit(f"Error: {modelfile}: {e.strerror}") from None
    source = Path(modelfile).parent / info.get("from", "")
    if info.get("from", "").startswith((".", "/")):
        if not list(source.glob("*.safetensors")):
            raise SystemExit(f"Error: no safetensors files found in {source}")
        info["from"] = str(source.resolve())
    print("gathering model components\ncopying file (stand-in)")
    call("POST", "/api/create", {"model": name, "quantize": quantize, **info})
    print(f"quantizing to {quantize} (stand-in)\nsuccess" if quantize else "success")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cmd = argv[0] if argv else "help"
    if cmd == "serve":
        host, port = host_port(os.environ.get("OLLAMA_HOST"))
        models = os.environ.get("OLLAMA_MODELS") or os.path.expanduser("~/.ollama/models")
        return serve(OllamaHandler, host, port, f"Ollama {VERSION}", store=Store(models))
    if cmd in ("-v", "--version"):
        print(f"ollama version is {VERSION} (stand-in)")
    elif cmd == "list":
        rows = [(m["name"], m["digest"][:12], "1.0 MB", m["modified_at"]) for m in call("GET", "/api/tags")["models"]]
        for row in [("NAME", "ID", "SIZE", "MODIFIED"), *rows]:
            print("".join(f"{c:<{w}}" for c, w in zip(row, (40, 16, 10, 0))))
    elif cmd == "rm" and argv[1:]:
        for name in argv[1:]:
            call("DELETE", "/api/delete", {"model": name})
            print(f"deleted '{name}'")
    elif cmd == "create":
        create(argv[1:])
    else:
        print(
            "usage: ollama serve | list | rm MODEL | create MODEL [-f Modelfile] [--quantize TYPE] | -v (stand-in)",
            file=sys.stderr,
        )
        return 1
    return 0
