#!/usr/bin/env bash
# run.sh -- search benchmark (issue 8), release build, a stack of its own (RabbitMQ, FerretDB, search, gateway):
#   - a corpus written straight into search's database by bench-search-seed (bench/search/seed.c, the
#     documents of services/search/README.md): 100,000 users, 1,000,000 posts over 2 years, captions
#     of 5-25 words from a Zipf vocabulary of 50,000 words (10% accented), 0-5 of 20,000 hashtags;
#     kept between runs (var/bench-search/ferretdb) and written again only when its marker does not
#     match (BENCH_SEARCH_RESEED=1 forces it);
#   - the index build: search started over it BUILDS times (started, then stopped and started
#     again): the time its log gives ("index built ... in N ms"), the time from `stack.sh start
#     search` to its admin /readyz answering 200, and its RSS (VmRSS, and VmHWM: the peak) then;
#   - queries through the gateway over h2c at 64 concurrent streams: PROCS h2load processes at once,
#     one connection of 64/PROCS streams each, each over its own file of request paths (h2load starts
#     every client of a run at the first path of its file): the mix (60% posts searches of 1-2 words
#     drawn with the corpus' Zipf distribution, 10% #tag, 15% type=users, 5% type=tags, 10%
#     autocomplete of 1-4 letters, plain, #, @), then each kind alone; then the mix and each kind at
#     1 stream (a query's own cost, without waiting behind others);
#   - the reference in the same run, before and after: GET /healthz (the gateway alone) the same way.
# Anonymous requests (no bearer: nothing is filtered by blocks); the gateway's rate limits lifted.
#
#   make bench-search   (or: BENCH_DURATION=20 bench/search/run.sh; BENCH_SEARCH_USERS, BENCH_SEARCH_POSTS,
#   BENCH_SEARCH_BUILDS, BENCH_SEARCH_PROCS, BENCH_SEARCH_RESEED, BENCH_SEARCH_KEEP, BENCH_WARMUP override;
#   make bench runs it with the others). About 15 minutes: 2 minutes of seeding the first time, 6-7 a build.
# Prints a Markdown block for bench/RESULTS.md.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
. "$ROOT/bench/lib.sh"
DURATION="${BENCH_DURATION:-10}"
WARMUP="${BENCH_WARMUP:-2}"
USERS="${BENCH_SEARCH_USERS:-100000}"
POSTS="${BENCH_SEARCH_POSTS:-1000000}"
BUILDS="${BENCH_SEARCH_BUILDS:-2}"       # index builds measured (the first right after seeding)
PROCS="${BENCH_SEARCH_PROCS:-8}"         # h2load processes at once
READY_WAIT="${BENCH_SEARCH_READY_WAIT:-1200}" # seconds search gets to answer /readyz
STREAMS=$((64 / PROCS))
SEED="$ROOT/build/release/bin/bench-search-seed"
PY="$ROOT/.venv/bin/python"

# Ports of its own: offset 6 of the private stacks (/tmp/ports.sh 6), not the developer stack's, the
# test stack's, the other benchmarks' (5677-5680, 5730, 8092-8097, 8130, admin 9400, 9500, 9600, 9650, 9750).
export STACK_VAR="$ROOT/var/bench-search" STACK_BIN="$ROOT/build/release/bin" STACK_NODE="rabbit-bsearch@localhost"
export STACK_AMQP_PORT=5760 STACK_MGMT_PORT=15760 STACK_DIST_PORT=25760 STACK_EPMD_PORT=4460
export STACK_MONGO_PORT=27160 STACK_HTTP_PORT=8160 STACK_HTTPS_PORT=8560 STACK_ADMIN_BASE=9900
export STACK_DAEMONS="search" SEARCH_INDEX_DIR="$ROOT/var/bench-search/search-index"
unset STACK_S3_PORT STACK_SMTP_PORT STACK_FCM_PORT STACK_EXTRA_DAEMONS SMTP_URL WORKERS
# The benchmark measures the request path, not the limiters' refusals.
export GATEWAY_RATE_IP_PER_SEC=10000000 GATEWAY_RATE_IP_BURST=10000000
export GATEWAY_RATE_USER_PER_SEC=10000000 GATEWAY_RATE_USER_BURST=10000000
STACK="$ROOT/deploy/local/stack.sh"
OUT="$STACK_VAR/bench"
Q="$OUT/queries"
BASE="http://127.0.0.1:$STACK_HTTP_PORT"
SEARCH_ADMIN="http://127.0.0.1:$((STACK_ADMIN_BASE + 5))" # stack.sh: search is the 5th known daemon
MONGO="mongodb://127.0.0.1:$STACK_MONGO_PORT/search"
SEARCH_LOG="$STACK_VAR/log/search.log"

