#!/usr/bin/env bash
# run.sh -- home feed benchmark (issue 6) through the gateway over h2c (release build, a stack of its own):
#   - a synthetic network written straight into publication's database by bench-feed-seed
#     (bench/feed/seed.c, its layout that of services/publication/README.md "Store"): 12,000
#     accounts following 100 regular accounts each on average, 5 celebrities followed by 10,500
#     each (above FEED_FANOUT_MAX_FOLLOWERS, its default 10,000: their posts are merged at read
#     time), the fanout author bf_fan followed by exactly 10,000 (not above it: fanned out),
#     100,000 posts over 30 days, every timeline as fanout would have left it (newest 800);
#   - feed page reads GET /v1/feed?limit=20 at 64 concurrent streams: PROCS h2load processes at
#     once, one connection of 64/PROCS streams each, each with the access token of another
#     account (h2load sends one header set per run), ROUNDS times with other accounts; p50/p99 of
#     all their per-request logs together; then the same at 1 stream, and 64 streams of one account;
#   - the fanout of one post by bf_fan: POST /v1/posts (a photo uploaded first through
#     POST /v1/media), then bench-feed-watch (bench/feed/watch.c) polls the followers' timeline
#     documents in FerretDB until all 10,000 hold the post, timed from the 201;
#   - the reference in the same run: GET /healthz (the gateway alone) at 4 x 16 streams.
# Access tokens are minted with the stack's own JWT key (as tests/e2e/conftest.py make_token does)
# for the seeded accounts: auth has no account for them and is never asked.
#
#   make bench-feed   (or: BENCH_DURATION=20 bench/feed/run.sh; make bench runs it with the others)
# Prints a Markdown block for bench/RESULTS.md.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
. "$ROOT/bench/lib.sh"
DURATION="${BENCH_DURATION:-10}"
WARMUP="${BENCH_WARMUP:-2}"
PROCS="${BENCH_FEED_PROCS:-8}"   # h2load processes at once (accounts read at once)
ROUNDS="${BENCH_FEED_ROUNDS:-3}" # times that is done with other accounts
STREAMS=$((64 / PROCS))
SEED="$ROOT/build/release/bin/bench-feed-seed"
WATCH="$ROOT/build/release/bin/bench-feed-watch"
PY="$ROOT/.venv/bin/python"

# Ports of its own: not the developer stack's, the test stack's (8081, 5673, 27018, 9200), the other
# benchmarks' (8092/5677, 8094/5678, 8096/5679, admin 9400, 9500, 9650) nor the private stacks of
# deploy/local (8100+, 5700+, 27100+, admin 9300 + 100 N).
export STACK_VAR="$ROOT/var/bench-feed" STACK_BIN="$ROOT/build/release/bin" STACK_NODE="rabbit-bfeed@localhost"
export STACK_AMQP_PORT=5680 STACK_MGMT_PORT=15680 STACK_DIST_PORT=25680 STACK_EPMD_PORT=4376
export STACK_MONGO_PORT=27025 STACK_HTTP_PORT=8097 STACK_HTTPS_PORT=8457 STACK_ADMIN_BASE=9750
export STACK_DAEMONS="auth resize-image publication" LOG_LEVEL=warn
unset STACK_S3_PORT STACK_EXTRA_DAEMONS
# The benchmark measures the request path, not the limiters' refusals.
export GATEWAY_RATE_IP_PER_SEC=10000000 GATEWAY_RATE_IP_BURST=10000000
export GATEWAY_RATE_USER_PER_SEC=10000000 GATEWAY_RATE_USER_BURST=10000000
# The feed's defaults, said out loud so that an environment sourced for tests (test-env.sh sets a
# threshold of 5 and batches of 2) does not leak in.
export FEED_FANOUT_MAX_FOLLOWERS=10000 FEED_MAX_ITEMS=800 FEED_FANOUT_BATCH="${BENCH_FEED_FANOUT_BATCH:-1000}"
export FEED_BACKFILL=50 FEED_TRIM_EVERY=16 FEED_FANOUT_WORKERS=2
unset WORKERS
STACK="$ROOT/deploy/local/stack.sh"
OUT="$STACK_VAR/bench"
BASE="http://127.0.0.1:$STACK_HTTP_PORT"
MONGO="mongodb://127.0.0.1:$STACK_MONGO_PORT/publication"

