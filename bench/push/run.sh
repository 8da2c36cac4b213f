#!/usr/bin/env bash
# run.sh -- push benchmark (issue 7), release build, a stack of its own with the FCM fake (tests/fakes/fcm_fake.c):
#   - send rate: USERS recipients with TOKENS device tokens each written straight into notification's
#     "devices" (bench-push-load seed, devices.c's layout), then push.job messages of 100 items put on
#     notification.push as push_enqueue does (bench-push-load jobs); the one notification daemon's push
#     thread reads the tokens and sends over HTTP/2 (h2c) to the fake. Sends/s as the fake saw them:
#     accepted sends over the time from its first to its last at_ms. RUNS runs at PUSH_MAX_IN_FLIGHT=256
#     (the default) and RUNS at BENCH_PUSH_IN_FLIGHT_HIGH (notification restarted), the fake reset
#     before each; CPU seconds of notification (and its busiest thread), the fake, FerretDB and
#     RabbitMQ over each run, notification's RSS;
#   - latency: LIKES likes through the gateway (h2c, one at a time): LIKERS accounts each like each of
#     POSTS posts of an author with one registered device; for each, the time from sending the like to
#     the fake's at_ms of the send whose data names that liker and post (actor_id, post_id);
#   - references in the same run: h2load straight at the fake's messages:send (a valid bearer), one
#     connection at 100 streams (the fake's own ceiling on one HTTP/2 connection, what the daemon uses)
#     and 4 x 100; the gateway's GET /healthz at 4 x 16 streams.
#
#   make bench-push   (or: BENCH_PUSH_USERS=10000 BENCH_PUSH_RUNS=3 bench/push/run.sh)
# Prints a Markdown block for bench/RESULTS.md.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
. "$ROOT/bench/lib.sh"
DURATION="${BENCH_DURATION:-10}"
WARMUP="${BENCH_WARMUP:-2}"
USERS="${BENCH_PUSH_USERS:-25000}"   # recipients
TOKENS="${BENCH_PUSH_TOKENS:-2}"     # device tokens each
RUNS="${BENCH_PUSH_RUNS:-3}"         # runs per in-flight setting
HIGH="${BENCH_PUSH_IN_FLIGHT_HIGH:-1024}"
LIKERS="${BENCH_PUSH_LIKERS:-20}"
POSTS="${BENCH_PUSH_POSTS:-10}"
LOAD="$ROOT/build/release/bin/bench-push-load"
PY="$ROOT/.venv/bin/python"

# Ports of its own: offset 3 of the private stacks (/tmp/ports.sh 3), not the developer stack's, the
# test stack's, the other benchmarks' (5677-5680, 8092-8097, admin 9400, 9500, 9650, 9750).
export STACK_VAR="$ROOT/var/bench-push" STACK_BIN="$ROOT/build/release/bin" STACK_NODE="rabbit-bpush@localhost"
export STACK_AMQP_PORT=5730 STACK_MGMT_PORT=15730 STACK_DIST_PORT=25730 STACK_EPMD_PORT=4430
export STACK_MONGO_PORT=27130 STACK_HTTP_PORT=8130 STACK_HTTPS_PORT=8530 STACK_ADMIN_BASE=9600 STACK_FCM_PORT=7230
export STACK_DAEMONS="auth resize-image publication notification" LOG_LEVEL=warn
unset STACK_S3_PORT STACK_SMTP_PORT STACK_EXTRA_DAEMONS SMTP_URL
# The benchmark measures the request path, not the limiters' refusals.
export GATEWAY_RATE_IP_PER_SEC=10000000 GATEWAY_RATE_IP_BURST=10000000
export GATEWAY_RATE_USER_PER_SEC=10000000 GATEWAY_RATE_USER_BURST=10000000 AUTH_REGISTRATIONS_PER_ADDRESS=100000
# Push's defaults, said out loud so that an environment sourced for tests (PUSH_ATTEMPTS=3,
# PUSH_BACKOFF=200ms) does not leak in.
export PUSH_MAX_IN_FLIGHT=256 PUSH_ATTEMPTS=6 PUSH_BACKOFF=1s PUSH_TIMEOUT=10s PUSH_JOB_ATTEMPTS=10
unset WORKERS
STACK="$ROOT/deploy/local/stack.sh"
OUT="$STACK_VAR/bench"
BASE="http://127.0.0.1:$STACK_HTTP_PORT"
FCM="http://127.0.0.1:$STACK_FCM_PORT"
AMQP="amqp://guest:guest@127.0.0.1:$STACK_AMQP_PORT"
MONGO="mongodb://127.0.0.1:$STACK_MONGO_PORT/notification"
SENDS=$((USERS * TOKENS))

