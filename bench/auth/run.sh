#!/usr/bin/env bash
# run.sh -- auth benchmark through the gateway over h2c (release build, a stack of its own):
#   - profile reads: GET /v1/users/{username} (JWT + RPC + user, counters, block and follow
#     lookups in FerretDB), 64 concurrent streams, and 1 stream;
#   - logins: POST /v1/auth/login with the right password (argon2id verify + refresh token
#     write + RS256 signature), 8 concurrent streams;
#   - the reference: one argon2id hash and verification at the same parameters (bench-hash).
#
#   make bench      (or: BENCH_DURATION=20 bench/auth/run.sh)
# Prints a Markdown block for bench/RESULTS.md.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
. "$ROOT/bench/lib.sh"
DURATION="${BENCH_DURATION:-10}"
WARMUP="${BENCH_WARMUP:-2}"

export STACK_VAR="$ROOT/var/bench-auth" STACK_BIN="$ROOT/build/release/bin" STACK_NODE="rabbit-bauth@localhost"
export STACK_AMQP_PORT=5678 STACK_MGMT_PORT=15678 STACK_DIST_PORT=25678 STACK_EPMD_PORT=4374
export STACK_MONGO_PORT=27023 STACK_HTTP_PORT=8094 STACK_HTTPS_PORT=8453 STACK_ADMIN_BASE=9500
export STACK_DAEMONS="auth" LOG_LEVEL=warn
# The benchmark measures the request path, not the limiters' refusals.
export GATEWAY_RATE_IP_PER_SEC=10000000 GATEWAY_RATE_IP_BURST=10000000
export GATEWAY_RATE_USER_PER_SEC=10000000 GATEWAY_RATE_USER_BURST=10000000
export AUTH_REGISTRATIONS_PER_ADDRESS=1000000
STACK="$ROOT/deploy/local/stack.sh"
OUT="$STACK_VAR/bench"
BASE="http://127.0.0.1:$STACK_HTTP_PORT"

trap '"$STACK" down >/dev/null 2>&1 || true' EXIT
"$STACK" up >/dev/null
mkdir -p "$OUT"

# Fixtures: a profile with 50 followers, one of them the reader, and a login body.
"$ROOT/.venv/bin/python" - "$BASE" "$OUT" <<'PY'
import json, sys, httpx
base, out = sys.argv[1], sys.argv[2]
with httpx.Client(base_url=base, http2=True, http1=False, timeout=30) as c:
    def reg(name):
        r = c.post("/v1/auth/register", json={"username": name, "email": f"{name}@bench.example",
                                                "password": "bench password"})
        if r.status_code == 409:
            r = c.post("/v1/auth/login", json={"login": name, "password": "bench password"})
        r.raise_for_status()
        return r.json()
    star = reg("bench_star")
    for i in range(50):
        f = reg(f"bench_fan{i}")
        c.post("/v1/users/bench_star/follow", headers={"authorization": "Bearer " + f["access_token"]}).raise_for_status()
    reader = reg("bench_fan0")
    open(f"{out}/token", "w").write(reader["access_token"])
    json.dump({"login": "bench_star", "password": "bench password"}, open(f"{out}/login.json", "w"))
PY
TOKEN="$(cat "$OUT/token")"

# run FILE NAME URL [h2load args...]: bench_run into $OUT.
run() {
    local file="$1" name="$2" url="$3"
    shift 3
    bench_run "$OUT" "$file" "$name" "$url" "$@"
}

bench_header
run profile "GET /v1/users/bench_star, signed in, 4 x 16 streams" "$BASE/v1/users/bench_star" \
    -c 4 -m 16 -H "authorization: Bearer $TOKEN"
run profile-anon "GET /v1/users/bench_star, anonymous, 4 x 16 streams" "$BASE/v1/users/bench_star" -c 4 -m 16
run profile-seq "GET /v1/users/bench_star, signed in, 1 stream" "$BASE/v1/users/bench_star" \
    -c 1 -m 1 -H "authorization: Bearer $TOKEN"
run login "POST /v1/auth/login (right password), 4 x 2 streams" "$BASE/v1/auth/login" \
    -c 4 -m 2 -d "$OUT/login.json" -H "content-type: application/json"
echo
echo "h2load -t 1 --warm-up-time=$WARMUP -D $DURATION (h2c); auth with WORKERS=4; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
echo "Reference: $("$STACK_BIN/bench-hash" 20)"
echo "RSS after the run: gateway $(ps -o rss= -p "$(cat "$STACK_VAR/run/gateway.pid")") KiB, auth $(ps -o rss= -p "$(cat "$STACK_VAR/run/auth.pid")") KiB"
