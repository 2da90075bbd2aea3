#!/usr/bin/env python3
"""STAND-IN for the ``ollama`` binary -- for tests only, it runs no model.

Shipped by ``tests/standins/build.py`` as ``bin/ollama`` inside a stand-in
``ollama-linux-amd64.tgz`` with the same layout as the real release, so the
platform's production install path (download, sha256 check, extract, systemd
unit running ``ollama serve``) is exercised unchanged on a test host that has
no internet.  Standard library only; Python 3.8+.

Server (``ollama serve``): Ollama's REST API on ``$OLLAMA_HOST`` (default
127.0.0.1:11434) with models kept as small manifest + blob files under
``$OLLAMA_MODELS`` (default ~/.ollama/models, same directory layout as Ollama),
so they persist across restarts.  Answers are deterministic text derived from
the prompt and say that they come from a stand-in.

Client: ``serve``, ``list``/``ls``, ``pull``, ``create``, ``run``, ``show``,
``rm``, ``cp``, ``ps``, ``stop``, ``--version``/``-v``/``version``; the client
talks to the server over HTTP like the real one.
"""

import datetime
import hashlib
import json
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The build stamps the pinned Ollama version this stand-in replaces on the next line.
STANDIN_VERSION = "0.0.0-dev"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11434
REGISTRY = "registry.ollama.ai"
MISSING_PREFIX = "standin-missing"  # names that fail to pull, for negative tests
QUANT_TYPES = {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "q6_k", "q3_k_s", "q3_k_m", "q3_k_l", "q2_k"}

MT_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_MODEL = "application/vnd.ollama.image.model"
MT_ADAPTER = "application/vnd.ollama.image.adapter"
MT_TEMPLATE = "application/vnd.ollama.image.template"
MT_SYSTEM = "application/vnd.ollama.image.system"
MT_PARAMS = "application/vnd.ollama.image.params"
MT_LICENSE = "application/vnd.ollama.image.license"
MT_MESSAGES = "application/vnd.ollama.image.messages"

CHATML_TEMPLATE = (
    "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    '{{ range .Messages }}{{ if eq .Role "user" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n<|im_start|>assistant\n'
    '{{ else if eq .Role "assistant" }}{{ .Content }}<|im_end|>\n{{ end }}{{ end }}'
)
PLAIN_TEMPLATE = "{{ .Prompt }}"


def version_string():
    return os.environ.get("OLLAMA_STANDIN_VERSION") or STANDIN_VERSION


# --------------------------------------------------------------------------- helpers


def log(msg, level="INFO"):
    ts = datetime.datetime.now().astimezone().isoformat(timespec="milliseconds")
    sys.stderr.write('time=%s level=%s source=standin msg="%s"\n' % (ts, level, msg.replace('"', "'")))
    sys.stderr.flush()


def go_json(obj):
    """JSON the way Ollama's Go server writes it: compact, UTF-8, with <, > and & escaped."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def ts_rfc3339(ts):
    return datetime.datetime.fromtimestamp(ts).astimezone().isoformat()


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def human_bytes(n):
    for unit, size in (("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)):
        if n >= size:
            return "%.1f %s" % (n / size, unit) if n < 10 * size else "%d %s" % (n // size, unit)
    return "%d B" % n


def human_ago(ts):
    d = max(0, time.time() - ts)
    for unit, sec in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if d >= sec:
            k = int(d // sec)
            return "%s %s%s ago" % ("About a" if k == 1 and unit == "hour" else k, unit, "" if k == 1 else "s")
    return "Less than a second ago" if d < 1 else "%d seconds ago" % int(d)


def format_params(n):
    if n >= 1e9:
        return "%.1fB" % (n / 1e9)
    if n >= 1e6:
        return "%.2fM" % (n / 1e6)
    if n >= 1e3:
        return "%.2fK" % (n / 1e3)
    return str(int(n))


def parse_host(value, for_client=False):
    """``OLLAMA_HOST`` -> (scheme, host, port), the way Ollama's envconfig reads it."""
    s = (value or "").strip().strip('"').strip("'")
    scheme = "http"
    if "://" in s:
        scheme, s = s.split("://", 1)
    s = s.split("/", 1)[0]
    host, port = s, None
    if s.startswith("["):
        end = s.find("]")
        host = s[1:end]
        rest = s[end + 1 :]
        if rest.startswith(":") and rest[1:]:
            port = int(rest[1:])
    elif s.count(":") == 1:
        host, p = s.split(":")
        port = int(p) if p else None
    if port is None:
        port = 443 if scheme == "https" and s else DEFAULT_PORT
    if not s:
        host = DEFAULT_HOST
    if for_client and host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return scheme, host, port


def models_dir():
    d = os.environ.get("OLLAMA_MODELS")
    if d:
        return os.path.abspath(os.path.expanduser(d))
    return os.path.join(os.path.expanduser("~"), ".ollama", "models")


NAME_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,79}$")


class Name(object):
    """A model name, ``[host/][namespace/]model[:tag]``, as Ollama splits it."""

    def __init__(self, raw):
        s = (raw or "").strip()
        for pfx in ("https://", "http://"):
            if s.startswith(pfx):
                s = s[len(pfx) :]
        tag = "latest"
        last = s.rsplit("/", 1)[-1]
        if ":" in last:
            s, tag = s.rsplit(":", 1)
        parts = s.split("/") if s else []
        host, ns = REGISTRY, "library"
        if len(parts) == 1:
            model = parts[0]
        elif len(parts) == 2:
            ns, model = parts
        elif len(parts) == 3:
            host, ns, model = parts
        else:
            raise ValueError("invalid model name")
        for p in (ns, model, tag):
            if not NAME_PART.match(p):
                raise ValueError("invalid model name")
        if not re.match(r"^[A-Za-z0-9.\-_:]+$", host):
            raise ValueError("invalid model name")
        self.host, self.namespace, self.model, self.tag = host, ns, model, tag

    @property
    def display(self):
        base = self.model
        if self.host != REGISTRY:
            base = "%s/%s/%s" % (self.host, self.namespace, self.model)
        elif self.namespace != "library":
            base = "%s/%s" % (self.namespace, self.model)
        return "%s:%s" % (base, self.tag)

    def manifest_rel(self):
        return os.path.join("manifests", self.host, self.namespace, self.model, self.tag)

    def key(self):
        return (self.host.lower(), self.namespace.lower(), self.model.lower(), self.tag.lower())


def guess_family(name):
    n = name.lower()
    for key, fam in (("qwen3", "qwen3"), ("qwen", "qwen2"), ("gemma", "gemma"), ("phi", "phi3"), ("mistral", "llama"), ("llama", "llama"), ("tinyllama", "llama")):
        if key in n:
            return fam
    return "llama"


