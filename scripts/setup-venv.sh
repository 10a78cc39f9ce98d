#!/usr/bin/env bash
# Create (or reuse) .venv and install mpupload with the given extras, e.g. `scripts/setup-venv.sh test`.
# Sourced by demo.sh and test.sh; prints where the virtualenv is.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MPUPLOAD_VENV:-$root/.venv}"
extras="${1:-}"
py="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
spec="$root"
[ -n "$extras" ] && spec="$root[$extras]"
"$venv/bin/python" -m pip install -q -e "$spec" 2>&1 | grep -v -E "is ignored|^\s*$" >&2 || true
"$venv/bin/python" -c "import mpupload" # fail loudly if the install did not work
# An editable install is not byte-compiled (a wheel install is), and with PYTHONDONTWRITEBYTECODE set
# every run would compile mpupload's modules again: ~30 ms of each start (bench/startup.py).
"$venv/bin/python" -m compileall -q "$root/mpupload" >/dev/null || true
echo "$venv"
