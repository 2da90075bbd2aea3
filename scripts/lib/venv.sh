# Sourced by every entry point in scripts/: makes sure the project's virtualenv exists and is
# current (keyed by the hash of pyproject.toml and requirements.txt), then puts it first on PATH. It
# installs requirements.txt, as Pulumi's pip toolchain does for `pulumi up` on a fresh clone.
# Usage:  . "$(dirname "$0")/lib/venv.sh"
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${LLM_PLATFORM_VENV:-$ROOT/.venv}"
stamp="$VENV/.llm-platform-stamp"
want="$(cat "$ROOT/pyproject.toml" "$ROOT/requirements.txt" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> preparing virtualenv $VENV (first run, or pyproject.toml/requirements.txt changed)" >&2
  log="$(mktemp)"
  if ! { python3 -m venv "$VENV" && ( cd "$ROOT" && "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt ); } >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; echo "error: could not prepare $VENV (log above)" >&2; exit 1
  fi
  rm -f "$log"
  echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"