def guess_param_size(tag):
    m = re.match(r"^(\d+(?:\.\d+)?)([bmBM])", tag)
    if m:
        return m.group(1) + m.group(2).upper()
    return "1B"


def answer_text(model, prompt, fmt=None):
    """The deterministic stand-in answer."""
    snippet = " ".join((prompt or "").split())
    if len(snippet) > 160:
        snippet = snippet[:157] + "..."
    digest = sha256_bytes(("%s\0%s" % (model, prompt or "")).encode("utf-8"))[:12]
    text = "Stand-in answer from %s (Ollama stand-in, no model ran). You said: %s. Digest %s." % (model, snippet or "(empty)", digest)
    if fmt:
        return json.dumps({"standin": True, "model": model, "answer": text, "digest": digest})
    return text


def word_chunks(text):
    return re.findall(r"\S+\s*|\s+", text) or [""]


def embedding_of(model, text, dim=8):
    h = hashlib.sha256(("%s\0%s" % (model, text)).encode("utf-8")).digest()
    return [round((b - 127.5) / 127.5, 6) for b in h[:dim]]


# --------------------------------------------------------------------------- Modelfile


def parse_modelfile(text):
    """Parse a Modelfile into [(COMMAND, argument)] (triple-quoted values may span lines)."""
    out = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        cmd = parts[0].upper()
        arg = parts[1] if len(parts) > 1 else ""
        if arg.startswith('"""'):
            body = arg[3:]
            if '"""' in body:
                arg = body[: body.index('"""')]
            else:
                chunks = [body]
                while i < len(lines):
                    ln = lines[i]
                    i += 1
                    if '"""' in ln:
                        chunks.append(ln[: ln.index('"""')])
                        break
                    chunks.append(ln)
                arg = "\n".join(chunks)
        elif len(arg) >= 2 and arg[0] == arg[-1] == '"':
            arg = arg[1:-1]
        if cmd not in ("FROM", "ADAPTER", "TEMPLATE", "SYSTEM", "PARAMETER", "LICENSE", "MESSAGE", "REQUIRES"):
            raise ValueError("command must be one of \"from\", \"license\", \"template\", \"system\", \"adapter\", \"parameter\", or \"message\"")
        out.append((cmd, arg))
    if not any(c == "FROM" for c, _ in out):
        raise ValueError("no FROM line")
    return out


def param_value(v):
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] == '"':
        return v[1:-1]
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    return v


def modelfile_to_request(commands, base_dir, blob_uploader):
    """Turn parsed Modelfile commands into an /api/create body (the client side of ``ollama create``)."""
    req = {}
    params = {}
    messages = []
    for cmd, arg in commands:
        if cmd in ("FROM", "ADAPTER"):
            path = os.path.expanduser(arg)
            if not os.path.isabs(path):
                path = os.path.join(base_dir, path)
            looks_like_path = arg.startswith((".", "/", "~")) or os.path.exists(path)
            if looks_like_path:
                if not os.path.exists(path):
                    raise ValueError("%s: no such file or directory" % arg)
                files = collect_model_files(path)
                digests = {}
                for rel, full in files:
                    digests[rel] = blob_uploader(full)
                req["files" if cmd == "FROM" else "adapters"] = digests
            elif cmd == "FROM":
                req["from"] = arg
            else:
                raise ValueError("ADAPTER must be a path")
        elif cmd == "TEMPLATE":
            req["template"] = arg
        elif cmd == "SYSTEM":
            req["system"] = arg
        elif cmd == "LICENSE":
            req.setdefault("license", []).append(arg)
        elif cmd == "PARAMETER":
            k, _, v = arg.partition(" ")
            k = k.strip()
            if k == "stop":
                params.setdefault("stop", []).append(param_value(v))
            else:
                params[k] = param_value(v)
        elif cmd == "MESSAGE":
            role, _, content = arg.partition(" ")
            messages.append({"role": role, "content": content})
    if params:
        req["parameters"] = params
    if messages:
        req["messages"] = messages
    return req


def collect_model_files(path):
    """Files to upload for a FROM/ADAPTER path: a GGUF file, or a safetensors directory."""
    if os.path.isfile(path):
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic != b"GGUF" and not path.endswith(".gguf"):
            raise ValueError("unknown model file type for %s (expected GGUF or a safetensors directory)" % path)
        return [(os.path.basename(path), path)]
    names = sorted(os.listdir(path))
    picked = []
    has_weights = False
    for n in names:
        full = os.path.join(path, n)
        if not os.path.isfile(full):
            continue
        if n.endswith(".safetensors") or n.endswith(".gguf"):
            has_weights = True
            picked.append((n, full))
        elif n.endswith(".json") or n in ("tokenizer.model", "merges.txt", "vocab.txt"):
            picked.append((n, full))
    if not has_weights:
        raise ValueError("no safetensors or gguf files were found in %s" % path)
    return picked


# --------------------------------------------------------------------------- model store


