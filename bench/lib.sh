# lib.sh -- what the benchmark scripts share; sourced, not run.

# bench_run OUT FILE NAME URL [h2load args...]: one measured h2load run (warm-up WARMUP s, then
# DURATION s, one thread), its per-request log in OUT/FILE.tsv; prints a Markdown table row:
# | NAME | req/s | p50 ms | p99 ms | max ms | 2xx | failed |
bench_run() {
    local out="$1" file="$2" name="$3" url="$4"
    shift 4
    rm -f "$out/$file.tsv" # h2load appends to its log
    h2load -t 1 --warm-up-time="$WARMUP" -D "$DURATION" --log-file="$out/$file.tsv" "$@" "$url" >"$out/$file.txt"
    local rps ok fail
    rps=$(grep -o '[0-9.]* req/s' "$out/$file.txt" | head -n1 | cut -d' ' -f1)
    ok=$(awk '/^status codes:/ {print $3}' "$out/$file.txt")
    fail=$(awk '/^requests:/ {print $10}' "$out/$file.txt")
    # Columns of the log: start (us since epoch), status, duration (us).
    sort -n -k3,3 "$out/$file.tsv" | awk -v name="$name" -v rps="$rps" -v ok="$ok" -v fail="$fail" '
        { d[NR] = $3 }
        END {
            p50 = d[int(NR * 0.50) > 0 ? int(NR * 0.50) : 1]; p99 = d[int(NR * 0.99) > 0 ? int(NR * 0.99) : 1]
            printf "| %s | %s | %.2f | %.2f | %.2f | %s | %s |\n", name, rps, p50 / 1000, p99 / 1000, d[NR] / 1000, ok, fail
        }'
}

bench_header() {
    echo "| target | req/s | p50 ms | p99 ms | max ms | 2xx | failed |"
    echo "|---|---|---|---|---|---|---|"
}

# bench_quantiles COLUMN < FILE: the median and the 90th percentile (nearest rank) of one
# whitespace-separated column of numbers, as "median p90".
bench_quantiles() {
    awk -v c="$1" '{ print $c }' | sort -g | awk '
        { d[NR] = $1 }
        END {
            if (NR == 0) { print "nan nan"; exit }
            med = NR % 2 ? d[(NR + 1) / 2] : (d[NR / 2] + d[NR / 2 + 1]) / 2
            r = int(NR * 0.9); if (r < NR * 0.9) r++
            print med, d[r]
        }'
}

# bench_cpu_sample DIR NAME...: "name N%, ..." of the stack's processes NAME (pid files in
# $STACK_VAR/run; rabbitmq's is the wrapper's shell, its Erlang VM a child) over 3 seconds (top's
# second sample, kept in DIR/top.txt), then h2load's total.
bench_cpu_sample() {
    local dir="$1" n pid pids=()
    shift
    for n in "$@"; do
        pid="$(cat "$STACK_VAR/run/$n.pid")"
        [[ $n == rabbitmq ]] && pid="$(pgrep -P "$pid" beam.smp || echo "$pid")"
        pids+=("$pid")
    done
    top -b -d 3 -n 2 -p "$(IFS=,; echo "${pids[*]}")" | awk '/^top -/ { s++ } s == 2 && $1 ~ /^[0-9]+$/ { print $1, $9 }' >"$dir/top.txt"
    local i names=("$@")
    for i in "${!names[@]}"; do
        printf '%s %s%%, ' "${names[i]}" "$(awk -v p="${pids[i]}" '$1 == p { print $2 }' "$dir/top.txt")"
    done
    echo "h2load $(top -b -d 3 -n 1 | awk '$12 == "h2load" { s += $9 } END { print s + 0 }')% (one sample)"
}
