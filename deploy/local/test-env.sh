# test-env.sh -- the environment of the test stack; sourced by test.sh, and by hand to poke at it:
#   . deploy/local/test-env.sh && deploy/local/stack.sh up && .venv/bin/python -m pytest tests/e2e -k name
ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"

# The test stack: other ports, node name and var dir than the developer stack of `make up`,
# so both can run at once. Binaries are the ASan+UBSan build.
export STACK_VAR="$ROOT/var/test"
export STACK_BIN="$ROOT/build/asan/bin"
export STACK_NODE="rabbit-test@localhost"
export STACK_AMQP_PORT=5673 STACK_MGMT_PORT=15673 STACK_DIST_PORT=25673 STACK_EPMD_PORT=4370
export STACK_MONGO_PORT=27018 STACK_HTTP_PORT=8081 STACK_HTTPS_PORT=8444 STACK_ADMIN_BASE=9200
export STACK_EXTRA_DAEMONS="echod"
# versitygw for the object store's tests (tests/unit/libs/objstore): infra-up starts it.
export STACK_S3_PORT=7073 STACK_S3_BUCKET=media-test
export STACK_S3_ACCESS_KEY=test-access-key STACK_S3_SECRET_KEY=test-secret-key
# smtp-sink (tests/fakes/smtp_sink.py) for the mail tests (tests/unit/services/notification): infra-up
# starts it, and the daemons get SMTP_URL and MAIL_FROM pointing at it.
export STACK_SMTP_PORT=2526
# The FCM fake (tests/fakes/fcm_fake.c) for the notification daemon's push: infra-up starts it.
export STACK_FCM_PORT=7083

# Gateway settings the tests rely on (documented in the tests that use them).
export GATEWAY_DEBUG_ROUTES=true GATEWAY_TRUSTED_PROXIES=1
# Room for tests that restart a daemon while a request of theirs waits in its queue.
export GATEWAY_RPC_TIMEOUT=10s
# Slow refill (1/s) so rate-limit tests are not timing-sensitive; bursts are large enough
# for any single test, and every test speaks from its own address and user.
export GATEWAY_RATE_IP_PER_SEC=1 GATEWAY_RATE_IP_BURST=300
export GATEWAY_RATE_USER_PER_SEC=1 GATEWAY_RATE_USER_BURST=150
# auth's abuse limits, low enough for tests to reach (each test speaks from its own address).
export AUTH_LOGIN_FAILURES_PER_ACCOUNT=5 AUTH_LOGIN_FAILURES_PER_ADDRESS=12 AUTH_REGISTRATIONS_PER_ADDRESS=10
# Uploads killed half-way are cleaned up this long after (test_resilience_media.py); longer
# than any upload of the tests takes in the ASan build.
export RESIZE_IMAGE_OUTBOX_RECOVER_AFTER=8s
# Posts, comments and likes whose daemon died between write and commit (test_resilience_publication.py).
export PUBLICATION_OUTBOX_RECOVER_AFTER=5s
export LOG_LEVEL=info
export TEST_AMQP_URL="amqp://guest:guest@127.0.0.1:$STACK_AMQP_PORT"
export TEST_MONGO_URI="mongodb://127.0.0.1:$STACK_MONGO_PORT/unit_tests"
export TEST_RABBITMQ_API="http://127.0.0.1:$STACK_MGMT_PORT/api"
export TEST_S3_ENDPOINT="http://127.0.0.1:$STACK_S3_PORT" TEST_S3_BUCKET="$STACK_S3_BUCKET" TEST_S3_REGION=us-east-1
export TEST_S3_ACCESS_KEY="$STACK_S3_ACCESS_KEY" TEST_S3_SECRET_KEY="$STACK_S3_SECRET_KEY"
# The stack's SMTP sink and where it writes messages (N.eml, N.json; DIR/.fail injects a failure:
# see tests/fakes/smtp_sink.py). Tests that need a sink of their own start TEST_SMTP_SINK with TEST_PYTHON.
export TEST_SMTP_URL="smtp://127.0.0.1:$STACK_SMTP_PORT" TEST_MAIL_DIR="$STACK_VAR/mail"
export TEST_PYTHON="$ROOT/.venv/bin/python" TEST_SMTP_SINK="$ROOT/tests/fakes/smtp_sink.py"
export TEST_FCM_URL="http://127.0.0.1:$STACK_FCM_PORT" TEST_FCM_CREDENTIALS="$STACK_VAR/keys/fcm-service-account.json"

# libmongoc keeps counters in /dev/shm/mongoc-<pid>; a process killed by a test leaves its file, and
# a later process given the same pid prints "Falling back to malloc for counters" on stderr, which
# breaks the tests that read a daemon's one line of output. The counters are not used.
export MONGOC_DISABLE_SHM=1

# Sanitizers: reports go to the process's stderr (its log); the scan at the end fails the run.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:print_summary=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"

# Feed (test_feed*.py): authors with more than 5 followers are merged at read time, and fanout
# batches of 2 followers make even small accounts' posts go through fanout.batch messages.
export FEED_FANOUT_MAX_FOLLOWERS=5 FEED_FANOUT_BATCH=2 STORY_PURGE_INTERVAL=1s
# Push (test_push.py): a send that keeps failing is given up on within a second, and its job goes
# back to notification.push; NOTIFY_POST_BATCH=2 makes a post's followers take several bulk writes.
export PUSH_ATTEMPTS=3 PUSH_BACKOFF=200ms NOTIFY_POST_BATCH=2