class Store(object):
    def __init__(self, root):
        self.root = root
        self.lock = threading.RLock()
        os.makedirs(os.path.join(root, "blobs"), exist_ok=True)
        os.makedirs(os.path.join(root, "manifests"), exist_ok=True)

    # blobs
    def blob_path(self, digest):
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or not re.match(r"^[0-9a-f]{64}$", hexd):
            raise ValueError("invalid digest format")
        return os.path.join(self.root, "blobs", "sha256-" + hexd)

    def has_blob(self, digest):
        return os.path.isfile(self.blob_path(digest))

    def put_blob_bytes(self, data):
        digest = "sha256:" + sha256_bytes(data)
        path = self.blob_path(digest)
        if not os.path.exists(path):
            self._atomic_write(path, data)
        return digest, len(data)

    def read_blob(self, digest):
        with open(self.blob_path(digest), "rb") as f:
            return f.read()

    def _atomic_write(self, path, data):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)

    # manifests
    def manifest_path(self, name):
        return os.path.join(self.root, name.manifest_rel())

    def list_names(self):
        base = os.path.join(self.root, "manifests")
        out = []
        for dirpath, _dirs, files in os.walk(base):
            for f in files:
                if f.startswith(".tmp-"):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, f), base).split(os.sep)
                if len(rel) != 4:
                    continue
                host, ns, model, tag = rel
                try:
                    out.append(Name("%s/%s/%s:%s" % (host, ns, model, tag)))
                except ValueError:
                    continue
        return out

    def find(self, raw):
        """Resolve a requested name to a stored one (case-insensitive, like Ollama)."""
        name = Name(raw)
        path = self.manifest_path(name)
        if os.path.isfile(path):
            return name
        for n in self.list_names():
            if n.key() == name.key():
                return n
        return None

    def load(self, name):
        path = self.manifest_path(name)
        with open(path, "rb") as f:
            raw = f.read()
        return json.loads(raw.decode("utf-8")), raw, os.path.getmtime(path)

    def write_manifest(self, name, layers, config):
        cdig, csize = self.put_blob_bytes(json.dumps(config, sort_keys=True).encode("utf-8"))
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": {"mediaType": MT_CONFIG, "digest": cdig, "size": csize},
            "layers": layers,
        }
        raw = json.dumps(manifest, separators=(",", ":")).encode("utf-8")
        with self.lock:
            for n in self.list_names():  # a new spelling of an existing name replaces it
                if n.key() == name.key() and self.manifest_path(n) != self.manifest_path(name):
                    os.unlink(self.manifest_path(n))
            self._atomic_write(self.manifest_path(name), raw)
        return sha256_bytes(raw)

    def delete(self, name):
        with self.lock:
            manifest, _, _ = self.load(name)
            os.unlink(self.manifest_path(name))
            d = os.path.dirname(self.manifest_path(name))
            while d != os.path.join(self.root, "manifests"):
                try:
                    os.rmdir(d)
                except OSError:
                    break
                d = os.path.dirname(d)
            self.prune([manifest["config"]] + manifest.get("layers", []))

    def prune(self, layers):
        used = set()
        for n in self.list_names():
            try:
                m, _, _ = self.load(n)
            except (OSError, ValueError):
                continue
            used.add(m["config"]["digest"])
            used.update(layer["digest"] for layer in m.get("layers", []))
        for layer in layers:
            if layer["digest"] not in used:
                try:
                    os.unlink(self.blob_path(layer["digest"]))
                except OSError:
                    pass

    def info(self, name):
        """Everything the API tells about a model."""
        manifest, raw, mtime = self.load(name)
        try:
            config = json.loads(self.read_blob(manifest["config"]["digest"]).decode("utf-8"))
        except (OSError, ValueError):
            config = {}
        size = sum(int(layer.get("size", 0)) for layer in manifest.get("layers", []))
        out = {"name": name, "manifest": manifest, "config": config, "size": size, "digest": sha256_bytes(raw), "mtime": mtime}
        for layer in manifest.get("layers", []):
            mt = layer.get("mediaType")
            try:
                if mt == MT_TEMPLATE:
                    out["template"] = self.read_blob(layer["digest"]).decode("utf-8")
                elif mt == MT_SYSTEM:
                    out["system"] = self.read_blob(layer["digest"]).decode("utf-8")
                elif mt == MT_PARAMS:
                    out["parameters"] = json.loads(self.read_blob(layer["digest"]).decode("utf-8"))
                elif mt == MT_LICENSE:
                    out.setdefault("license", []).append(self.read_blob(layer["digest"]).decode("utf-8"))
                elif mt == MT_MESSAGES:
                    out["messages"] = json.loads(self.read_blob(layer["digest"]).decode("utf-8"))
            except (OSError, ValueError):
                pass
        return out


def details_of(info):
    c = info["config"]
    return {
        "parent_model": c.get("parent_model", ""),
        "format": c.get("model_format", "gguf"),
        "family": c.get("model_family", "llama"),
        "families": c.get("model_families") or [c.get("model_family", "llama")],
        "parameter_size": c.get("model_type", "1B"),
        "quantization_level": c.get("file_type", "Q4_K_M"),
    }


def model_entry(info):
    return {
        "name": info["name"].display,
        "model": info["name"].display,
        "modified_at": ts_rfc3339(info["mtime"]),
        "size": info["size"],
        "digest": info["digest"],
        "details": details_of(info),
    }


def modelfile_text(info):
    d = info["name"].display
    lines = ["# Modelfile generated by \"ollama show\" (Ollama stand-in)", "# To build a new Modelfile based on this, replace FROM with:", "# FROM %s" % d, ""]
    for layer in info["manifest"].get("layers", []):
        if layer.get("mediaType") == MT_MODEL:
            lines.append("FROM %s" % os.path.join("blobs", "sha256-" + layer["digest"].split(":", 1)[1]))
    if "template" in info:
        lines.append('TEMPLATE """%s"""' % info["template"])
    if "system" in info:
        lines.append('SYSTEM """%s"""' % info["system"])
    for k, v in sorted((info.get("parameters") or {}).items()):
        for item in v if isinstance(v, list) else [v]:
            lines.append("PARAMETER %s %s" % (k, json.dumps(item) if isinstance(item, str) and " " in item else item))
    for lic in info.get("license", []):
        lines.append('LICENSE """%s"""' % lic)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- server