for bin in gateway search bench-search-seed; do
    [ -x "$STACK_BIN/$bin" ] || {
        echo "bench/search: $STACK_BIN/$bin is missing: make build bench-binaries" >&2
        exit 1
    }
done

# BENCH_SEARCH_KEEP=1 leaves the stack up at the end (to look at it; stop it with the same
# STACK_* settings: STACK_VAR=var/bench-search ... deploy/local/stack.sh down).
[ "${BENCH_SEARCH_KEEP:-0}" = 1 ] || trap '"$STACK" down >/dev/null 2>&1 || true' EXIT
"$STACK" down >/dev/null 2>&1 || true
# The broker is wiped (nothing of an earlier run queued); the database is kept: the seeder checks it.
rm -rf "$STACK_VAR/rabbitmq" "$OUT"
[ "${BENCH_SEARCH_RESEED:-0}" = 1 ] && rm -rf "$STACK_VAR/ferretdb"
mkdir -p "$OUT" "$SEARCH_INDEX_DIR"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
# Other stacks on the machine (each runs a RabbitMQ node and a FerretDB): they share the cores.
OTHER_STACKS="$(pgrep -c -f 'beam.smp' || true) RabbitMQ nodes and $(pgrep -c -x ferretdb || true) FerretDB"

"$STACK" infra-up >/dev/null
SEED_START=$SECONDS
"$SEED" seed "$MONGO" -u "$USERS" -p "$POSTS" 2>"$OUT/seed.log"
SEED_S=$((SECONDS - SEED_START))
SEED_SUMMARY="$(tail -n 1 "$OUT/seed.log" | sed 's/^bench-search-seed: //')"
if grep -q 'already seeded' "$OUT/seed.log"; then
    SEED_SUMMARY="$SEED_SUMMARY; $(grep 'marker found' "$OUT/seed.log" | sed 's/^bench-search-seed: //')"
fi
"$SEED" queries "$Q" -u "$USERS" -n 10000 -P "$PROCS" 2>>"$OUT/seed.log"
for ((p = 0; p < PROCS; p++)); do
    printf '/healthz\n%.0s' {1..100} >"$Q/healthz-$p.txt"
    cp "$Q/healthz-$p.txt" "$Q/healthz-end-$p.txt"
done
LOAD_SEEDED="$(cut -d' ' -f1-3 /proc/loadavg)"

pid_of() { cat "$STACK_VAR/run/$1.pid"; }
# kib FIELD NAME: VmRSS or VmHWM of a process of the stack, in KiB
kib() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$(pid_of "$2")/status"; }
# started_at PID: when the process started, in seconds since the epoch (to 1/CLK_TCK s)
started_at() {
    awk -v btime="$(awk '$1 == "btime" { print $2 }' /proc/stat)" -v hz="$(getconf CLK_TCK)" \
        '{ sub(/^.*\) /, ""); printf "%.2f", btime + $20 / hz }' "/proc/$1/stat"
}
# cpu_ticks PID: user + system clock ticks of the process so far; thread_ticks PID: "tid ticks" a thread
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
thread_ticks() { for t in /proc/"$1"/task/*; do echo "${t##*/} $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "$t/stat")"; done; }
HZ=$(getconf CLK_TCK)
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

