#!/usr/bin/env bash
# run.sh -- gateway benchmark: h2load over h2c, 64 concurrent streams, against an authenticated
# route that makes one RPC round trip to a daemon answering at once (tests/echod), and against a
# bare h2o hello server (bench/gateway/hello.c) for the ratio. Release build, its own stack.
#
#   make bench                      (or: BENCH_DURATION=20 bench/gateway/run.sh)
# Prints a Markdown block for bench/RESULTS.md.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
. "$ROOT/bench/lib.sh"
DURATION="${BENCH_DURATION:-10}"
WARMUP="${BENCH_WARMUP:-2}"
CLIENTS="${BENCH_CLIENTS:-4}"
STREAMS="${BENCH_STREAMS:-16}" # per client: 4 x 16 = 64 concurrent streams
HELLO_PORT=8093

export STACK_VAR="$ROOT/var/bench" STACK_BIN="$ROOT/build/release/bin" STACK_NODE="rabbit-bench@localhost"
export STACK_AMQP_PORT=5677 STACK_MGMT_PORT=15677 STACK_DIST_PORT=25677 STACK_EPMD_PORT=4373
export STACK_MONGO_PORT=27022 STACK_HTTP_PORT=8092 STACK_HTTPS_PORT=8452 STACK_ADMIN_BASE=9400
export STACK_EXTRA_DAEMONS="echod" GATEWAY_DEBUG_ROUTES=true LOG_LEVEL=warn
# The benchmark measures the request path, not the limiter's refusals.
export GATEWAY_RATE_IP_PER_SEC=10000000 GATEWAY_RATE_IP_BURST=10000000
export GATEWAY_RATE_USER_PER_SEC=10000000 GATEWAY_RATE_USER_BURST=10000000
STACK="$ROOT/deploy/local/stack.sh"
OUT="$STACK_VAR/bench"
HELLO_PID=""

cleanup() {
    if [ -n "$HELLO_PID" ]; then
        kill "$HELLO_PID" 2>/dev/null || true
        wait "$HELLO_PID" 2>/dev/null || true
    fi
    "$STACK" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$STACK" up >/dev/null
mkdir -p "$OUT"
TOKEN="$("$ROOT/.venv/bin/python" - "$STACK_VAR/keys/jwt-private.pem" <<'PY'
import sys, time, uuid, jwt
now = int(time.time())
print(jwt.encode({"sub": "bench_user", "iss": "photo-auth", "aud": "photo-api", "iat": now,
                  "exp": now + 3600, "jti": uuid.uuid4().hex}, open(sys.argv[1], "rb").read(), algorithm="RS256"))
PY
)"

"$STACK_BIN/bench-hello" "$HELLO_PORT" &
HELLO_PID=$!
sleep 0.3

# run FILE NAME URL [h2load args...]: bench_run into $OUT, with -c CLIENTS -m STREAMS first (later args win).
run() {
    local file="$1" name="$2" url="$3"
    shift 3
    bench_run "$OUT" "$file" "$name" "$url" -c "$CLIENTS" -m "$STREAMS" "$@"
}

bench_header
run gateway "gateway GET /v1/debug/echo (JWT + RPC to echod), saturated" \
    "http://127.0.0.1:$STACK_HTTP_PORT/v1/debug/echo" -H "authorization: Bearer $TOKEN"
# The aim of the issue: 5,000 RPC-backed req/s with p99 under 10 ms. h2load --rps is per client.
RATE="${BENCH_RATE:-5000}"
run gateway-rate "same route, $RATE req/s offered" \
    "http://127.0.0.1:$STACK_HTTP_PORT/v1/debug/echo" -H "authorization: Bearer $TOKEN" --rps $((RATE / CLIENTS))
run gateway-seq "same route, 1 stream (round trip, unloaded)" \
    "http://127.0.0.1:$STACK_HTTP_PORT/v1/debug/echo" -H "authorization: Bearer $TOKEN" -c 1 -m 1
run hello "bare h2o hello, saturated" "http://127.0.0.1:$HELLO_PORT/"
echo
echo "h2load -c $CLIENTS -m $STREAMS -t 1 --warm-up-time=$WARMUP -D $DURATION (h2c); $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
echo "RSS after the run: gateway $(ps -o rss= -p "$(cat "$STACK_VAR/run/gateway.pid")") KiB, echod $(ps -o rss= -p "$(cat "$STACK_VAR/run/echod.pid")") KiB, hello $(ps -o rss= -p "$HELLO_PID") KiB"
