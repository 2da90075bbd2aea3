# Sourced by every entry point in scripts/: makes sure the project's virtualenv exists and is
# current (keyed by the hash of pyproject.toml, requirements.txt and requirements.lock), then puts it
# first on PATH. It installs requirements.txt, as Pulumi's pip toolchain does for `pulumi up` on a
# fresh clone, and the extras the scripts need: verify (pytest + testinfra: the host checks that
# converge, drift and rebuild-host run) and test (this repository's tests and the local test host),
# every package at the version requirements.lock pins. testhost/ and tests/ are imported from the
# repository root (PYTHONPATH below), not installed.
# Usage:  . "$(dirname "$0")/lib/venv.sh"
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${LLM_PLATFORM_VENV:-$ROOT/.venv}"
stamp="$VENV/.llm-platform-stamp"
want="$(cat "$ROOT/pyproject.toml" "$ROOT/requirements.txt" "$ROOT/requirements.lock" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> preparing virtualenv $VENV (first run, or pyproject.toml/requirements.txt/requirements.lock changed):" \
       "pip installs the pinned dependencies, 1-3 min when nothing is cached" >&2
  log="$(mktemp)"
  ( python3 -m venv "$VENV" && cd "$ROOT" &&
    "$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off -r requirements.txt \
      -e ".[verify,test]" ) >"$log" 2>&1 &
  _venv_pid=$! _venv_t0=$SECONDS
  while kill -0 "$_venv_pid" 2>/dev/null; do  # every 15 s: what pip is at
    sleep 1
    if (( (SECONDS - _venv_t0) % 15 == 0 )) && kill -0 "$_venv_pid" 2>/dev/null; then
      echo "    $((SECONDS - _venv_t0))s: $(grep -E '^ *(Collecting|Downloading|Building|Installing)' "$log" | tail -n1 | cut -c1-100)" >&2
    fi
  done
  if ! wait "$_venv_pid"; then
    cat "$log" >&2; rm -f "$log"; echo "error: could not prepare $VENV (log above)" >&2; exit 1
  fi
  rm -f "$log"
  echo "$want" > "$stamp"
  echo "    virtualenv ready in $((SECONDS - _venv_t0))s" >&2
fi
export PATH="$VENV/bin:$PATH"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"
