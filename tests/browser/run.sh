#!/usr/bin/env bash
# Start the debug parlor binary on ephemeral ports, run one browser script against it, stop it.
# Usage: tests/browser/run.sh SCRIPT.mjs   (from the repository root; needs `npm ci` in tests/browser)
set -euo pipefail
cd "$(dirname "$0")/../.."
script="$1"
# The binary as `cargo test --workspace` builds it (same features: no second compile of the tree).
cargo test --workspace --no-run --quiet
log="$(mktemp)"
./target/debug/parlor serve --listen 127.0.0.1:0 --udp-port 0 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
url=""
for _ in $(seq 1 100); do
  url="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$log" | head -n1 || true)"
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "parlor exited early"; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { cat "$log"; echo "parlor did not start"; exit 1; }
echo "parlor at $url (pid $pid)"
status=0
(cd tests/browser && PARLOR_URL="$url" node "$script") || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- parlor log"
  tail -n 50 "$log"
fi
exit "$status"