class ApiError(Exception):
    def __init__(self, status, message):
        Exception.__init__(self, message)
        self.status = status
        self.message = message


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, store):
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        ThreadingHTTPServer.__init__(self, addr, Handler)
        self.store = store
        self.loaded = {}  # display name -> expires_at (monotonic-free wall clock; None = forever)
        self.loaded_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ollama-standin/" + STANDIN_VERSION
    sys_version = ""

    # ---- plumbing
    def log_message(self, fmt, *args):  # never logs headers or bodies
        pass

    def log_request(self, code="-", size="-"):
        dur = (time.monotonic() - getattr(self, "_t0", time.monotonic())) * 1000
        ts = time.strftime("%Y/%m/%d - %H:%M:%S")
        path = self.path.split("?", 1)[0]
        sys.stderr.write('[GIN] %s | %3s | %10.3fms | %15s | %-7s "%s"\n' % (ts, code, dur, self.client_address[0], self.command, path))
        sys.stderr.flush()

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def json_body(self):
        raw = self.read_body()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            raise ApiError(400, "invalid character in request body")
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object")
        return body

    def send(self, status, body=b"", ctype="application/json; charset=utf-8", head_only=False):
        if isinstance(body, (dict, list)):
            body = go_json(body).encode("utf-8")
        elif isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head_only and self.command != "HEAD":
            self.wfile.write(body)

    def start_stream(self, ctype):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def ndjson(self, obj):
        self.chunk(go_json(obj) + "\n")

    def dispatch(self):
        self._t0 = time.monotonic()
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        route = ROUTES.get((self.command if self.command != "HEAD" else "GET", path))
        if route is None and path.startswith("/api/blobs/"):
            route = Handler.blob
        if route is None and path.startswith("/v1/models/") and self.command in ("GET", "HEAD"):
            route = Handler.v1_model
        if route is None:
            if any(p == path for (_m, p) in ROUTES):
                self.read_body()
                return self.send(405, "405 method not allowed", "text/plain")
            self.read_body()
            return self.send(404, "404 page not found", "text/plain")
        openai = path.startswith("/v1/")
        try:
            route(self)
        except ApiError as e:
            if openai:
                typ = "invalid_request_error" if e.status == 400 else "api_error"
                self.send(e.status, {"error": {"message": e.message, "type": typ, "param": None, "code": None}})
            else:
                self.send(e.status, {"error": e.message})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001 - a stand-in must answer, not die
            log("internal error: %r" % (e,), "ERROR")
            try:
                self.send(500, {"error": str(e)})
            except OSError:
                self.close_connection = True

    do_GET = do_POST = do_DELETE = do_HEAD = do_PUT = dispatch

    # ---- helpers on models
    @property
    def store(self):
        return self.server.store

    def model_arg(self, body, required=True):
        m = body.get("model") or body.get("name") or ""
        if not m and required:
            raise ApiError(400, "model is required")
        return m

    def require_model(self, raw):
        try:
            name = self.store.find(raw)
        except ValueError:
            name = None
        if name is None:
            raise ApiError(404, 'model "%s" not found, try pulling it first' % raw)
        return name

    def mark_loaded(self, display, keep_alive=None):
        dur = parse_duration(keep_alive, parse_duration(os.environ.get("OLLAMA_KEEP_ALIVE"), 300.0))
        with self.server.loaded_lock:
            if dur == 0:
                self.server.loaded.pop(display, None)
            else:
                self.server.loaded[display] = None if dur < 0 else time.time() + dur

    # ---- routes
    def root(self):
        self.send(200, "Ollama is running", "text/plain; charset=utf-8")

    def version(self):
        self.send(200, {"version": version_string(), "standin": True})

    def tags(self):
        models = []
        for n in self.store.list_names():
            try:
                models.append(model_entry(self.store.info(n)))
            except (OSError, ValueError, KeyError):
                continue
        models.sort(key=lambda m: m["modified_at"], reverse=True)
        self.send(200, {"models": models})

    def ps(self):
        out = []
        now = time.time()
        with self.server.loaded_lock:
            items = list(self.server.loaded.items())
        for display, exp in items:
            if exp is not None and exp < now:
                continue
            try:
                name = self.store.find(display)
                if name is None:
                    continue
                info = self.store.info(name)
            except (OSError, ValueError):
                continue
            entry = model_entry(info)
            entry.pop("modified_at")
            entry["expires_at"] = ts_rfc3339(exp if exp is not None else now + 10 * 365 * 86400)
            entry["size_vram"] = 0
            entry["context_length"] = 4096
            out.append(entry)
        self.send(200, {"models": out})

    def pull(self):
        body = self.json_body()
        raw = self.model_arg(body)
        stream = body.get("stream", True)
        try:
            name = Name(raw)
        except ValueError:
            raise ApiError(400, "invalid model name")
        if name.model.startswith(MISSING_PREFIX):
            raise ApiError(500, "pull model manifest: file does not exist")
        layers, config = synth_model(self.store, name)
        if stream:
            self.start_stream("application/x-ndjson")
            self.ndjson({"status": "pulling manifest"})
            for layer in layers:
                d = layer["digest"]
                self.ndjson({"status": "pulling %s" % d.split(":")[1][:12], "digest": d, "total": layer["size"]})
                self.ndjson({"status": "pulling %s" % d.split(":")[1][:12], "digest": d, "total": layer["size"], "completed": layer["size"]})
            self.ndjson({"status": "verifying sha256 digest"})
            self.ndjson({"status": "writing manifest"})
            self.store.write_manifest(name, layers, config)
            self.ndjson({"status": "success"})
            self.end_stream()
        else:
            self.store.write_manifest(name, layers, config)
            self.send(200, {"status": "success"})

    def show(self):
        body = self.json_body()
        raw = self.model_arg(body)
        try:
            name = self.store.find(raw)
        except ValueError:
            name = None
        if name is None:
            raise ApiError(404, "model '%s' not found" % raw)
        info = self.store.info(name)
        params = info.get("parameters") or {}
        ptxt = "\n".join(
            "%-30s %s" % (k, json.dumps(i) if isinstance(i, str) else i) for k, v in sorted(params.items()) for i in (v if isinstance(v, list) else [v])
        )
        det = details_of(info)
        out = {
            "license": "\n".join(info.get("license", [])),
            "modelfile": modelfile_text(info),
            "parameters": ptxt,
            "template": info.get("template", ""),
            "details": det,
            "model_info": {
                "general.architecture": det["family"],
                "general.file_type": det["quantization_level"],
                "general.parameter_count": info["config"].get("parameter_count", 0),
                "general.standin": True,
                "%s.context_length" % det["family"]: 4096,
            },
            "capabilities": ["completion"],
            "modified_at": ts_rfc3339(info["mtime"]),
        }
        if "system" in info:
            out["system"] = info["system"]
        self.send(200, out)

    def delete(self):
        body = self.json_body()
        raw = self.model_arg(body)
        try:
            name = self.store.find(raw)
        except ValueError:
            name = None
        if name is None:
            raise ApiError(404, "model '%s' not found" % raw)
        self.store.delete(name)
        with self.server.loaded_lock:
            self.server.loaded.pop(name.display, None)
        self.send(200, b"")

    def copy(self):
        body = self.json_body()
        src, dst = body.get("source", ""), body.get("destination", "")
        try:
            sname = self.store.find(src)
            dname = Name(dst)
        except ValueError:
            raise ApiError(400, "invalid model name")
        if sname is None:
            raise ApiError(404, "model '%s' not found" % src)
        manifest, _, _ = self.store.load(sname)
        config = json.loads(self.store.read_blob(manifest["config"]["digest"]).decode("utf-8"))
        self.store.write_manifest(dname, manifest["layers"], config)
        self.send(200, b"")

    def blob(self):
        digest = self.path.split("?", 1)[0][len("/api/blobs/") :]
        try:
            path = self.store.blob_path(digest)
        except ValueError:
            self.read_body()
            raise ApiError(400, "invalid digest format")
        if self.command == "HEAD" or self.command == "GET":
            if self.command == "GET":
                raise ApiError(405, "method not allowed")
            return self.send(200 if os.path.isfile(path) else 404, b"")
        if self.command != "POST":
            raise ApiError(405, "method not allowed")
        n = int(self.headers.get("Content-Length") or 0)
        h = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=os.path.join(self.store.root, "blobs"), prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                left = n
                while left > 0:
                    buf = self.rfile.read(min(left, 1 << 20))
                    if not buf:
                        break
                    h.update(buf)
                    f.write(buf)
                    left -= len(buf)
            got = "sha256:" + h.hexdigest()
            if got != digest:
                raise ApiError(400, 'digest mismatch, expected "%s", got "%s"' % (digest, got))
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self.send(201, b"")

    def create(self):
        body = self.json_body()
        raw = self.model_arg(body)
        stream = body.get("stream", True)
        try:
            name = Name(raw)
        except ValueError:
            raise ApiError(400, "invalid model name")
        if body.get("modelfile") and not (body.get("from") or body.get("files")):
            try:
                cmds = parse_modelfile(body["modelfile"])
                body.update(modelfile_to_request(cmds, os.getcwd(), self.store_local_file))
            except ValueError as e:
                raise ApiError(400, str(e))
        statuses = []
        layers, config = self.build_created(name, body, statuses)
        if stream:
            self.start_stream("application/x-ndjson")
            for s in statuses:
                self.ndjson({"status": s})
            self.store.write_manifest(name, layers, config)
            self.ndjson({"status": "writing manifest"})
            self.ndjson({"status": "success"})
            self.end_stream()
        else:
            self.store.write_manifest(name, layers, config)
            self.send(200, {"status": "success"})

    def store_local_file(self, path):
        with open(path, "rb") as f:
            digest, _ = self.store.put_blob_bytes(f.read())
        return digest

    def build_created(self, name, body, statuses):
        quant = body.get("quantize") or body.get("quantization")
        if quant and quant.lower() not in QUANT_TYPES:
            raise ApiError(400, "unsupported quantization type %s" % quant)
        layers = []
        config = {"model_format": "gguf", "standin": True, "os": "linux", "architecture": "amd64"}
        inherited = {}
        if body.get("files"):
            statuses.append("gathering model components")
            files = body["files"]
            if not isinstance(files, dict):
                raise ApiError(400, "files must be an object of name -> digest")
            total = 0
            fam = "llama"
            for fname, digest in sorted(files.items()):
                try:
                    if not self.store.has_blob(digest):
                        raise ApiError(400, "open %s: no such file or directory" % self.store.blob_path(digest))
                except ValueError:
                    raise ApiError(400, "invalid digest format")
                size = os.path.getsize(self.store.blob_path(digest))
                if fname.endswith((".safetensors", ".gguf")):
                    total += size
                if fname == "config.json":
                    try:
                        cfg = json.loads(self.store.read_blob(digest).decode("utf-8"))
                        fam = cfg.get("model_type") or guess_family(" ".join(cfg.get("architectures") or []))
                    except (ValueError, AttributeError):
                        pass
            is_gguf = any(f.endswith(".gguf") for f in files)
            statuses.append("converting model" if not is_gguf else "parsing GGUF")
            src_type = "F16"
            weights = ("stand-in %s weights converted from %s\n" % (fam, json.dumps(files, sort_keys=True))).encode("utf-8")
            config.update({"model_family": fam, "model_families": [fam], "model_type": format_params(total // 2), "file_type": src_type, "parameter_count": total // 2})
        elif body.get("from"):
            base = body["from"]
            try:
                bname = self.store.find(base)
            except ValueError:
                raise ApiError(400, "invalid model name")
            if bname is None:
                try:
                    bname = Name(base)
                except ValueError:
                    raise ApiError(400, "invalid model name")
                if bname.model.startswith(MISSING_PREFIX):
                    raise ApiError(500, "pull model manifest: file does not exist")
                statuses.append("pulling manifest")
                bl, bc = synth_model(self.store, bname)
                self.store.write_manifest(bname, bl, bc)
            binfo = self.store.info(bname)
            for layer in binfo["manifest"]["layers"]:
                if layer["mediaType"] in (MT_MODEL, MT_ADAPTER):
                    statuses.append("using existing layer %s" % layer["digest"])
                    layers.append(layer)
            for k in ("template", "system", "parameters", "license", "messages"):
                if k in binfo:
                    inherited[k] = binfo[k]
            bcfg = binfo["config"]
            config.update({k: bcfg[k] for k in ("model_family", "model_families", "model_type", "file_type", "parameter_count") if k in bcfg})
            config["parent_model"] = bname.display
            src_type = bcfg.get("file_type", "Q4_K_M")
            weights = None
        else:
            raise ApiError(400, "neither 'from' or 'files' was specified")
        if quant:
            if src_type.upper() not in ("F16", "F32", "BF16"):
                raise ApiError(400, "quantization is only supported for F16 and F32 models")
            statuses.append("quantizing %s model to %s" % (src_type.upper(), quant.upper()))
            config["file_type"] = quant.upper()
            if weights is not None:
                weights += ("quantized %s\n" % quant.upper()).encode("utf-8")
            else:
                new = []
                for layer in layers:
                    if layer["mediaType"] == MT_MODEL:
                        data = self.store.read_blob(layer["digest"]) + ("quantized %s\n" % quant.upper()).encode("utf-8")
                        d, s = self.store.put_blob_bytes(data)
                        layer = {"mediaType": MT_MODEL, "digest": d, "size": s}
                    new.append(layer)
                layers = new
        if weights is not None:
            d, s = self.store.put_blob_bytes(weights)
            statuses.append("creating new layer %s" % d)
            layers.append({"mediaType": MT_MODEL, "digest": d, "size": s})
        if body.get("adapters"):
            for fname, digest in sorted(body["adapters"].items()):
                try:
                    if not self.store.has_blob(digest):
                        raise ApiError(400, "open %s: no such file or directory" % self.store.blob_path(digest))
                except ValueError:
                    raise ApiError(400, "invalid digest format")
            d, s = self.store.put_blob_bytes(("stand-in adapter %s\n" % json.dumps(body["adapters"], sort_keys=True)).encode("utf-8"))
            statuses.append("creating new layer %s" % d)
            layers.append({"mediaType": MT_ADAPTER, "digest": d, "size": s})
        template = body.get("template", inherited.get("template"))
        if template is None:
            template = CHATML_TEMPLATE if config.get("model_family", "").startswith("qwen") else PLAIN_TEMPLATE
        params = dict(inherited.get("parameters") or {})
        params.update(body.get("parameters") or {})
        for mt, value in (
            (MT_TEMPLATE, template),
            (MT_SYSTEM, body.get("system", inherited.get("system"))),
            (MT_PARAMS, json.dumps(params, sort_keys=True) if params else None),
            (MT_MESSAGES, json.dumps(body["messages"]) if body.get("messages") else None),
        ):
            if value is None:
                continue
            d, s = self.store.put_blob_bytes(value.encode("utf-8"))
            statuses.append("using existing layer %s" % d)
            layers.append({"mediaType": mt, "digest": d, "size": s})
        lic = body.get("license", inherited.get("license"))
        for text in [lic] if isinstance(lic, str) else (lic or []):
            d, s = self.store.put_blob_bytes(text.encode("utf-8"))
            layers.append({"mediaType": MT_LICENSE, "digest": d, "size": s})
        return layers, config

    # chat / generate
    def chat(self):
        body = self.json_body()
        raw = self.model_arg(body)
        name = self.require_model(raw)
        display = name.display
        msgs = body.get("messages") or []
        stream = body.get("stream", True)
        if not msgs:
            self.mark_loaded(display, body.get("keep_alive"))
            reason = "unload" if parse_duration(body.get("keep_alive"), 300.0) == 0 else "load"
            return self.send(200, {"model": raw, "created_at": now_rfc3339(), "message": {"role": "assistant", "content": ""}, "done_reason": reason, "done": True})
        prompt = last_user_text(msgs)
        text = answer_text(display, prompt, body.get("format"))
        self.mark_loaded(display, body.get("keep_alive"))
        stats = timing_stats(prompt, text)
        if stream:
            self.start_stream("application/x-ndjson")
            for w in word_chunks(text):
                self.ndjson({"model": raw, "created_at": now_rfc3339(), "message": {"role": "assistant", "content": w}, "done": False})
            final = {"model": raw, "created_at": now_rfc3339(), "message": {"role": "assistant", "content": ""}, "done_reason": "stop", "done": True}
            final.update(stats)
            self.ndjson(final)
            self.end_stream()
        else:
            out = {"model": raw, "created_at": now_rfc3339(), "message": {"role": "assistant", "content": text}, "done_reason": "stop", "done": True}
            out.update(stats)
            self.send(200, out)

    def generate(self):
        body = self.json_body()
        raw = self.model_arg(body)
        name = self.require_model(raw)
        display = name.display
        prompt = body.get("prompt") or ""
        stream = body.get("stream", True)
        if not prompt and not body.get("images"):
            self.mark_loaded(display, body.get("keep_alive"))
            reason = "unload" if parse_duration(body.get("keep_alive"), 300.0) == 0 else "load"
            return self.send(200, {"model": raw, "created_at": now_rfc3339(), "response": "", "done": True, "done_reason": reason})
        text = answer_text(display, prompt, body.get("format"))
        self.mark_loaded(display, body.get("keep_alive"))
        stats = timing_stats(prompt, text)
        context = [b for b in hashlib.sha256(prompt.encode("utf-8")).digest()[:8]]
        if stream:
            self.start_stream("application/x-ndjson")
            for w in word_chunks(text):
                self.ndjson({"model": raw, "created_at": now_rfc3339(), "response": w, "done": False})
            final = {"model": raw, "created_at": now_rfc3339(), "response": "", "done": True, "done_reason": "stop", "context": context}
            final.update(stats)
            self.ndjson(final)
            self.end_stream()
        else:
            out = {"model": raw, "created_at": now_rfc3339(), "response": text, "done": True, "done_reason": "stop", "context": context}
            out.update(stats)
            self.send(200, out)

    def embed(self):
        body = self.json_body()
        raw = self.model_arg(body)
        self.require_model(raw)
        inp = body.get("input", "")
        items = inp if isinstance(inp, list) else [inp]
        self.send(200, {"model": raw, "embeddings": [embedding_of(raw, str(t)) for t in items], "total_duration": 1000, "load_duration": 100, "prompt_eval_count": sum(len(str(t).split()) for t in items)})

    def embeddings_legacy(self):
        body = self.json_body()
        raw = self.model_arg(body)
        self.require_model(raw)
        self.send(200, {"embedding": embedding_of(raw, body.get("prompt", ""))})

    # OpenAI compatibility
    def v1_models(self):
        data = []
        for n in self.store.list_names():
            try:
                info = self.store.info(n)
            except (OSError, ValueError):
                continue
            data.append({"id": n.display, "object": "model", "created": int(info["mtime"]), "owned_by": n.namespace})
        data.sort(key=lambda m: m["created"], reverse=True)
        self.send(200, {"object": "list", "data": data})

    def v1_model(self):
        raw = self.path.split("?", 1)[0][len("/v1/models/") :]
        try:
            name = self.store.find(raw)
        except ValueError:
            name = None
        if name is None:
            raise ApiError(404, 'model "%s" not found' % raw)
        info = self.store.info(name)
        self.send(200, {"id": name.display, "object": "model", "created": int(info["mtime"]), "owned_by": name.namespace})

    def v1_chat(self):
        body = self.json_body()
        raw = body.get("model") or ""
        if not raw:
            raise ApiError(400, "model is required")
        name = self.require_model(raw)
        msgs = body.get("messages") or []
        if not msgs:
            raise ApiError(400, "[] is too short - 'messages'")
        prompt = last_user_text(msgs)
        fmt = (body.get("response_format") or {}).get("type") in ("json_object", "json_schema")
        text = answer_text(name.display, prompt, fmt)
        self.mark_loaded(name.display)
        cid = "chatcmpl-%d" % (int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:6], 16) % 1000)
        created = int(time.time())
        usage = {"prompt_tokens": count_tokens(" ".join(message_text(m) for m in msgs)), "completion_tokens": count_tokens(text)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if body.get("stream"):
            self.start_stream("text/event-stream")
            base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": raw, "system_fingerprint": "fp_ollama"}
            for w in word_chunks(text):
                c = dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": w}, "finish_reason": None}])
                self.chunk("data: %s\n\n" % go_json(c))
            c = dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": "stop"}])
            if (body.get("stream_options") or {}).get("include_usage"):
                self.chunk("data: %s\n\n" % go_json(c))
                c = dict(base, choices=[], usage=usage)
            self.chunk("data: %s\n\n" % go_json(c))
            self.chunk("data: [DONE]\n\n")
            self.end_stream()
            return
        self.send(
            200,
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": raw,
                "system_fingerprint": "fp_ollama",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": usage,
            },
        )

    def v1_completions(self):
        body = self.json_body()
        raw = body.get("model") or ""
        name = self.require_model(raw)
        prompt = body.get("prompt") or ""
        if isinstance(prompt, list):
            prompt = " ".join(str(p) for p in prompt)
        text = answer_text(name.display, prompt)
        usage = {"prompt_tokens": count_tokens(prompt), "completion_tokens": count_tokens(text)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        self.send(
            200,
            {
                "id": "cmpl-%d" % (int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:6], 16) % 1000),
                "object": "text_completion",
                "created": int(time.time()),
                "model": raw,
                "system_fingerprint": "fp_ollama",
                "choices": [{"text": text, "index": 0, "finish_reason": "stop"}],
                "usage": usage,
            },
        )

    def v1_embeddings(self):
        body = self.json_body()
        raw = body.get("model") or ""
        self.require_model(raw)
        inp = body.get("input", "")
        items = inp if isinstance(inp, list) else [inp]
        data = [{"object": "embedding", "embedding": embedding_of(raw, str(t)), "index": i} for i, t in enumerate(items)]
        n = sum(count_tokens(str(t)) for t in items)
        self.send(200, {"object": "list", "data": data, "model": raw, "usage": {"prompt_tokens": n, "total_tokens": n}})