for bin in gateway auth resize-image publication bench-feed-seed bench-feed-watch; do
    [ -x "$STACK_BIN/$bin" ] || {
        echo "bench/feed: $STACK_BIN/$bin is missing: make build bench-binaries" >&2
        exit 1
    }
done

trap '"$STACK" down >/dev/null 2>&1 || true' EXIT
"$STACK" down >/dev/null 2>&1 || true
# The broker too: batches left in publication.fanout by an earlier run would be redelivered.
rm -rf "$STACK_VAR/ferretdb" "$STACK_VAR/media" "$STACK_VAR/bench" "$STACK_VAR/rabbitmq"
mkdir -p "$OUT"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
# Other stacks on the machine (each runs a RabbitMQ node and a FerretDB): they share the cores.
OTHER_STACKS="$(pgrep -c -f 'beam.smp' || true) RabbitMQ nodes and $(pgrep -c -x ferretdb || true) FerretDB"

# The network goes in before publication starts: its indexes are then built once over it.
"$STACK" infra-up >/dev/null
SEED_START=$SECONDS
"$SEED" "$MONGO" "$OUT/network.txt" -t "$FEED_FANOUT_MAX_FOLLOWERS" -m "$FEED_MAX_ITEMS" 2>"$OUT/seed.log"
SEED_S=$((SECONDS - SEED_START))
SEED_SUMMARY="$(tail -n 1 "$OUT/seed.log" | sed 's/^bench-feed-seed: //')"
"$STACK" daemons-up >/dev/null
LOAD_SEEDED="$(cut -d' ' -f1-3 /proc/loadavg)"

# Tokens: bf_fan, and PROCS x ROUNDS readers spread over the regular accounts (bf_u*), plus one for
# the 1-stream and single-account runs.
"$PY" - "$STACK_VAR/keys/jwt-private.pem" "$OUT" "$((PROCS * ROUNDS + 1))" <<'PY'
import sys, time, uuid
import jwt

key_file, out, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
key = open(key_file, "rb").read()
rows = [l.split() for l in open(f"{out}/network.txt")]
regular = [r for r in rows if r[1].startswith("bf_u")]
step = max(1, len(regular) // want)
readers = regular[::step][:want]
fan = next(r for r in rows if r[1] == "bf_fan")
now = int(time.time())

def token(sub):
    return jwt.encode({"sub": sub, "iss": "photo-auth", "aud": "photo-api", "iat": now, "exp": now + 7200,
                       "jti": uuid.uuid4().hex}, key, algorithm="RS256")

with open(f"{out}/readers.tsv", "w") as f:
    for r in readers:
        f.write(f"{r[0]}\t{r[1]}\t{r[2]}\t{r[4]}\t{token(r[0])}\n")
with open(f"{out}/fan.tsv", "w") as f:
    f.write(f"{fan[0]}\t{fan[1]}\t{fan[3]}\t{token(fan[0])}\n")
PY
mapfile -t READERS <"$OUT/readers.tsv"
reader_token() { cut -f5 <<<"${READERS[$1]}"; }
reader_name() { cut -f2 <<<"${READERS[$1]}"; }
FEED="$BASE/v1/feed?limit=20"

# One page, timed alone, to check what the runs will read: 200 with 20 posts, newest first.
first_page() {
    curl -s --http2-prior-knowledge -H "authorization: Bearer $1" -o "$OUT/page.json" \
        -w '%{http_code} %{time_total}' "$FEED"
}
# publication builds its indexes over the seeded collections when it starts (1.3M follows edges):
# until then FerretDB keeps other queries waiting, so the first pages may time out (504).
READY_START=$SECONDS
for ((try = 0; try < 60; try++)); do
    read -r CODE SECS <<<"$(first_page "$(reader_token 0)")"
    [ "$CODE" = 200 ] && break
    sleep 2
done
READY_S=$((SECONDS - READY_START))
read -r CODE SECS <<<"$(first_page "$(reader_token 0)")"
[ "$CODE" = 200 ] || {
    echo "bench/feed: GET /v1/feed answered $CODE: $(head -c 300 "$OUT/page.json")" >&2
    exit 1
}
PAGE_CHECK="$("$PY" - "$OUT/page.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
ids = [i["id"] for i in p["items"]]
assert len(ids) == 20 and ids == sorted(ids, reverse=True), ids
celebs = sum(1 for i in p["items"] if i["author"]["username"].startswith("bf_celeb"))
print(f"20 posts newest first, {celebs} of them merged (celebrities'), next_cursor {'set' if p['next_cursor'] else 'null'}")
PY
)"
FIRST_MS="$(awk -v s="$SECS" 'BEGIN { printf "%.0f", s * 1000 }')"

