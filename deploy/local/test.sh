#!/usr/bin/env bash
# test.sh -- the whole test run behind `make test`: a stack of its own on test ports, unit tests,
# a short libFuzzer run, black-box tests over HTTP/2, then a scan of every log for sanitizer reports.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

# shellcheck source=deploy/local/test-env.sh
. "$ROOT/deploy/local/test-env.sh"

STACK="$ROOT/deploy/local/stack.sh"
failures=()

cleanup() {
    "$STACK" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$STACK" down >/dev/null 2>&1 || true
rm -rf "$STACK_VAR"

# Deployment files checked offline: compose, broker definitions, ECS task and service definitions.
echo "== deploy files (tests/deploy, offline)"
if [[ -d tests/deploy ]] && ! "$ROOT/.venv/bin/python" -m pytest -q -p no:cacheprovider tests/deploy; then
    failures+=("deploy files")
fi

echo "== test stack: broker, database, S3 (versitygw) and SMTP (smtp-sink)"
"$STACK" infra-up

echo "== unit tests"
mkdir -p "$STACK_VAR/log"
while IFS= read -r t; do
    name="${t#build/asan/tests/}"
    if ! "$t" --jobs 1 >"$STACK_VAR/log/unit-${name//\//_}.log" 2>&1; then
        failures+=("unit: $name")
        echo "FAIL $name"; tail -n 40 "$STACK_VAR/log/unit-${name//\//_}.log"
    else
        echo "ok   $name: $(grep -o 'Tested: [0-9]* | Passing: [0-9]*' "$STACK_VAR/log/unit-${name//\//_}.log" | tail -n1)"
    fi
done < <(find build/asan/tests -type f -name 'test_*' -perm -u+x | sort)

# Each libFuzzer target on a copy of its seed corpus (what it finds stays in $STACK_VAR, not the repo).
FUZZ_SECONDS="${FUZZ_SECONDS:-5}"
echo "== fuzzing (libFuzzer, $FUZZ_SECONDS s per target)"
while IFS= read -r t; do
    name="${t#build/asan/fuzz/fuzz_}"
    mkdir -p "$STACK_VAR/fuzz/$name"
    [[ -d tests/fuzz/corpus/$name ]] && cp tests/fuzz/corpus/"$name"/* "$STACK_VAR/fuzz/$name/"
    if ! "$t" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=1024 -timeout=5 -print_final_stats=1 \
        -artifact_prefix="$STACK_VAR/fuzz/$name-" "$STACK_VAR/fuzz/$name" >"$STACK_VAR/log/fuzz-$name.log" 2>&1; then
        failures+=("fuzz: $name")
        echo "FAIL fuzz_$name"; tail -n 40 "$STACK_VAR/log/fuzz-$name.log"
    else
        echo "ok   fuzz_$name: $(grep -o 'cov: [0-9]* ft: [0-9]* .* exec/s: [0-9]*' "$STACK_VAR/log/fuzz-$name.log" | tail -n1)"
    fi
done < <(find build/asan/fuzz -type f -name 'fuzz_*' -perm -u+x | sort)

echo "== test stack: daemons and gateway"
"$STACK" daemons-up

echo "== e2e tests (HTTP/2 through the gateway)"
if ! "$ROOT/.venv/bin/python" -m pytest -q -p no:cacheprovider tests/e2e; then
    failures+=("e2e")
fi

echo "== stopping the test stack"
"$STACK" down

echo "== sanitizer reports"
# Our C processes only (fcm-fake, the FCM fake of tests/fakes, is ours and scanned): FerretDB and
# versitygw (Go), RabbitMQ and smtp-sink (Python) are not sanitized, and write "runtime error" lines of their own.
ours=()
for f in "$STACK_VAR"/log/*.log; do
    case "$(basename "$f")" in ferretdb.log | versitygw.log | rabbitmq*.log | epmd.log | smtp-sink.log) ;; *) ours+=("$f") ;; esac
done
if grep -l -E 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' "${ours[@]}"; then
    grep -h -A 30 -E 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' "${ours[@]}" | head -n 120
    failures+=("sanitizer reports (files above)")
else
    echo "none"
fi

if ((${#failures[@]})); then
    echo "FAILED: ${failures[*]}"
    exit 1
fi
echo "ALL TESTS PASSED"