ROUTES = {
    ("GET", "/"): Handler.root,
    ("GET", "/api/version"): Handler.version,
    ("GET", "/api/tags"): Handler.tags,
    ("GET", "/api/ps"): Handler.ps,
    ("POST", "/api/pull"): Handler.pull,
    ("POST", "/api/show"): Handler.show,
    ("DELETE", "/api/delete"): Handler.delete,
    ("POST", "/api/copy"): Handler.copy,
    ("POST", "/api/create"): Handler.create,
    ("POST", "/api/chat"): Handler.chat,
    ("POST", "/api/generate"): Handler.generate,
    ("POST", "/api/embed"): Handler.embed,
    ("POST", "/api/embeddings"): Handler.embeddings_legacy,
    ("GET", "/v1/models"): Handler.v1_models,
    ("POST", "/v1/chat/completions"): Handler.v1_chat,
    ("POST", "/v1/completions"): Handler.v1_completions,
    ("POST", "/v1/embeddings"): Handler.v1_embeddings,
}


def message_text(m):
    c = m.get("content") if isinstance(m, dict) else None
    if isinstance(c, list):
        return " ".join(p.get("text", "") for p in c if isinstance(p, dict))
    return c if isinstance(c, str) else ""


def last_user_text(msgs):
    for m in reversed(msgs):
        if isinstance(m, dict) and m.get("role") == "user":
            return message_text(m)
    return message_text(msgs[-1]) if msgs else ""


