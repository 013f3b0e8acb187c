#!/usr/bin/env bash
# Start the debug parlor binary on ephemeral ports, run browser test scripts against it, stop it.
# Usage (from anywhere; needs `npm ci` in tests/browser):
#   bash tests/browser/run.sh                 # the whole suite
#   bash tests/browser/run.sh game.mjs ...    # some scripts
# Each script gets a fresh server. Screenshots go to test-output/ at the repository root.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$#" -eq 0 ]; then
  set -- two_tabs.mjs home.mjs moderator.mjs access.mjs reload.mjs game.mjs korean.mjs stage.mjs draw.mjs rlgl.mjs cluster.mjs simulcast.mjs
fi
suite_start=$(date +%s)
# The binary as `cargo test --workspace` builds it (same features: no second compile of the tree).
cargo test --workspace --no-run --quiet

pid=""
log=""
stop_server() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
  fi
}
trap 'stop_server; [ -z "$log" ] || rm -f "$log"' EXIT

start_server() {
  log="$(mktemp)"
  # Game logs (replayable with `parlor replay FILE`) next to the screenshots, not in ./data.
  PARLOR_GAMES__LOG_DIR="$PWD/test-output/games" ./target/debug/parlor serve --listen 127.0.0.1:0 --udp-port 0 >"$log" 2>&1 &
  pid=$!
  url=""
  for _ in $(seq 1 100); do
    url="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$log" | head -n1 || true)"
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "parlor exited early"; exit 1; }
    sleep 0.1
  done
  [ -n "$url" ] || { cat "$log"; echo "parlor did not start"; exit 1; }
  echo "parlor at $url (pid $pid)"
}

failed=()
for script in "$@"; do
  echo
  echo "=== browser test $script"
  start_server
  t0=$(date +%s)
  status=0
  # The browsers (children of node) run at a lower priority than the server: seven Chromium pages saturate two
  # cores, and an SFU does not share its machine with its clients in real life.
  (cd tests/browser && PARLOR_URL="$url" nice -n 10 node "$script") || status=$?
  echo "=== $script: $([ "$status" -eq 0 ] && echo PASS || echo FAIL) in $(( $(date +%s) - t0 )) s"
  if [ "$status" -ne 0 ]; then
    failed+=("$script")
    echo "--- parlor log (last 50 lines)"
    tail -n 50 "$log"
  fi
  stop_server
  rm -f "$log"
  log=""
done

echo
echo "browser suite: $(( $# - ${#failed[@]} ))/$# passed in $(( $(date +%s) - suite_start )) s"
if [ "${#failed[@]}" -ne 0 ]; then
  echo "failed: ${failed[*]}"
  exit 1
fi
