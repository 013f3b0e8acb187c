#!/usr/bin/env bash
# Browser tests across network namespaces: parlor in one namespace, headless Chromium (driven by node) in
# another, joined by a veth pair with private addresses. Needs root, `ip` (iproute2) and `iptables`.
#   bash tests/browser/netns.sh            # every scenario
#   bash tests/browser/netns.sh nat tcp    # some
# nat: the cloud case. parlor binds 10.77.0.1 and announces 198.51.100.7; in parlor's namespace iptables
#      DNATs 198.51.100.7 to 10.77.0.1 (a 1:1 NAT), and the client reaches the server only at 198.51.100.7.
#      `parlor check` runs from the client's side first; then nat.mjs (two pages, video both ways, UDP).
# tcp: UDP blocked. iptables in parlor's namespace drops UDP to the media port; tcp.mjs must still get
#      video both ways, over ICE-TCP.
# throttle: three simulcast pages; one page's downlink shaped (tc htb on the server's veth, its ICE port only):
#      throttle.mjs checks that page moves to the lower layer, keeps decoding, and climbs back when lifted.
# Namespaces, the veth pair and the iptables rules go away with the namespaces on exit (trap).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$#" -eq 0 ]; then
  set -- nat tcp throttle
fi
command -v iptables >/dev/null || { echo "netns.sh: iptables is missing (apt-get install iptables)"; exit 1; }
# The binary as `cargo test --workspace` builds it (no second compile of the tree).
cargo test --workspace --no-run --quiet

SRV="parlor-srv-$$"
CLI="parlor-cli-$$"
pid=""
log=""
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
  fi
  ip netns del "$SRV" 2>/dev/null || true
  ip netns del "$CLI" 2>/dev/null || true
  [ -z "$log" ] || rm -f "$log"
  log=""
}
trap cleanup EXIT

# Two namespaces joined by a veth pair: server .1, client .2 on $1.0/24.
make_net() {
  local net="$1"
  ip netns add "$SRV"
  ip netns add "$CLI"
  ip link add "ps$$" netns "$SRV" type veth peer name "pc$$" netns "$CLI"
  # No IPv6 on the pair: its link-local addresses finish duplicate-address detection about a
  # second after the link comes up, and Chromium takes that for a network change and aborts what
  # it is loading (ERR_NETWORK_CHANGED; seen failing the tcp and throttle pages once).
  for ns in "$SRV" "$CLI"; do
    ip netns exec "$ns" sh -c 'for f in /proc/sys/net/ipv6/conf/*/disable_ipv6; do [ -e "$f" ] && echo 1 > "$f"; done; true'
  done
  ip -n "$SRV" link set lo up
  ip -n "$CLI" link set lo up
  ip -n "$SRV" addr add "$net.1/24" dev "ps$$"
  ip -n "$CLI" addr add "$net.2/24" dev "pc$$"
  ip -n "$SRV" link set "ps$$" up
  ip -n "$CLI" link set "pc$$" up
}

# parlor in the server namespace; extra environment as arguments (KEY=VALUE ...).
start_server() {
  local listen="$1"
  shift
  log="$(mktemp)"
  ip netns exec "$SRV" env PARLOR_GAMES__LOG_DIR="" "$@" ./target/debug/parlor serve --listen "$listen" --udp-port 50000 >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    grep -q "parlor is serving" "$log" && break
    kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "parlor exited early"; exit 1; }
    sleep 0.1
  done
  grep "parlor is serving" "$log" || { cat "$log"; echo "parlor did not start"; exit 1; }
}

run_node() {
  local url="$1" script="$2"
  (cd tests/browser && ip netns exec "$CLI" env PARLOR_URL="$url" nice -n 10 node "$script")
}

scenario_nat() {
  local public=198.51.100.7
  make_net 10.77.0
  # The client knows only the public address; the "cloud" (here: parlor's own namespace) maps it 1:1.
  ip -n "$CLI" route add "$public/32" via 10.77.0.1
  ip netns exec "$SRV" iptables -t nat -A PREROUTING -d "$public" -j DNAT --to-destination 10.77.0.1
  start_server 10.77.0.1:8080 PARLOR_MEDIA__ANNOUNCE_IPS="[\"$public\"]"
  echo "--- parlor check from the client's namespace (through the DNAT)"
  ip netns exec "$CLI" env PARLOR_MEDIA__ANNOUNCE_IPS="[\"$public\"]" ./target/debug/parlor check --timeout-ms 5000
  run_node "http://$public:8080" nat.mjs
}

scenario_tcp() {
  make_net 10.78.0
  ip netns exec "$SRV" iptables -A INPUT -p udp --dport 50000 -j DROP
  start_server 10.78.0.1:8080
  echo "--- parlor check from the client's namespace (UDP must fail, TCP must answer)"
  local out
  out="$(ip netns exec "$CLI" env PARLOR_MEDIA__ANNOUNCE_IPS='["10.78.0.1"]' ./target/debug/parlor check --timeout-ms 1500 || true)"
  echo "$out"
  grep -q "FAIL  udp 10.78.0.1:50000" <<<"$out" || { echo "check did not see UDP blocked"; exit 1; }
  grep -q "ok    tcp 10.78.0.1:50000" <<<"$out" || { echo "check did not reach ICE-TCP"; exit 1; }
  run_node "http://10.78.0.1:8080" tcp.mjs
}

scenario_throttle() {
  make_net 10.79.0
  start_server 10.79.0.1:8080
  # throttle.mjs shapes one page's port on the server side of the veth (egress: that page's downlink).
  (cd tests/browser && ip netns exec "$CLI" env PARLOR_URL="http://10.79.0.1:8080" THROTTLE_NS="$SRV" THROTTLE_DEV="ps$$" nice -n 10 node throttle.mjs)
}

failed=()
for scenario in "$@"; do
  echo
  echo "=== netns browser test: $scenario"
  t0=$(date +%s)
  status=0
  # Its own subshell and trap: a failing scenario stops its server, shows its log and removes its namespaces.
  (
    trap 'st=$?; if [ "$st" -ne 0 ] && [ -n "$log" ]; then echo "--- parlor log (last 40 lines)"; tail -n 40 "$log"; fi; cleanup' EXIT
    "scenario_$scenario"
  ) || status=$?
  echo "=== $scenario: $([ "$status" -eq 0 ] && echo PASS || echo FAIL) in $(( $(date +%s) - t0 )) s"
  if [ "$status" -ne 0 ]; then
    failed+=("$scenario")
  fi
  cleanup
done
if [ "${#failed[@]}" -ne 0 ]; then
  echo "netns browser tests failed: ${failed[*]}"
  exit 1
fi
echo "netns browser tests: all passed"