def count_tokens(text):
    return len((text or "").split())


def timing_stats(prompt, text):
    pe, ev = max(1, count_tokens(prompt)), max(1, count_tokens(text))
    return {"total_duration": 1000000 * (pe + ev), "load_duration": 100000, "prompt_eval_count": pe, "prompt_eval_duration": 100000 * pe, "eval_count": ev, "eval_duration": 900000 * ev}


def parse_duration(v, default):
    """keep_alive: seconds as a number, or '5m' / '1h' / '30s' / '-1'. Negative = forever."""
    if v is None or v == "":
        return default
    if isinstance(v, (int, float)):
        return float(v)
    m = re.match(r"^(-?\d+(?:\.\d+)?)(ms|s|m|h)?$", str(v).strip())
    if not m:
        return default
    mult = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    return float(m.group(1)) * mult


def synth_model(store, name):
    """Layers and config of a pulled model: small deterministic blobs standing for the weights."""
    fam = guess_family(name.model)
    psize = guess_param_size(name.tag)
    weights = ("GGUF stand-in weights for %s (%s, Q4_K_M). Not a real model.\n" % (name.display, psize)).encode("utf-8") * 8
    layers = []
    d, s = store.put_blob_bytes(weights)
    layers.append({"mediaType": MT_MODEL, "digest": d, "size": s})
    template = CHATML_TEMPLATE if fam.startswith("qwen") else PLAIN_TEMPLATE
    d, s = store.put_blob_bytes(template.encode("utf-8"))
    layers.append({"mediaType": MT_TEMPLATE, "digest": d, "size": s})
    if fam.startswith("qwen"):
        d, s = store.put_blob_bytes(json.dumps({"stop": ["<|im_start|>", "<|im_end|>"]}, sort_keys=True).encode("utf-8"))
        layers.append({"mediaType": MT_PARAMS, "digest": d, "size": s})
    config = {
        "model_format": "gguf",
        "model_family": fam,
        "model_families": [fam],
        "model_type": psize,
        "file_type": "Q4_K_M",
        "standin": True,
        "os": "linux",
        "architecture": "amd64",
    }
    return layers, config