for bin in gateway auth resize-image publication notification fcm-fake bench-push-load; do
    [ -x "$STACK_BIN/$bin" ] || {
        echo "bench/push: $STACK_BIN/$bin is missing: make build bench-binaries" >&2
        exit 1
    }
done

trap '"$STACK" down >/dev/null 2>&1 || true' EXIT
"$STACK" down >/dev/null 2>&1 || true
# The broker too: jobs left in notification.push by an earlier run would be sent again.
rm -rf "$STACK_VAR/ferretdb" "$STACK_VAR/media" "$STACK_VAR/bench" "$STACK_VAR/rabbitmq"
mkdir -p "$OUT"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
OTHER_STACKS="$(pgrep -c -f 'beam.smp' || true) RabbitMQ nodes and $(pgrep -c -x ferretdb || true) FerretDB"

"$STACK" infra-up >/dev/null
SEED_START=$SECONDS
"$LOAD" seed "$MONGO" "$USERS" "$TOKENS" 2>"$OUT/seed.log"
SEED_S=$((SECONDS - SEED_START))
"$STACK" daemons-up >/dev/null

pid_of() { cat "$STACK_VAR/run/$1.pid"; }
# rabbitmq.pid is the wrapper's shell: its Erlang VM (beam.smp) is a child
beam_pid() { pgrep -P "$(pid_of rabbitmq)" beam.smp || pid_of rabbitmq; }
# cpu_ticks PID: user + system clock ticks of the process so far; thread_ticks PID: "tid ticks" per thread
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
thread_ticks() { for t in /proc/"$1"/task/*; do echo "${t##*/} $(awk '{ print $14 + $15 }' "$t/stat")"; done; }
HZ=$(getconf CLK_TCK)

fake_get() { curl -fsS --max-time 30 "$FCM$1"; }
fake_reset() { curl -fsS -o /dev/null -X POST -H content-type:application/json -d '{}' "$FCM/fake/reset"; }
accepted() { fake_get /fake/stats | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["sends_accepted"])'; }

# send_run NAME RUN: the fake reset, USERS/100 jobs published, waits until the fake accepted SENDS
# sends (or 120 s); prints a table row and appends the run's sends/s to OUT/rate-NAME.
send_run() {
    local name="$1" run="$2" n=0 pids procs=(notification fcm-fake ferretdb) p i
    fake_reset
    declare -A before
    for p in "${procs[@]}"; do before[$p]=$(cpu_ticks "$(pid_of "$p")"); done
    before[rabbitmq]=$(cpu_ticks "$(beam_pid)")
    thread_ticks "$(pid_of notification)" >"$OUT/threads-before"
    local t0=$SECONDS published
    published="$("$LOAD" jobs "$AMQP" "$USERS" 100 "$run" | tail -n 1)"
    for ((i = 0; i < 1200; i++)); do
        n=$(accepted)
        ((n >= SENDS)) && break
        ((SECONDS - t0 > 120)) && break
        sleep 0.1
    done
    local cpu=""
    for p in "${procs[@]}"; do cpu+="$p $(((($(cpu_ticks "$(pid_of "$p")") - before[$p]) * 100 / HZ)))cs, "; done
    cpu+="rabbitmq $(((($(cpu_ticks "$(beam_pid)") - before[rabbitmq]) * 100 / HZ)))cs"
    thread_ticks "$(pid_of notification)" >"$OUT/threads-after"
    # the busiest thread of notification over the run (the push thread), in CPU centiseconds
    local busiest
    busiest=$(awk -v hz="$HZ" 'NR == FNR { b[$1] = $2; next } { d = $2 - b[$1]; if (d > m) { m = d; t = $1 } } END { printf "%d cs (tid %s)", m * 100 / hz, t }' \
        "$OUT/threads-before" "$OUT/threads-after")
    local rss
    rss=$(ps -o rss= -p "$(pid_of notification)" | tr -d ' ')
    fake_get "/fake/sends" >"$OUT/sends-$name-$run.json"
    "$PY" - "$OUT/sends-$name-$run.json" "$name" "$SENDS" "$cpu" "$busiest" "$rss" "$published" "$OUT/rate-$name" <<'PY'
import json, sys
f, name, want, cpu, busiest, rss, published, ratefile = sys.argv[1:9]
s = json.load(open(f))["sends"]
want = int(want)
at = [x["at_ms"] for x in s]
h2 = sum(1 for x in s if x["http"] == "2")
tokens = len({x["token"] for x in s})
secs = (max(at) - min(at)) / 1000 if at else float("nan")
rate = len(s) / secs if at and secs > 0 else float("nan")
# the steadiest second: most sends in one 1,000 ms window starting at a send
at.sort()
best, j = 0, 0
for i in range(len(at)):
    while at[i] - at[j] >= 1000:
        j += 1
    best = max(best, i - j + 1)
# the longest pause between two sends, and how many sends had left before it
gap, after = 0, 0
for k in range(1, len(at)):
    if at[k] - at[k - 1] > gap:
        gap, after = at[k] - at[k - 1], k
open(ratefile, "a").write(f"{rate:.0f}\n")
print(f"| {name} | {len(s)} of {want} ({tokens} tokens, {h2} over h2) | {secs:.2f} | **{rate:.0f}** | {best} | {gap} ms after {after} | {cpu} | {busiest} | {int(rss) / 1024:.1f} | {published} |")
PY
}

