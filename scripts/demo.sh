#!/usr/bin/env bash
# The embedded default: set up .venv, start a local SeaweedFS S3 server on 127.0.0.1, generate a small
# synthetic newspaper archive (1920-1969, uneven years), upload it with mpupload, verify it, stop the server.
# Extra arguments go to `mpupload upload` (e.g. ./scripts/demo.sh --processes 2 --threads 8).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$("$root/scripts/setup-venv.sh" test)"
work="${MPUPLOAD_DEMO_DIR:-$root/demo-data}"
mkdir -p "$work"
if [ ! -d "$work/atlanta-constitution" ]; then
  "$venv/bin/python" "$root/scripts/make_archive.py" "$work/atlanta-constitution" --pages 600 --large 2
fi
rm -rf "$work/s3" "$work/s3.env"
"$venv/bin/python" -m mpupload.localserver "$work/s3" --bucket archive --env-file "$work/s3.env" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 240); do  # bounded wait: up to 60 s for the server to accept a real PUT
  [ -s "$work/s3.env" ] && break
  kill -0 $server 2>/dev/null || { echo "SeaweedFS failed to start; see $work/s3/weed.out" >&2; exit 1; }
  sleep 0.25
done
[ -s "$work/s3.env" ] || { echo "SeaweedFS did not become ready" >&2; exit 1; }
# shellcheck disable=SC1091
. "$work/s3.env"
echo "== mpupload upload $work/atlanta-constitution s3://archive/atlanta-constitution --endpoint-url $AWS_ENDPOINT_URL"
"$venv/bin/mpupload" upload "$work/atlanta-constitution" s3://archive/atlanta-constitution \
  --endpoint-url "$AWS_ENDPOINT_URL" --journal "$work/s3/journal.sqlite" "$@"
echo "== mpupload verify $work/atlanta-constitution s3://archive/atlanta-constitution"
"$venv/bin/mpupload" verify "$work/atlanta-constitution" s3://archive/atlanta-constitution \
  --endpoint-url "$AWS_ENDPOINT_URL"