# cpu_sample: "name N%, ..." of the stack's processes over 3 seconds (top's second sample).
cpu_sample() { bench_cpu_sample "$OUT" ferretdb publication gateway rabbitmq auth; }

# feed_runs NAME ROUND0: ROUNDS rounds of PROCS h2load processes at once, each with its own
# account; one table row from all their logs (req/s: the mean over rounds of the processes' sum).
feed_runs() {
    local name="$1" r p i rps_sum=0
    rm -f "$OUT"/feed-*.tsv
    for ((r = 0; r < ROUNDS; r++)); do
        local pids=()
        for ((p = 0; p < PROCS; p++)); do
            i=$((1 + r * PROCS + p))
            h2load -t 1 -c 1 -m "$STREAMS" --warm-up-time="$WARMUP" -D "$DURATION" --log-file="$OUT/feed-$r-$p.tsv" \
                -H "authorization: Bearer $(reader_token "$i")" "$FEED" >"$OUT/feed-$r-$p.txt" &
            pids+=($!)
        done
        if ((r == 0)); then # where the CPU goes meanwhile: a 3-second top sample of the stack's processes
            sleep $((WARMUP + 2))
            cpu_sample >"$OUT/cpu.txt"
        fi
        wait "${pids[@]}"
    done
    local rps ok fail
    rps=$(cat "$OUT"/feed-*.txt | grep -o '[0-9.]* req/s' | awk -v r="$ROUNDS" '{ s += $1 } END { printf "%.2f", s / r }')
    ok=$(cat "$OUT"/feed-*.txt | awk '/^status codes:/ { s += $3 } END { print s }')
    fail=$(cat "$OUT"/feed-*.txt | awk '/^requests:/ { s += $10 } END { print s }')
    cat "$OUT"/feed-*.tsv | sort -n -k3,3 | awk -v name="$name" -v rps="$rps" -v ok="$ok" -v fail="$fail" '
        { d[NR] = $3 }
        END {
            p50 = d[int(NR * 0.50) > 0 ? int(NR * 0.50) : 1]; p99 = d[int(NR * 0.99) > 0 ? int(NR * 0.99) : 1]
            printf "| %s | %s | %.2f | %.2f | %.2f | %s | %s |\n", name, rps, p50 / 1000, p99 / 1000, d[NR] / 1000, ok, fail
        }'
}

bench_header
bench_run "$OUT" healthz "reference: GET /healthz (the gateway alone), 4 x 16 streams" "$BASE/healthz" -c 4 -m 16
feed_runs "GET /v1/feed?limit=20, 64 streams: $PROCS accounts at once x 1 connection x $STREAMS streams, $ROUNDS rounds ($((PROCS * ROUNDS)) accounts)"
bench_run "$OUT" feed-seq "GET /v1/feed?limit=20, 1 stream, one account ($(reader_name 0))" "$FEED" -c 1 -m 1 \
    -H "authorization: Bearer $(reader_token 0)"
bench_run "$OUT" feed-one "GET /v1/feed?limit=20, 4 x 16 streams, one account ($(reader_name 0))" "$FEED" -c 4 -m 16 \
    -H "authorization: Bearer $(reader_token 0)"
LOAD_READS="$(cut -d' ' -f1-3 /proc/loadavg)"

# Fanout: bf_fan uploads a photo, posts it; the watcher times the timelines from the 201.
IFS=$'\t' read -r FAN_ID FAN_NAME FAN_FOLLOWERS FAN_TOKEN <"$OUT/fan.tsv"
"$PY" - "$BASE" "$FAN_TOKEN" "$OUT" <<'PY'
import io, sys, time
import httpx
from PIL import Image

