#!/usr/bin/env bash
# The WAN comparison: mpupload and s5cmd at their defaults, rclone and the AWS CLI at their defaults and
# tuned, each through bench/relay.py at 0, 40 and 100 ms of added round trip (2000 x 256 KiB files,
# 3 interleaved runs, one local SeaweedFS started and stopped by the bench). Writes bench/results/wan/
# (results.md with the WAN table, results.csv/json, wan.png). About 15-25 minutes on 2 busy cores.
# Extra arguments go to bench/run.py and win, e.g. `--runs 5`, `--tools mpupload,s5cmd-default`, `--out DIR`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$("$root/scripts/setup-venv.sh" bench)"
cd "$root"
exec "$venv/bin/python" bench/run.py --rtt 0,40,100 --datasets small --runs 3 --out bench/results/wan "$@"
