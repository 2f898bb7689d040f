#!/usr/bin/env bash
# Runs the official Socket.IO clients (socket.io-client 4.x on Node, and
# python-socketio 5.x) and the Bruno collection (@usebruno/cli) against the
# default run (`chatroom`: REST and Socket.IO on one port), then against the
# sidecar alone forwarding REST to the host (the `spin up` layout), then,
# when SPIN_BIN names a Spin CLI, the sidecar in front of real `spin up`,
# then against each of two edge-mode sidecars sharing one REST host and a Redis
# server (needs Debian's redis-server; .ci/run installs it). Builds the binaries (debug, or uses
# CHATROOM_BIN_DIR when set) and expects the client packages installed
# (`npm ci` here, `pip install -r requirements.txt`; .ci/run does both).
# Set PYTHON to choose the interpreter.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ -z "${CHATROOM_BIN_DIR:-}" ]; then
  (cd "$root" && cargo build --workspace --bins)
fi
bin=${CHATROOM_BIN_DIR:-$root/target/debug}
python=${PYTHON:-python3}
state=$(mktemp -d)
# Fixed ports below Linux's ephemeral range (32768-60999), so no outgoing
# connection of one process here can be holding one when the next binds it.
rest_port=${REST_PORT:-28100}
port=${PORT:-28101}
port_b=${PORT_B:-28102}
redis_port=${REDIS_PORT:-28103}
pids=()
spin_group=
cleanup() {
  if [ -n "$spin_group" ]; then kill -- "-$spin_group" 2>/dev/null || true; fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$state"
}
trap cleanup EXIT

# Waits for $1/healthz to answer, for $2 seconds (default 30).
wait_up() {
  for _ in $(seq 1 $((${2:-30} * 10))); do
    curl -fsS "$1/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2
  return 1
}

clients() {
  export CHATROOM_URL=$1
  wait_up "$CHATROOM_URL"
  node "$here/js_client.mjs"
  "$python" "$here/python_client.py"
  # At-least-once: socket.io-client with retries and a 1 ms ackTimeout
  # (the servers here run with the event rate off, so repeats are not
  # refused as a flood).
  node "$here/js_retries.mjs"
  # The Bruno collection: every REST endpoint, with its error cases (the
  # top-level requests; the Authenticated folder runs with auth on). The
  # `developer` sandbox (Node's vm) because the default QuickJS one loads
  # asynchronously and can miss the first request's assertions under load.
  (cd "$root/chatroom_rest_api_collection" &&
    "$here/node_modules/.bin/bru" run -r --exclude-tags=auth --env local --sandbox developer \
      --env-var "baseUrl=$CHATROOM_URL" --reporter-skip-all-headers)
}

echo "== the default run (one process, one port)"
"$bin/chatroom" --manifest "$root/spin.toml" --state-dir "$state/one" \
  --listen "127.0.0.1:$port" --event-rate 0 &
pids+=($!)
clients "http://127.0.0.1:$port"
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true; pids=()

echo "== the sidecar alone in front of chatroom-host (the spin up layout, on the project's own host)"
"$bin/chatroom-host" --manifest "$root/spin.toml" --state-dir "$state/two" \
  --listen "127.0.0.1:$rest_port" &
pids+=($!)
wait_up "http://127.0.0.1:$rest_port"
"$bin/chatroom-sidecar" --db "$state/two/sqlite_db.db" --listen "127.0.0.1:$port" \
  --rest-upstream "http://127.0.0.1:$rest_port" --event-rate 0 &
pids+=($!)
clients "http://127.0.0.1:$port"
kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true; pids=()

if [ -n "${SPIN_BIN:-}" ]; then
  echo "== the sidecar in front of real spin up ($SPIN_BIN)"
  # `spin up` runs its trigger as a child: its own session, stopped whole.
  setsid "$SPIN_BIN" up -f "$root/spin.toml" --state-dir "$state/spin" \
    --listen "127.0.0.1:$rest_port" &
  spin_group=$!
  wait_up "http://127.0.0.1:$rest_port" 120
  "$bin/chatroom-sidecar" --db "$state/spin/sqlite_db.db" --listen "127.0.0.1:$port" \
    --rest-upstream "http://127.0.0.1:$rest_port" --event-rate 0 &
  pids+=($!)
  clients "http://127.0.0.1:$port"
  kill -- "-$spin_group"; kill "${pids[@]}"
  wait "$spin_group" "${pids[@]}" 2>/dev/null || true; pids=(); spin_group=
fi

echo "== edge mode: the REST host with its variables, Redis, two edge-mode sidecars"
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
pids+=($!)
token=interop-$RANDOM$RANDOM
SPIN_VARIABLE_INTERNAL_TOKEN=$token \
  SPIN_VARIABLE_REDIS_URL="redis://127.0.0.1:$redis_port" \
  SPIN_VARIABLE_REDIS_HOST="127.0.0.1:$redis_port" \
  "$bin/chatroom-host" --manifest "$root/spin.toml" --state-dir "$state/three" \
  --listen "127.0.0.1:$rest_port" &
pids+=($!)
wait_up "http://127.0.0.1:$rest_port"
for p in "$port" "$port_b"; do
  "$bin/chatroom-sidecar" --listen "127.0.0.1:$p" \
    --rest-upstream "http://127.0.0.1:$rest_port" --internal-token "$token" \
    --redis "redis://127.0.0.1:$redis_port" --node-id "interop-$p" --event-rate 0 &
  pids+=($!)
done
clients "http://127.0.0.1:$port"
clients "http://127.0.0.1:$port_b"
kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true; pids=()

echo "== auth on: the default run with --auth-secret, tokens from chatroom token"
secret=interop-secret-$RANDOM$RANDOM
tokens="{"
for user in alice bob carol late; do
  tokens="$tokens\"$user\": \"$("$bin/chatroom" --auth-secret "$secret" token "$user" --ttl 600)\","
done
export CHATROOM_TOKENS="${tokens%,}}"
"$bin/chatroom" --manifest "$root/spin.toml" --state-dir "$state/four" \
  --listen "127.0.0.1:$port" --auth-secret "$secret" &
pids+=($!)
export CHATROOM_URL="http://127.0.0.1:$port"
wait_up "$CHATROOM_URL"
node "$here/js_client.mjs"
"$python" "$here/python_client.py"
(cd "$root/chatroom_rest_api_collection" &&
  "$here/node_modules/.bin/bru" run Authenticated --tags=auth --env local --sandbox developer \
    --env-var "baseUrl=$CHATROOM_URL" \
    --env-var "aliceToken=$(echo "$CHATROOM_TOKENS" | python3 -c 'import json,sys; print(json.load(sys.stdin)["alice"])')" \
    --reporter-skip-all-headers)
unset CHATROOM_TOKENS