base, token, out = sys.argv[1:4]
h = {"authorization": "Bearer " + token}
with httpx.Client(base_url=base, http2=True, http1=False, timeout=60) as c:
    photo = io.BytesIO()
    Image.new("RGB", (1280, 960), (200, 120, 40)).save(photo, "JPEG", quality=85)
    r = c.post("/v1/media", headers={**h, "content-type": "image/jpeg"}, content=photo.getvalue())
    r.raise_for_status()
    media_id = r.json()["id"]
    time.sleep(1)  # the upload's own events out of the way
    sent = time.time()
    r = c.post("/v1/posts", headers=h, json={"caption": "fanout bench", "media_ids": [media_id]})
    t0 = time.time()
    assert r.status_code == 201, (r.status_code, r.text)
    open(f"{out}/fanout_post", "w").write(f"{r.json()['id']} {int(t0 * 1000)} {int((t0 - sent) * 1000)}\n")
PY
read -r FAN_POST FAN_T0 FAN_POST_MS <"$OUT/fanout_post"
"$WATCH" "$MONGO?socketTimeoutMS=60000" "$FAN_ID" "$FAN_POST" "$FAN_T0" 200 300 500 >"$OUT/fanout.txt" 2>"$OUT/fanout.log" || true
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
# Through the API too: the post heads the first page of five of the followers (the watcher names them).
API_CHECK="$("$PY" - "$BASE" "$STACK_VAR/keys/jwt-private.pem" "$FAN_POST" "$OUT/fanout.txt" <<'PY'
import sys, time, uuid
import httpx, jwt

base, key_file, post, watched = sys.argv[1:5]
key = open(key_file, "rb").read()
users = [l.split()[1] for l in open(watched) if l.startswith("check ")]
now = int(time.time())
heads = 0
with httpx.Client(base_url=base, http2=True, http1=False, timeout=30) as c:
    for u in users:
        t = jwt.encode({"sub": u, "iss": "photo-auth", "aud": "photo-api", "iat": now, "exp": now + 600,
                        "jti": uuid.uuid4().hex}, key, algorithm="RS256")
        r = c.get("/v1/feed?limit=1", headers={"authorization": "Bearer " + t})
        heads += r.status_code == 200 and r.json()["items"][:1] != [] and r.json()["items"][0]["id"] == post
print(f"{heads} of {len(users)} followers' GET /v1/feed?limit=1 have it first")
PY
)"

echo
echo "Fanout of one post by $FAN_NAME ($FAN_FOLLOWERS followers; FEED_FANOUT_BATCH=$FEED_FANOUT_BATCH, FEED_FANOUT_WORKERS=$FEED_FANOUT_WORKERS), seconds after the POST's 201 (the POST took $FAN_POST_MS ms):"
grep -v '^check ' "$OUT/fanout.txt" | sed 's/^/- /'
echo "- through the API: $API_CHECK"
echo
echo "h2load -t 1 --warm-up-time=$WARMUP -D $DURATION (h2c); auth, resize-image and publication with WORKERS=4 (default); $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')); $(date -u +%Y-%m-%dT%H:%MZ)"
echo "Network: $SEED_SUMMARY; seeded in $SEED_S s."
echo "CPU during the first round of 64-stream reads (top, % of one core, $(nproc) cores): $(cat "$OUT/cpu.txt")."
echo "First page alone (curl, $(reader_name 0), once a page answered, $READY_S s after the gateway was ready): $FIRST_MS ms, $PAGE_CHECK."
echo "Load average (1/5/15 min): $LOAD_START before the stack started ($OTHER_STACKS of other stacks running); $LOAD_SEEDED after seeding; $LOAD_READS after the reads; $LOAD_END at the end."
echo "RSS after the run: gateway $(ps -o rss= -p "$(cat "$STACK_VAR/run/gateway.pid")") KiB, publication $(ps -o rss= -p "$(cat "$STACK_VAR/run/publication.pid")") KiB, ferretdb $(ps -o rss= -p "$(cat "$STACK_VAR/run/ferretdb.pid")") KiB; database $(du -sm "$STACK_VAR/ferretdb/data" | cut -f1) MB"