# Reference: the fake alone, h2load at messages:send with a bearer the fake issued (an RS256
# assertion signed with the service-account key, as fcm.c makes it).
FCM_BEARER="$("$PY" - "$STACK_VAR/keys/fcm-service-account.json" <<'PY'
import json, sys, time
import httpx, jwt
sa = json.load(open(sys.argv[1]))
now = int(time.time())
a = jwt.encode({"iss": sa["client_email"], "scope": "https://www.googleapis.com/auth/firebase.messaging",
                "aud": sa["token_uri"], "iat": now, "exp": now + 3600}, sa["private_key"], algorithm="RS256")
r = httpx.post(sa["token_uri"], data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": a})
r.raise_for_status()
print(r.json()["access_token"])
PY
)"
# a message of the size the daemon sends (~420 bytes)
cat >"$OUT/message.json" <<'JSON'
{"message":{"notification":{"title":"Photo","body":"bp_actor liked your post."},"data":{"type":"like","actor_id":"bp_actor","post_id":"6740a9c3e4b0c1d2e3f40512","notification_id":"0000000100000000000000ff"},"android":{"notification":{"tag":"0000000100000000000000ff"}},"apns":{"headers":{"apns-collapse-id":"0000000100000000000000ff"}},"token":"bp:255-0_x.y"}}
JSON
SEND_URL="$FCM/v1/projects/photo-test/messages:send"

echo "### Sends per second (USERS=$USERS x TOKENS=$TOKENS = $SENDS sends a run, jobs of 100)"
echo
echo "| run | sends seen by the fake | s first to last | sends/s | best 1 s window | longest pause between sends | CPU over the run (cs = 1/100 s) | notification's busiest thread | notification RSS MiB | publisher |"
echo "|---|---|---|---|---|---|---|---|---|---|"
send_run warm-up 0 # first contact: the access token, the connection, FerretDB's caches
for ((r = 1; r <= RUNS; r++)); do send_run "in-flight-256" "$r"; done
# the higher in-flight setting: notification restarted with it
export PUSH_MAX_IN_FLIGHT="$HIGH"
"$STACK" stop notification >/dev/null
"$STACK" start notification >/dev/null
sleep 2
send_run "in-flight-$HIGH-warm-up" 100
for ((r = 1; r <= RUNS; r++)); do send_run "in-flight-$HIGH" "$((100 + r))"; done
export PUSH_MAX_IN_FLIGHT=256
"$STACK" stop notification >/dev/null
"$STACK" start notification >/dev/null
sleep 2
median() { sort -n "$1" | awk '{ d[NR] = $1 } END { print NR % 2 ? d[(NR + 1) / 2] : (d[NR / 2] + d[NR / 2 + 1]) / 2 }'; }
echo
echo "Median sends/s: PUSH_MAX_IN_FLIGHT=256: **$(median "$OUT/rate-in-flight-256")**; $HIGH: **$(median "$OUT/rate-in-flight-$HIGH")**."
echo
echo "### References (h2load -t 1, $WARMUP s warm-up, $DURATION s)"
echo
fake_reset
bench_header
bench_run "$OUT" fake-1x100 "reference: POST messages:send at the fake alone, 1 connection x 100 streams" "$SEND_URL" \
    -c 1 -m 100 -d "$OUT/message.json" -H "authorization: Bearer $FCM_BEARER" -H "content-type: application/json"
fake_reset
bench_run "$OUT" fake-4x100 "reference: POST messages:send at the fake alone, 4 connections x 100 streams" "$SEND_URL" \
    -c 4 -m 100 -d "$OUT/message.json" -H "authorization: Bearer $FCM_BEARER" -H "content-type: application/json"
bench_run "$OUT" healthz "reference: GET /healthz (the gateway alone), 4 x 16 streams" "$BASE/healthz" -c 4 -m 16
fake_reset

# Latency: an author with one device, POSTS posts, LIKERS accounts; every liker likes every post,
# one like at a time, each waiting for its push; its send found by data.actor_id and data.post_id.
echo
"$PY" - "$BASE" "$FCM" "$LIKERS" "$POSTS" "$OUT" <<'PY'
import io, json, statistics, sys, time, uuid
import httpx
from PIL import Image