# build_once N: starts search (stopped first when it runs), waits for its /readyz; appends a table
# row to OUT/builds.md: the log's "index built" message and time, seconds from the process's start
# to /readyz answering 200, RSS and peak then.
build_once() {
    local n="$1" from code t0 t1 i fdb0
    "$STACK" stop search >/dev/null 2>&1 || true
    from=$(($(stat -c %s "$SEARCH_LOG" 2>/dev/null || echo 0) + 1))
    fdb0=$(cpu_ticks "$(pid_of ferretdb)")
    "$STACK" start search >/dev/null
    t0=$(started_at "$(pid_of search)")
    for ((i = 0; ; i++)); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$SEARCH_ADMIN/readyz" || true)
        [ "$code" = 200 ] && break
        kill -0 "$(pid_of search)" 2>/dev/null || {
            echo "bench/search: search exited while building its index; its log:" >&2
            tail -c +"$from" "$SEARCH_LOG" | tail -n 20 >&2
            exit 1
        }
        awk -v a="$t0" -v b="$(date +%s.%N)" -v w="$READY_WAIT" 'BEGIN { exit !(b - a > w) }' && {
            echo "bench/search: search's /readyz not 200 after $READY_WAIT s (last: $code); its log:" >&2
            tail -c +"$from" "$SEARCH_LOG" | tail -n 20 >&2
            exit 1
        }
        sleep 0.1
    done
    t1=$(date +%s.%N)
    local search_t fdb_t cpu
    search_t=$(cpu_ticks "$(pid_of search)")
    fdb_t=$(cpu_ticks "$(pid_of ferretdb)")
    cpu="$((search_t * 10 / HZ)) $(((fdb_t - fdb0) * 10 / HZ))"
    tail -c +"$from" "$SEARCH_LOG" >"$OUT/search-start-$n.log"
    "$PY" - "$OUT/search-start-$n.log" "$n" "$t0" "$t1" "$(kib VmRSS search)" "$(kib VmHWM search)" "$cpu" \
        "$(cut -d' ' -f1 /proc/loadavg)" >>"$OUT/builds.md" <<'PY'
import json, re, sys
log, n, t0, t1, rss, hwm = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
search_ds, fdb_ds = (int(x) for x in sys.argv[7].split())
load = sys.argv[8]
msg, ms = "(no \"index built\" line in the log)", None
for line in open(log, errors="replace"):
    try:
        m = json.loads(line).get("msg", "")
    except ValueError:
        continue
    if m.startswith("index built"):
        msg = m
        found = re.search(r"in (\d+) ms", m)
        ms = int(found.group(1)) if found else None
log_s = f"**{ms / 1000:.1f}**" if ms is not None else "?"
print(f"| {n} | {log_s} | {t1 - t0:.1f} | {search_ds / 10:.1f} / {fdb_ds / 10:.1f} | {load} | {rss / 1024:.0f} | {hwm / 1024:.0f} | {msg} |")
PY
}

# The first build right after seeding, then the others each after a stop.
for ((b = 1; b <= BUILDS; b++)); do build_once "$b"; done
RSS_BUILT="$(kib VmRSS search)"
LOAD_BUILT="$(cut -d' ' -f1-3 /proc/loadavg)"
"$STACK" start gateway >/dev/null
for ((i = 0; i < 200; i++)); do
    curl -fs -o /dev/null --max-time 2 "$BASE/readyz" && break
    sleep 0.25
done

# One of each kind alone with curl (after the builds, before the runs): what the runs will read.
first_requests() {
    local path
    for path in "/v1/search?q=ba" "/v1/search?q=ba%20de" "/v1/search?q=$(head -n1 "$Q/posts-0.txt" | sed 's/.*q=//')" \
        "/v1/search?q=%23$(sed -n 2p "$Q/hashtag-0.txt" | sed 's/.*q=%23//')" \
        "/v1/search?type=users&q=anna" "/v1/search?type=tags&q=ba" "/v1/search/autocomplete?q=a" \
        "/v1/search/autocomplete?q=%23b" "/v1/search/autocomplete?q=%40m"; do
        curl -s --http2-prior-knowledge -o "$OUT/first.json" -w '%{http_code} %{time_total}' "$BASE$path" >"$OUT/first.code" || true
        "$PY" - "$path" "$OUT/first.code" "$OUT/first.json" <<'PY'
import json, sys, urllib.parse
path, code_file, body_file = sys.argv[1:4]
code, secs = open(code_file).read().split()
try:
    b = json.load(open(body_file))
except ValueError:
    b = {}
if "total" in b:
    what = f"total {b['total']:,}, {len(b.get('items', []))} items"
elif "users" in b:
    what = f"{len(b['users'])} users, {len(b['tags'])} tags"
else:
    what = open(body_file, errors="replace").read()[:120]
print(f"| `{urllib.parse.unquote(path)}` | {code} | {float(secs) * 1000:.1f} | {what} |")
PY
    done
}
first_requests >"$OUT/first.md"