def serve():
    scheme, host, port = parse_host(os.environ.get("OLLAMA_HOST", ""))
    bind = "" if host in ("0.0.0.0",) else host
    try:
        store = Store(models_dir())
    except OSError as e:
        sys.stderr.write("Error: could not create models directory %s: %s\n" % (models_dir(), e))
        return 1
    try:
        httpd = Server((bind if bind != "::" else "::", port), store)
    except OSError as e:
        sys.stderr.write("Error: listen tcp %s:%d: bind: %s\n" % (host, port, e.strerror or e))
        return 1
    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log("STAND-IN Ollama for tests (no model runs); replaces ollama %s" % version_string(), "WARN")
    log("models dir %s" % store.root)
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    t.start()
    log("Listening on %s:%d (version %s)" % (host or "[::]", httpd.server_address[1], version_string()))
    while not stop.wait(0.5):
        pass
    log("received signal, shutting down")
    httpd.shutdown()
    httpd.server_close()
    return 0


# --------------------------------------------------------------------------- client


class Client(object):
    def __init__(self):
        scheme, host, port = parse_host(os.environ.get("OLLAMA_HOST", ""), for_client=True)
        if ":" in host:
            host = "[%s]" % host
        self.base = "%s://%s:%d" % (scheme, host, port)
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def request(self, method, path, body=None, data=None, timeout=600):
        headers = {"User-Agent": "ollama-standin/%s" % version_string()}
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            return self.opener.open(req, timeout=timeout)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                msg = json.loads(raw.decode("utf-8")).get("error") or raw.decode("utf-8", "replace")
            except (ValueError, AttributeError):
                msg = raw.decode("utf-8", "replace").strip() or str(e)
            raise CliError(msg)
        except (urllib.error.URLError, OSError):
            raise CliError("could not connect to ollama app, is it running?")

    def json(self, method, path, body=None):
        with self.request(method, path, body) as r:
            raw = r.read()
        return json.loads(raw.decode("utf-8")) if raw.strip() else {}

    def stream(self, path, body):
        with self.request("POST", path, body) as r:
            for line in r:
                line = line.strip()
                if not line:
                    continue
                obj = json.loads(line.decode("utf-8"))
                if "error" in obj:
                    raise CliError(obj["error"])
                yield obj


class CliError(Exception):
    pass


def cmd_list(client, _args):
    models = client.json("GET", "/api/tags").get("models", [])
    rows = [("NAME", "ID", "SIZE", "MODIFIED")]
    for m in models:
        ts = datetime.datetime.fromisoformat(m["modified_at"]).timestamp() if hasattr(datetime.datetime, "fromisoformat") else time.time()
        rows.append((m["name"], m["digest"][:12], human_bytes(m["size"]), human_ago(ts)))
    print_table(rows)


def cmd_ps(client, _args):
    models = client.json("GET", "/api/ps").get("models", [])
    rows = [("NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL")]
    for m in models:
        rows.append((m["name"], m["digest"][:12], human_bytes(m["size"]), "100% CPU", str(m.get("context_length", 4096)), "stand-in"))
    print_table(rows)


