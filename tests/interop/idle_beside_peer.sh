#!/usr/bin/env bash
# The resident memory an idle Socket.IO connection made by the official
# client costs the default run and the node-chat peer, side by side in one
# run (issue 29): each server started afresh, in alternating order, its
# RSS read after one connection came and went and again once N more are
# connected (and, with HOLD seconds, after a ping round). Prints one line
# per server and round, then the means and their ratio. Asserts nothing.
#
# Usage: tests/interop/idle_beside_peer.sh [N] [ROUNDS]   (default 8000, 2)
# BENCH_BINARY names the chatroom binary (default: target/release/chatroom,
# built if missing); PEER_DIR the peer (default ../shared/peers/node-chat,
# skipped unless its node_modules exist); HOLD the seconds to hold before
# the second reading (default 0). Needs `npm ci` here. The open-file limit
# is raised to N + 1000 (the hard limit must allow it).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
n=${1:-8000}
rounds=${2:-2}
hold=${HOLD:-0}
binary=${BENCH_BINARY:-$root/target/release/chatroom}
peer=${PEER_DIR:-$root/../shared/peers/node-chat}
[ -x "$binary" ] || (cd "$root" && cargo build --release -p chatroom)
[ -d "$peer/node_modules" ] || { echo "node-chat: not installed ($peer), measuring chatroom alone"; peer=; }
ulimit -n $((n + 1000))
cache=$(mktemp -d)
port=${PORT:-28111}
pid=
client=
state=
cleanup() {
  [ -n "$client" ] && kill "$client" 2>/dev/null || true
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
  [ -n "$state" ] && rm -rf "$state"
}
trap 'cleanup; rm -rf "$cache"' EXIT

rss() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }

# Waits until the server answers, at most 30 s.
wait_up() {
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$port$1" >/dev/null && return 0
    sleep 0.1
  done
  echo "the server did not come up" >&2
  return 1
}

# measure SERVER: starts it, prints "SERVER KiB" per connection.
measure() {
  state=$(mktemp -d)
  if [ "$1" = chatroom ]; then
    RUST_LOG=warn "$binary" --listen "127.0.0.1:$port" --state-dir "$state" \
      --compile-cache "$cache" --max-connections $((n + 1000)) >/dev/null 2>&1 &
    pid=$!
    wait_up /healthz
  else
    PORT=$port HOST=127.0.0.1 DB_PATH="$state/chat.db" QUIET=1 node "$peer/server.js" >/dev/null 2>&1 &
    pid=$!
    wait_up /chatrooms
  fi
  # One connection first, so what a first use pages in is in "before".
  timeout 20 node "$here/idle_conns.mjs" "http://127.0.0.1:$port" 1 >/dev/null 2>&1 || true
  sleep 3
  local before out after
  before=$(rss "$pid")
  out=$(mktemp)
  node "$here/idle_conns.mjs" "http://127.0.0.1:$port" "$n" >"$out" 2>&1 &
  client=$!
  for _ in $(seq 1200); do grep -q '^open' "$out" && break; sleep 0.1; done
  sleep $((2 + hold))
  after=$(rss "$pid")
  echo "$1: $(head -1 "$out"), RSS $((before / 1024)) -> $((after / 1024)) MiB," \
    "$(awk -v a="$after" -v b="$before" -v n="$n" 'BEGIN{printf "%.2f", (a-b)/n}') KiB per connection" >&2
  awk -v a="$after" -v b="$before" -v n="$n" -v s="$1" 'BEGIN{printf "%s %.3f\n", s, (a-b)/n}'
  rm -f "$out"
  cleanup
  pid= client= state=
}

# A first start compiles the component into the cache, so no round's
# baseline holds the compiler's memory.
state=$(mktemp -d)
"$binary" --listen "127.0.0.1:$port" --state-dir "$state" --compile-cache "$cache" >/dev/null 2>&1 &
pid=$!
wait_up /healthz
cleanup
pid= state=

results=$(mktemp)
for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 1 ]; then order="chatroom peer"; else order="peer chatroom"; fi
  for server in $order; do
    [ "$server" = peer ] && [ -z "$peer" ] && continue
    measure "$server" >>"$results"
  done
done
echo "idle connections: $n, $rounds round(s), socket.io-client (websocket), hold ${hold}s"
awk '{sum[$1]+=$2; cnt[$1]++}
  END {
    for (s in sum) printf "  %-9s %.2f KiB per connection (mean of %d)\n", s, sum[s]/cnt[s], cnt[s]
    if (cnt["peer"] && cnt["chatroom"])
      printf "  ratio     %.2fx less than the peer\n", (sum["peer"]/cnt["peer"])/(sum["chatroom"]/cnt["chatroom"])
  }' "$results"
rm -f "$results"