# cpu_sample: "name N%, ..." of the stack's processes over 3 seconds (top's second sample).
cpu_sample() { bench_cpu_sample "$OUT" search gateway rabbitmq ferretdb; }

# procs_run NAME KIND [CPU]: PROCS h2load processes at once, each 1 connection x STREAMS streams
# over its own file Q/KIND-<p>.txt; one table row from all their logs (req/s: the processes' sum;
# 2xx and failed: sums; the other statuses named). With CPU, a top sample of the stack meanwhile.
procs_run() {
    local name="$1" kind="$2" cpu="${3:-}" p pids=()
    for ((p = 0; p < PROCS; p++)); do
        h2load -t 1 -c 1 -m "$STREAMS" --warm-up-time="$WARMUP" -D "$DURATION" -B "$BASE" -i "$Q/$kind-$p.txt" \
            --log-file="$OUT/$kind-$p.tsv" >"$OUT/$kind-$p.txt" &
        pids+=($!)
    done
    if [ -n "$cpu" ]; then
        sleep $((WARMUP + 2))
        cpu_sample >"$OUT/cpu-$kind.txt"
    fi
    wait "${pids[@]}"
    summary_row "$name" "$OUT/$kind"-*.txt -- "$OUT/$kind"-*.tsv
}

# summary_row NAME H2LOAD_OUTPUTS... -- LOGS...: the row of a run of one or more h2load processes.
summary_row() {
    local name="$1" outs=() logs=()
    shift
    while [ "$1" != -- ]; do outs+=("$1"); shift; done
    shift
    logs=("$@")
    local rps ok fail other
    rps=$(cat "${outs[@]}" | grep -o '[0-9.]* req/s' | awk '{ s += $1 } END { printf "%.0f", s }')
    ok=$(cat "${outs[@]}" | awk '/^status codes:/ { s += $3 } END { print s }')
    fail=$(cat "${outs[@]}" | awk '/^requests:/ { s += $10 } END { print s }')
    other=$(cat "${outs[@]}" | awk '/^status codes:/ { t3 += $5; t4 += $7; t5 += $9 } END { if (t3 + t4 + t5) printf " (3xx %d, 4xx %d, 5xx %d)", t3, t4, t5 }')
    cat "${logs[@]}" | sort -n -k3,3 | awk -v name="$name" -v rps="$rps" -v ok="$ok$other" -v fail="$fail" '
        { d[NR] = $3 }
        END {
            p50 = d[int(NR * 0.50) > 0 ? int(NR * 0.50) : 1]; p99 = d[int(NR * 0.99) > 0 ? int(NR * 0.99) : 1]
            printf "| %s | %s | %.2f | %.2f | %.2f | %s | %s |\n", name, rps, p50 / 1000, p99 / 1000, d[NR] / 1000, ok, fail
        }'
}