def print_table(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("    ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())


def show_progress(obj, last):
    status = obj.get("status", "")
    if obj.get("total"):
        done = obj.get("completed", 0)
        pct = int(100 * done / obj["total"]) if obj["total"] else 100
        line = "%s %3d%% %s/%s" % (status, pct, human_bytes(done), human_bytes(obj["total"]))
    else:
        line = status
    if line != last:
        print(line, flush=True)
    return line


def cmd_pull(client, args):
    if not args:
        raise CliError("requires at least 1 arg(s), only received 0")
    last = None
    for obj in client.stream("/api/pull", {"model": args[0], "stream": True}):
        last = show_progress(obj, last)


def cmd_rm(client, args):
    for a in args:
        client.json("DELETE", "/api/delete", {"model": a})
        print("deleted '%s'" % a)


def cmd_cp(client, args):
    if len(args) != 2:
        raise CliError("accepts 2 arg(s), received %d" % len(args))
    client.json("POST", "/api/copy", {"source": args[0], "destination": args[1]})
    print("copied '%s' to '%s'" % (args[0], args[1]))


def cmd_stop(client, args):
    for a in args:
        client.json("POST", "/api/generate", {"model": a, "keep_alive": 0})


def cmd_show(client, args):
    flags = [a for a in args if a.startswith("-")]
    names = [a for a in args if not a.startswith("-")]
    if not names:
        raise CliError("requires at least 1 arg(s), only received 0")
    info = client.json("POST", "/api/show", {"model": names[0]})
    if "--modelfile" in flags:
        sys.stdout.write(info["modelfile"])
    elif "--template" in flags:
        print(info.get("template", ""))
    elif "--parameters" in flags:
        print(info.get("parameters", ""))
    elif "--system" in flags:
        print(info.get("system", ""))
    elif "--license" in flags:
        print(info.get("license", ""))
    else:
        d = info["details"]
        print("  Model")
        print("    architecture        %s" % d["family"])
        print("    parameters          %s" % d["parameter_size"])
        print("    quantization        %s" % d["quantization_level"])
        print("    stand-in            true")
        if info.get("parameters"):
            print("\n  Parameters")
            for line in info["parameters"].splitlines():
                print("    " + line)


def cmd_create(client, args):
    name, mfile, quant = None, None, None
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-f", "--file"):
            mfile = args[i + 1]
            i += 2
            continue
        if a.startswith("--file="):
            mfile = a.split("=", 1)[1]
        elif a in ("-q", "--quantize"):
            quant = args[i + 1]
            i += 2
            continue
        elif a.startswith("--quantize="):
            quant = a.split("=", 1)[1]
        elif a.startswith("-"):
            pass
        elif name is None:
            name = a
        i += 1
    if not name:
        raise CliError("requires at least 1 arg(s), only received 0")
    mfile = mfile or "Modelfile"
    if mfile == "-" or mfile == "/dev/stdin":
        text = sys.stdin.read()
        base = os.getcwd()
    else:
        try:
            with open(mfile, "r", encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise CliError("open %s: %s" % (mfile, e.strerror or e))
        base = os.path.dirname(os.path.abspath(mfile))
    try:
        cmds = parse_modelfile(text)
    except ValueError as e:
        raise CliError(str(e))
    print("gathering model components", flush=True)

    def upload(path):
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for buf in iter(lambda: f.read(1 << 20), b""):
                h.update(buf)
        digest = "sha256:" + h.hexdigest()
        try:
            client.request("HEAD", "/api/blobs/" + digest).close()
            exists = True
        except CliError:
            exists = False
        if not exists:
            with open(path, "rb") as f:
                data = f.read()
            client.request("POST", "/api/blobs/" + digest, data=data).close()
        print("copying file %s 100%%" % digest, flush=True)
        return digest

    try:
        req = modelfile_to_request(cmds, base, upload)
    except ValueError as e:
        raise CliError(str(e))
    req["model"] = name
    req["stream"] = True
    if quant:
        req["quantize"] = quant
    last = None
    for obj in client.stream("/api/create", req):
        last = show_progress(obj, last)


def cmd_run(client, args):
    flags_with_value = ("--format", "--keepalive", "--think")
    name, prompt_parts, fmt = None, [], None
    i = 0
    while i < len(args):
        a = args[i]
        if a in flags_with_value:
            if a == "--format":
                fmt = args[i + 1]
            i += 2
            continue
        if a.startswith("-"):
            i += 1
            continue
        if name is None:
            name = a
        else:
            prompt_parts.append(a)
        i += 1
    if not name:
        raise CliError("requires at least 1 arg(s), only received 0")
    try:
        client.json("POST", "/api/show", {"model": name})
    except CliError as e:
        if "not found" not in str(e):
            raise
        cmd_pull(client, [name])
    prompt = " ".join(prompt_parts)
    if not prompt and not sys.stdin.isatty():
        prompt = sys.stdin.read()
    if prompt:
        return run_once(client, name, [{"role": "user", "content": prompt}], fmt)
    history = []
    while True:
        try:
            line = input(">>> ")
        except EOFError:
            print()
            return
        if line.strip() in ("/bye", "/exit"):
            return
        if not line.strip():
            continue
        history.append({"role": "user", "content": line})
        history.append({"role": "assistant", "content": run_once(client, name, history, fmt)})


def run_once(client, name, messages, fmt):
    body = {"model": name, "messages": messages, "stream": True}
    if fmt:
        body["format"] = fmt
    out = []
    for obj in client.stream("/api/chat", body):
        piece = (obj.get("message") or {}).get("content", "")
        out.append(piece)
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n\n" if sys.stdout.isatty() else "\n")
    return "".join(out)


def cmd_version(client, _args):
    try:
        v = client.json("GET", "/api/version").get("version", "")
        print("ollama version is %s (stand-in)" % v)
    except CliError:
        print("Warning: could not connect to a running Ollama instance")
        print("Warning: client version is %s (stand-in)" % version_string())


USAGE = """Large language model runner -- STAND-IN for tests (no model runs)

Usage:
  ollama [flags]
  ollama [command]

Available Commands:
  serve       Start ollama
  create      Create a model from a Modelfile
  show        Show information for a model
  run         Run a model
  stop        Stop a running model
  pull        Pull a model from a registry
  list        List models
  ps          List running models
  cp          Copy a model
  rm          Remove a model

Flags:
  -h, --help      help for ollama
  -v, --version   Show version information
"""

COMMANDS = {
    "list": cmd_list,
    "ls": cmd_list,
    "ps": cmd_ps,
    "pull": cmd_pull,
    "rm": cmd_rm,
    "cp": cmd_cp,
    "stop": cmd_stop,
    "show": cmd_show,
    "create": cmd_create,
    "run": cmd_run,
    "version": cmd_version,
}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0
    cmd, args = argv[0], argv[1:]
    if cmd in ("-v", "--version"):
        cmd = "version"
    if cmd == "serve":
        return serve()
    fn = COMMANDS.get(cmd)
    if fn is None:
        sys.stderr.write('Error: unknown command "%s" for "ollama"\n' % cmd)
        return 1
    try:
        fn(Client(), args)
    except CliError as e:
        sys.stderr.write("Error: %s\n" % e)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