base, fcm, nlikers, nposts, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
run = uuid.uuid4().hex[:6]

def client():
    return httpx.Client(base_url=base, http2=True, http1=False, timeout=30)

def register(c, name):
    r = c.post("/v1/auth/register", json={"username": name, "email": f"{name}@example.com", "password": "correct-horse-42"})
    assert r.status_code == 201, (r.status_code, r.text)
    b = r.json()
    return b["user"]["id"] if "user" in b else b["id"], b["access_token"]

with client() as c, httpx.Client(base_url=fcm, timeout=30) as fk:
    author_id, author_tok = register(c, f"bpa{run}")
    ah = {"authorization": "Bearer " + author_tok}
    token = f"bp:author-{run}_x.y"
    r = c.post("/v1/me/devices", headers=ah, json={"token": token, "platform": "android"})
    assert r.status_code == 201, r.text
    likers = [register(c, f"bpl{run}{i}") for i in range(nlikers)]
    posts = []
    for i in range(nposts):
        photo = io.BytesIO()
        Image.new("RGB", (320, 240), (20 * i % 255, 120, 40)).save(photo, "JPEG", quality=80)
        r = c.post("/v1/media", headers={**ah, "content-type": "image/jpeg"}, content=photo.getvalue())
        assert r.status_code in (200, 201), (r.status_code, r.text)
        r = c.post("/v1/posts", headers=ah, json={"caption": f"push bench {i}", "media_ids": [r.json()["id"]]})
        assert r.status_code == 201, r.text
        posts.append(r.json()["id"])
    time.sleep(2)  # the account's, device's and posts' events out of the way
    fk.post("/fake/reset", json={})
    sent = []  # (liker id, post id, ms the like request left)
    codes = []
    for p in posts:
        for uid, tok in likers:
            t = time.time() * 1000
            r = c.post(f"/v1/posts/{p}/like", headers={"authorization": "Bearer " + tok})
            codes.append(r.status_code)
            sent.append((uid, p, t, time.time() * 1000 - t))
            # wait for this like's push (or 5 s) before the next: one at a time end to end
            deadline = time.time() + 5
            while time.time() < deadline:
                if fk.get("/fake/stats").json()["sends_accepted"] >= len(sent):
                    break
                time.sleep(0.002)
    time.sleep(1)
    sends = fk.get("/fake/sends", params={"token": token}).json()["sends"]
    # each like's send: the one whose data names the liker and the post (one of each pair)
    by_pair = {(s["message"]["data"].get("actor_id"), s["message"]["data"].get("post_id")): s for s in sends}
    lat, missing, like_ms = [], 0, []
    for uid, p, t, rtt in sent:
        like_ms.append(rtt)
        s = by_pair.get((uid, p))
        if s is None:
            missing += 1
            continue
        lat.append(s["at_ms"] - t)
    json.dump({"lat": lat, "like_ms": like_ms}, open(f"{out}/latency.json", "w"))

def q(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(round(p * len(v) + 0.5)) - 1))]

print(f"### Like to push ({len(sent)} likes through the gateway, one at a time: {nlikers} accounts x {nposts} posts of one author with one device)")
print()
print("| measure | n | p50 ms | p95 ms | p99 ms | max ms |")
print("|---|---|---|---|---|---|")
print(f"| like sent -> the fake's at_ms of its push | {len(lat)} | {q(lat, .5):.0f} | {q(lat, .95):.0f} | {q(lat, .99):.0f} | {max(lat):.0f} |")
print(f"| the like request itself (POST /v1/posts/{{id}}/like, sent -> 200) | {len(like_ms)} | {q(like_ms, .5):.1f} | {q(like_ms, .95):.1f} | {q(like_ms, .99):.1f} | {max(like_ms):.1f} |")
print()
print(f"Likes answered: {codes.count(200)} x 200 of {len(codes)}; pushes matched by data.actor_id and data.post_id: {len(lat)} (missing {missing}); sends to the author's device: {len(sends)}.")
PY

echo
echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')); $(date -u +%Y-%m-%dT%H:%MZ); curl $(curl --version | head -n1 | cut -d' ' -f2), devices seeded in $SEED_S s."
echo "Load average (1/5/15 min): $LOAD_START before the stack started ($OTHER_STACKS of other stacks running); $(cut -d' ' -f1-3 /proc/loadavg) at the end."
echo "RSS at the end: notification $(ps -o rss= -p "$(pid_of notification)") KiB, fcm-fake $(ps -o rss= -p "$(pid_of fcm-fake)") KiB, ferretdb $(ps -o rss= -p "$(pid_of ferretdb)") KiB."