S="$PROCS x 1 connection x $STREAMS streams"
{
    bench_header
    procs_run "reference: GET /healthz (the gateway alone), $S" healthz
    thread_ticks "$(pid_of search)" >"$OUT/threads-before"
    MIX_T0=$(date +%s.%N)
    procs_run "**mix** (60% posts, 10% #tag, 15% users, 5% tags, 10% autocomplete), $S" mix cpu
    MIX_T1=$(date +%s.%N)
    thread_ticks "$(pid_of search)" >"$OUT/threads-after"
    procs_run "posts: 1-2 words (70% one), $S" posts cpu
    procs_run "posts: #tag, $S" hashtag
    procs_run "type=users, $S" users
    procs_run "type=tags, $S" tags
    procs_run "autocomplete (1-4 letters; plain, #, @), $S" autocomplete cpu
    # one stream: what a query costs without waiting behind others
    for kind in mix posts hashtag users tags autocomplete; do
        h2load -t 1 -c 1 -m 1 --warm-up-time="$WARMUP" -D "$DURATION" -B "$BASE" -i "$Q/$kind-0.txt" \
            --log-file="$OUT/seq-$kind.tsv" >"$OUT/seq-$kind.txt"
        summary_row "$kind, 1 stream" "$OUT/seq-$kind.txt" -- "$OUT/seq-$kind.tsv"
    done
    procs_run "reference again, at the end: GET /healthz, $S" healthz-end
} >"$OUT/runs.md"
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

echo "### Index build (search started over the corpus; build $BUILDS after a stop)"
echo
echo "| build | index built, s (its log) | process start to /readyz 200, s | CPU s meanwhile: search / ferretdb | load (1 min) at ready | RSS MiB at ready | peak RSS (VmHWM) MiB | the log's message |"
echo "|---|---|---|---|---|---|---|---|"
cat "$OUT/builds.md"
echo
echo "### One request of each kind alone (curl, h2c), after the builds"
echo
echo "| request | status | ms | answer |"
echo "|---|---|---|---|"
cat "$OUT/first.md"
echo
echo "### Through the gateway (h2load -t 1 per process, h2c, $WARMUP s warm-up, $DURATION s; p50/p99/max of all the processes' per-request logs)"
echo
cat "$OUT/runs.md"
echo
echo "CPU during the runs (top, % of one core, $(nproc) cores): mix: $(cat "$OUT/cpu-mix.txt"); posts: $(cat "$OUT/cpu-posts.txt"); autocomplete: $(cat "$OUT/cpu-autocomplete.txt")."
echo
# search's threads over the mix run: the CPU of the busiest, as a share of the run's wall time
THREADS=$(awk -v hz="$HZ" -v secs="$(awk -v a="$MIX_T0" -v b="$MIX_T1" 'BEGIN { print b - a }')" '
    NR == FNR { b[$1] = $2; next } { d = $2 - b[$1]; if (d > 0) print d }' "$OUT/threads-before" "$OUT/threads-after" |
    sort -rn | awk -v hz="$HZ" -v secs="$(awk -v a="$MIX_T0" -v b="$MIX_T1" 'BEGIN { print b - a }')" '
        { s += $1; if (NR <= 6) top = top sprintf("%s%.0f%%", NR > 1 ? ", " : "", $1 * 100 / hz / secs) }
        END { printf "%.2f cores in all over %.0f s; the busiest threads: %s", s / hz / secs, secs, top }')
echo "search's threads over the mix run (/proc/<pid>/task): $THREADS."
echo
echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')); $(date -u +%Y-%m-%dT%H:%MZ); $(h2load --version | head -n1)."
echo "Corpus: $SEED_SUMMARY (this step: $SEED_S s)."
echo "Load average (1/5/15 min): $LOAD_START before the stack started ($OTHER_STACKS of other stacks running); $LOAD_SEEDED after seeding; $LOAD_BUILT after the builds; $LOAD_END at the end."
echo "Index file: $(du -sm "$SEARCH_INDEX_DIR" | cut -f1) MB ($SEARCH_INDEX_DIR)."
echo "RSS: search $(mib "$RSS_BUILT") MiB after the last build, $(mib "$(kib VmRSS search)") MiB after the runs (anonymous $(mib "$(kib RssAnon search)"), file-backed $(mib "$(kib RssFile search)") MiB: the index file as each worker's reader maps it, counted once per mapping; PSS $(mib "$(awk '$1 == "Pss:" { print $2 }' "/proc/$(pid_of search)/smaps_rollup")") MiB; peak RSS $(mib "$(kib VmHWM search)") MiB); gateway $(mib "$(kib VmRSS gateway)") MiB; ferretdb $(mib "$(kib VmRSS ferretdb)") MiB; database $(du -sm "$STACK_VAR/ferretdb/data" | cut -f1) MB."
