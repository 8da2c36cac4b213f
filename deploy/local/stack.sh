#!/usr/bin/env bash
# deploy/local/stack.sh -- starts, stops and inspects one local suite (epmd, RabbitMQ, FerretDB, optionally versitygw and smtp-sink, daemons, gateway) under its own var dir.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

VAR=$(realpath -m "${STACK_VAR:-$ROOT/var}")
BIN=$(realpath -m "${STACK_BIN:-$ROOT/build/release/bin}")
AMQP_PORT=${STACK_AMQP_PORT:-5672}
MGMT_PORT=${STACK_MGMT_PORT:-15672}
DIST_PORT=${STACK_DIST_PORT:-25672}
EPMD_PORT=${STACK_EPMD_PORT:-4369}
NODE=${STACK_NODE:-rabbit@localhost}
MONGO_PORT=${STACK_MONGO_PORT:-27017}
HTTP_PORT=${STACK_HTTP_PORT:-8080}
HTTPS_PORT=${STACK_HTTPS_PORT:-8443}
ADMIN_BASE=${STACK_ADMIN_BASE:-9100}
# versitygw (S3) runs only when STACK_S3_PORT is set: the tests of the object store use it.
S3_PORT=${STACK_S3_PORT:-}
S3_ACCESS_KEY=${STACK_S3_ACCESS_KEY:-stack-access-key}
S3_SECRET_KEY=${STACK_S3_SECRET_KEY:-stack-secret-key}
S3_BUCKET=${STACK_S3_BUCKET:-media-test}
S3_REGION=${STACK_S3_REGION:-us-east-1}
# smtp-sink (tests/fakes/smtp_sink.py) runs only when STACK_SMTP_PORT is set: the daemons then
# send mail to it, and it keeps each message in $VAR/mail.
SMTP_PORT=${STACK_SMTP_PORT:-}
SMTP_FROM=${STACK_MAIL_FROM:-Photo <no-reply@photo.test>}
# The FCM fake (tests/fakes/fcm_fake.c) runs only when STACK_FCM_PORT is set: the notification
# daemon's push tests use it; the daemons then get FCM_CREDENTIALS and FCM_ENDPOINT pointing at it.
FCM_PORT=${STACK_FCM_PORT:-}
FCM_PROJECT=photo-test
FCM_CLIENT_EMAIL=push@photo-test.iam.gserviceaccount.com

RUN=$VAR/run
LOGDIR=$VAR/log
KEYS=$VAR/keys
MEDIA=$VAR/media
RMQ=$VAR/rabbitmq
RMQ_BIN=/usr/lib/rabbitmq/bin
FERRETDB=$ROOT/tools/bin/ferretdb
VERSITYGW=$ROOT/tools/bin/versitygw
S3=$VAR/s3 # versitygw's posix root: one directory per bucket
PYTHON=$ROOT/.venv/bin/python
SMTP_SINK=$ROOT/tests/fakes/smtp_sink.py
MAILDIR=$VAR/mail # smtp-sink's messages: N.eml and N.json

# No trailing slash: rabbitmq-c's amqp_parse_url reads ".../" as the empty vhost "" (our mq_new
# maps that to "/", but amqp-tools and other clients would be refused with 530 NOT_ALLOWED).
# guest (administrator, loopback only) is the local stacks' own: the tests, the management UI
# and bin/queues use it. Each daemon connects as its own user (daemon_amqp_url).
AMQP_URL=amqp://guest:guest@127.0.0.1:$AMQP_PORT
# The broker's users, permissions, exchanges, queues and policies: the file production loads.
DEFINITIONS=$ROOT/deploy/rabbitmq/definitions.json
DIST_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'

# Daemons with a fixed admin port: ADMIN_BASE+1 is auth, +2 resize-image, and so on;
# any other daemon (echod, ...) gets the next ports in the order it is listed.
KNOWN_DAEMONS=(auth resize-image publication notification search)
INFRA=(epmd rabbitmq ferretdb versitygw fcm-fake gateway)
INFRA+=(smtp-sink)

STOP_TIMEOUT=${STACK_STOP_TIMEOUT:-30}   # seconds a process gets after SIGTERM before SIGKILL
INFRA_TIMEOUT=${STACK_INFRA_TIMEOUT:-90} # seconds RabbitMQ, FerretDB and versitygw get to accept connections
READY_TIMEOUT=${STACK_READY_TIMEOUT:-60} # seconds the gateway gets to answer /readyz with 200

log() { printf 'stack: %s\n' "$*"; }
warn() { printf 'stack: WARNING: %s\n' "$*" >&2; }
die() {
	printf 'stack: ERROR: %s\n' "$*" >&2
	exit 1
}

usage() {
	cat <<EOF
usage: ${0##*/} COMMAND
  up            infra-up, then daemons-up
  infra-up      epmd, RabbitMQ, FerretDB (versitygw when STACK_S3_PORT is set, the FCM fake when
                STACK_FCM_PORT is, smtp-sink when STACK_SMTP_PORT is); waits until they accept connections
  daemons-up    daemons and gateway; waits until the gateway's /readyz answers 200
  down          stops every process with a pid file in $RUN
  start NAME    starts one process (epmd, rabbitmq, ferretdb, versitygw, fcm-fake, smtp-sink, gateway or a daemon)
  stop NAME     SIGTERM, waits until it exited (SIGKILL after ${STOP_TIMEOUT}s)
  kill9 NAME    SIGKILL to the process and its process group
  status        each pid file: running or not
  rabbitmqctl ARGS...  rabbitmqctl against this stack's node (list_queues, set_vm_memory_high_watermark, ...)
  logs          tail -F every log in $LOGDIR
EOF
}

# ---------------------------------------------------------------- daemons list

# Daemon names: STACK_DAEMONS (default: every services/<name> but gateway whose binary is
# built) followed by STACK_EXTRA_DAEMONS.
daemon_names() {
	local -a names=()
	if [[ -n ${STACK_DAEMONS+set} ]]; then
		read -r -a names <<<"$STACK_DAEMONS"
	else
		local dir name
		while IFS= read -r dir; do
			name=${dir##*/}
			[[ $name != gateway && -x $BIN/$name ]] && names+=("$name")
		done < <(find "$ROOT/services" -mindepth 1 -maxdepth 1 -type d | LC_ALL=C sort)
	fi
	local -a extra=()
	read -r -a extra <<<"${STACK_EXTRA_DAEMONS:-}"
	names+=("${extra[@]}")
	((${#names[@]} == 0)) || printf '%s\n' "${names[@]}"
}

admin_port() {
	local name=$1 i n=0 d
	for i in "${!KNOWN_DAEMONS[@]}"; do
		[[ ${KNOWN_DAEMONS[i]} == "$name" ]] && {
			echo $((ADMIN_BASE + 1 + i))
			return
		}
	done
	while IFS= read -r d; do
		is_known_daemon "$d" && continue
		[[ $d == "$name" ]] && break
		n=$((n + 1))
	done < <(daemon_names)
	echo $((ADMIN_BASE + 1 + ${#KNOWN_DAEMONS[@]} + n))
}

is_known_daemon() {
	local k
	for k in "${KNOWN_DAEMONS[@]}"; do [[ $k == "$1" ]] && return 0; done
	return 1
}

is_infra() {
	local k
	for k in "${INFRA[@]}"; do [[ $k == "$1" ]] && return 0; done
	return 1
}

upper_snake() { tr 'a-z-' 'A-Z_' <<<"$1"; }

# ---------------------------------------------------------------- processes

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

http_ok() { curl -fsS -o /dev/null --max-time 2 "$@" 2>/dev/null; }

pid_of() {
	local pid
	[[ -f $RUN/$1.pid ]] || return 1
	pid=$(<"$RUN/$1.pid")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	echo "$pid"
}

# A live process (zombies do not count).
pid_alive() {
	local state
	state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ -n $state && $state != Z* ]]
}

# Every process started here leads its own session and process group (setsid): the
# group id is the recorded pid. True while any live process is left in that group.
group_alive() {
	ps -e -o pgid= -o stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}

# The recorded pid still runs what we started (guards against reuse of a stale pid).
pid_is() {
	local name=$1 pid=$2 cmd marker
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	case $name in
	rabbitmq) marker=rabbitmq-server ;;
	smtp-sink) marker=smtp_sink.py ;;
	*) marker=$name ;;
	esac
	[[ $cmd == *"$marker"* ]]
}

running() {
	local pid
	pid=$(pid_of "$1") || return 1
	pid_alive "$pid" && pid_is "$1" "$pid"
}

# start_proc NAME ENV... -- CMD ARGS...: runs CMD in a new session, detached from the
# terminal, stdout and stderr appended to log/NAME.log, its pid in run/NAME.pid.
start_proc() {
	local name=$1 pidfile=$RUN/$1.pid logfile=$LOGDIR/$1.log
	shift
	local -a envs=()
	while (($# > 0)) && [[ $1 != -- ]]; do
		envs+=("$1")
		shift
	done
	shift
	if running "$name"; then
		log "$name: already running (pid $(pid_of "$name"))"
		return 0
	fi
	rm -f "$pidfile"
	mkdir -p "$RUN" "$LOGDIR"
	printf '==== %s stack.sh: starting %s: %s\n' "$(date -Is)" "$name" "$*" >>"$logfile"
	# The child writes its own pid (setsid may fork), then becomes CMD.
	# shellcheck disable=SC2016 # expanded by the child shell
	setsid env "${envs[@]}" bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' \
		"$pidfile" "$@" </dev/null >>"$logfile" 2>&1 &
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -s $pidfile ]] && break
		sleep 0.05
	done
	[[ -s $pidfile ]] || fail_with_logs "$name: did not start (no pid file after 5 s)" "$name"
	log "$name: started (pid $(<"$pidfile"), log $logfile)"
}

# Sends SIGTERM to NAME if it runs; sets STOP_PID to its pid when there is something to
# wait for, else to "".
STOP_PID=
signal_stop() {
	local name=$1 pid
	STOP_PID=
	if ! pid=$(pid_of "$name"); then
		if [[ -f $RUN/$name.pid ]]; then
			warn "$name: unreadable pid file; removing it"
			rm -f "$RUN/$name.pid"
		else
			log "$name: not running"
		fi
		return 0
	fi
	if pid_alive "$pid" && ! pid_is "$name" "$pid"; then
		warn "$name: pid $pid in $RUN/$name.pid is now another program; removing the stale pid file"
		rm -f "$RUN/$name.pid"
		return 0
	fi
	if ! group_alive "$pid"; then
		log "$name: not running (removing stale pid file)"
		rm -f "$RUN/$name.pid"
		return 0
	fi
	if pid_alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
	else
		kill -TERM -- "-$pid" 2>/dev/null || true # the leader is gone, its group is not
	fi
	STOP_PID=$pid
}

# Waits until NAME's process group is gone; SIGKILL after STOP_TIMEOUT seconds.
wait_stopped() {
	local name=$1 pid=$2 started=$3
	while group_alive "$pid"; do
		if ((SECONDS - started >= STOP_TIMEOUT)); then
			warn "$name: still running ${STOP_TIMEOUT}s after SIGTERM; sending SIGKILL to process group $pid"
			kill -KILL -- "-$pid" 2>/dev/null || true
			local i
			for ((i = 0; i < 50; i++)); do
				group_alive "$pid" || break
				sleep 0.1
			done
			group_alive "$pid" && warn "$name: process group $pid survived SIGKILL"
			break
		fi
		sleep 0.1
	done
	rm -f "$RUN/$name.pid"
	log "$name: stopped (pid $pid, $((SECONDS - started))s)"
}

# Stops the named processes together: SIGTERM to all, then waits for each.
stop_procs() {
	local -a names=() pids=()
	local name started=$SECONDS i
	for name in "$@"; do
		signal_stop "$name"
		if [[ -n $STOP_PID ]]; then
			names+=("$name")
			pids+=("$STOP_PID")
		fi
	done
	for i in "${!names[@]}"; do
		wait_stopped "${names[i]}" "${pids[i]}" "$started"
	done
}

kill9_proc() {
	local name=$1 pid i
	pid=$(pid_of "$name") || die "$name: no pid file in $RUN"
	if pid_alive "$pid" && ! pid_is "$name" "$pid"; then
		rm -f "$RUN/$name.pid"
		die "$name: pid $pid is now another program; removed the stale pid file"
	fi
	kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
	# Until its sockets are closed too: a killed multi-threaded process shows as a zombie while its
	# other threads are still being torn down, and those still hold its listening ports.
	for ((i = 0; i < 100; i++)); do
		group_alive "$pid" || [[ -n $(ls -A "/proc/$pid/fd" 2>/dev/null) ]] || break
		sleep 0.1
	done
	rm -f "$RUN/$name.pid"
	log "$name: killed with SIGKILL (pid $pid)"
}

# ---------------------------------------------------------------- diagnostics

# Prints the last lines of the logs of the given names (all logs when none given), then exits 1.
fail_with_logs() {
	local msg=$1 f
	shift
	local -a files=()
	if (($# == 0)); then
		files=("$LOGDIR"/*.log)
	else
		for f in "$@"; do files+=("$LOGDIR/$f.log"); done
		[[ " $* " == *" rabbitmq "* ]] && files+=("$RMQ/log/$NODE.log")
	fi
	for f in "${files[@]}"; do
		[[ -f $f ]] || continue
		printf '\n---- last lines of %s\n' "$f" >&2
		tail -n 25 "$f" >&2
	done
	printf '\n' >&2
	die "$msg"
}

# wait_for NAME SECONDS WHAT CHECK...: polls CHECK until it succeeds; fails with NAME's log
# tail when NAME's process exits or the time is up.
wait_for() {
	local name=$1 timeout=$2 what=$3
	shift 3
	local started=$SECONDS
	until "$@"; do
		running "$name" || fail_with_logs "$name: exited while waiting for $what" "$name"
		((SECONDS - started < timeout)) || fail_with_logs "$name: $what not there after ${timeout}s" "$name"
		sleep 0.25
	done
}

# Fails when a port we are about to listen on is taken by something that is not ours.
# A port just freed by a SIGKILL can stay bound a while longer on a loaded machine (the kernel tears
# the dead process down after its pid is gone): give it STACK_PORT_WAIT seconds (15) before giving up.
require_free_port() {
	local name=$1 port=$2 i holder
	for ((i = 0; i < ${STACK_PORT_WAIT:-15} * 10; i++)); do
		port_open "$port" || return 0
		sleep 0.1
	done
	holder=$(ss -ltnpH "sport = :$port" 2>/dev/null | grep -o 'users:.*' | head -n 1)
	die "$name: port 127.0.0.1:$port is already in use by another process${holder:+ ($holder)} (another stack? set STACK_*_PORT)"
}

require_bin() {
	[[ -x $1 ]] || die "missing binary $1${2:+ ($2)}"
}

require_infra_bins() {
	require_bin "$(command -v epmd || echo /usr/bin/epmd)" "install erlang-base: make deps"
	require_bin "$RMQ_BIN/rabbitmq-server" "install rabbitmq-server: make deps"
	require_bin "$FERRETDB" "build it: make deps"
	[[ -z $S3_PORT ]] || require_bin "$VERSITYGW" "build it: make deps"
	[[ -z $SMTP_PORT ]] || require_bin "$PYTHON" "the Python venv: make deps"
	[[ -z $FCM_PORT ]] || require_bin "$BIN/fcm-fake" "build it: make binaries (SAN=1 for the test stack), or set STACK_BIN"
	command -v curl >/dev/null || die "missing curl (make deps)"
	command -v jq >/dev/null || die "missing jq (make deps)"
}

require_suite_bins() {
	local d
	command -v openssl >/dev/null || die "missing openssl (make deps)"
	while IFS= read -r d; do
		require_bin "$BIN/$d" "daemon $d; build it: make build, or set STACK_BIN"
	done < <(daemon_names)
	require_bin "$BIN/gateway" "build it: make build, or set STACK_BIN"
}

# ---------------------------------------------------------------- infra

start_epmd() {
	if ! running epmd; then
		require_free_port epmd "$EPMD_PORT"
		start_proc epmd -- "$(command -v epmd)" -address 127.0.0.1 -port "$EPMD_PORT"
	fi
	wait_for epmd 10 "epmd on port $EPMD_PORT" port_open "$EPMD_PORT"
}

rabbitmq_ready() {
	port_open "$AMQP_PORT" && http_ok -u guest:guest "http://127.0.0.1:$MGMT_PORT/api/overview"
}

start_rabbitmq() {
	start_epmd
	if ! running rabbitmq; then
		local p
		for p in "$AMQP_PORT" "$MGMT_PORT" "$DIST_PORT"; do require_free_port rabbitmq "$p"; done
		mkdir -p "$RMQ/mnesia" "$RMQ/log"
		write_local_definitions
		cat >"$RMQ/rabbitmq.conf" <<EOF
# Written by deploy/local/stack.sh at each start.
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
management.tcp.ip = 127.0.0.1
management.tcp.port = $MGMT_PORT
# Imported at every boot, before the listeners open (deploy/rabbitmq/definitions.json + local passwords).
load_definitions = $RMQ/definitions.json
EOF
		echo '[rabbitmq_management].' >"$RMQ/enabled_plugins"
		# Our own (empty) env file, so /etc/rabbitmq/rabbitmq-env.conf is not read.
		echo '# Settings come from deploy/local/stack.sh.' >"$RMQ/rabbitmq-env.conf"
		start_proc rabbitmq \
			HOME="$RMQ" \
			RABBITMQ_CONF_ENV_FILE="$RMQ/rabbitmq-env.conf" \
			RABBITMQ_NODENAME="$NODE" \
			RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
			RABBITMQ_NODE_PORT="$AMQP_PORT" \
			RABBITMQ_DIST_PORT="$DIST_PORT" \
			RABBITMQ_MNESIA_BASE="$RMQ/mnesia" \
			RABBITMQ_LOG_BASE="$RMQ/log" \
			RABBITMQ_CONFIG_FILE="$RMQ/rabbitmq.conf" \
			RABBITMQ_ADVANCED_CONFIG_FILE="$RMQ/advanced.config" \
			RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ/enabled_plugins" \
			RABBITMQ_PID_FILE="$RMQ/$NODE.pid" \
			ERL_EPMD_ADDRESS=127.0.0.1 \
			ERL_EPMD_PORT="$EPMD_PORT" \
			RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="$DIST_ERL_ARGS" \
			RABBITMQ_CTL_ERL_ARGS="$DIST_ERL_ARGS" \
			-- "$RMQ_BIN/rabbitmq-server"
	fi
	local t0=$SECONDS
	wait_for rabbitmq "$INFRA_TIMEOUT" "AMQP on $AMQP_PORT and the management API on $MGMT_PORT" rabbitmq_ready
	log "rabbitmq: ready ($((SECONDS - t0))s)"
}

# The local password of a broker user of the definitions: a development value, never a secret
# (the broker listens on 127.0.0.1 only; production sets real ones, deploy/rabbitmq/README.md).
amqp_password() { printf 'local-%s' "$1"; }

# The daemon's (or the gateway's) AMQP_URL: its own user of the definitions, guest for a daemon
# that has none there.
daemon_amqp_url() {
	if jq -e --arg u "$1" 'any(.users[]; .name == $u)' "$DEFINITIONS" >/dev/null; then
		printf 'amqp://%s:%s@127.0.0.1:%s' "$1" "$(amqp_password "$1")" "$AMQP_PORT"
	else
		warn "$1: no broker user in $DEFINITIONS; it connects as guest"
		printf '%s' "$AMQP_URL"
	fi
}

# What the local node loads at boot (load_definitions): deploy/rabbitmq/definitions.json as it is,
# plus each user's local password and the local administrator guest/guest (the definitions carry
# no passwords, and a node that loads definitions at boot creates no guest of its own).
write_local_definitions() {
	jq '.users |= map(. + {password: ("local-" + .name)})
	    | .users += [{name: "guest", password: "guest", tags: "administrator"}]
	    | .permissions += [{user: "guest", vhost: "/", configure: ".*", write: ".*", read: ".*"}]' \
		"$DEFINITIONS" >"$RMQ/definitions.json.tmp" || die "cannot read $DEFINITIONS"
	mv "$RMQ/definitions.json.tmp" "$RMQ/definitions.json"
}

rabbitmqctl_cmd() {
	HOME="$RMQ" RABBITMQ_CONF_ENV_FILE="$RMQ/rabbitmq-env.conf" RABBITMQ_NODENAME="$NODE" \
		ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT="$EPMD_PORT" RABBITMQ_CTL_ERL_ARGS="$DIST_ERL_ARGS" \
		"$RMQ_BIN/rabbitmqctl" -n "$NODE" "$@"
}

start_ferretdb() {
	if ! running ferretdb; then
		require_free_port ferretdb "$MONGO_PORT"
		mkdir -p "$VAR/ferretdb/data" "$VAR/ferretdb/state"
		start_proc ferretdb -- "$FERRETDB" \
			--handler=sqlite \
			--sqlite-url="file:$VAR/ferretdb/data/" \
			--state-dir="$VAR/ferretdb/state" \
			--listen-addr="127.0.0.1:$MONGO_PORT" \
			--debug-addr=- \
			--telemetry=disable \
			--log-level=info
	fi
	wait_for ferretdb "$INFRA_TIMEOUT" "MongoDB wire protocol on port $MONGO_PORT" port_open "$MONGO_PORT"
	log "ferretdb: ready"
}

# A signed S3 request to versitygw with an empty payload: s3_request METHOD PATH. Prints the
# answer's body, then a line with its HTTP status. The keys reach curl on stdin, in its config
# syntax, rather than on its command line.
s3_request() {
	local method=$1 path=$2 user="$S3_ACCESS_KEY:$S3_SECRET_KEY"
	user=${user//\\/\\\\}
	user=${user//\"/\\\"}
	# SHA-256 of the empty payload: curl 7.88 does not send x-amz-content-sha256, and
	# versitygw refuses requests without it.
	local empty_sha=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
	printf 'user = "%s"\n' "$user" |
		curl -sS --max-time 10 -K - -X "$method" --aws-sigv4 "aws:amz:$S3_REGION:s3" \
			-H "x-amz-content-sha256: $empty_sha" -w '\n%{http_code}' "http://127.0.0.1:$S3_PORT$path"
}

# The bucket, made by a signed PUT: versitygw keeps a bucket's owner and ACL in extended
# attributes of its directory, and answers 500 for a bucket that is a bare mkdir.
ensure_s3_bucket() {
	local out code why
	out=$(s3_request PUT "/$S3_BUCKET" 2>&1) || true
	code=${out##*$'\n'}
	case $code in
	200) log "versitygw: made bucket $S3_BUCKET" ;;
	409) ;; # BucketAlreadyOwnedByYou: made at an earlier start
	*)
		# The S3 error code (SignatureDoesNotMatch: other keys than the running versitygw's),
		# else what curl said.
		why=$(sed -n 's:.*<Code>\([^<]*\)</Code>.*:\1:p' <<<"$out" | head -n 1)
		fail_with_logs "versitygw: could not create bucket $S3_BUCKET: HTTP $code ${why:-${out%$'\n'*}}" versitygw
		;;
	esac
}

start_versitygw() {
	[[ -n $S3_PORT ]] || die "versitygw: set STACK_S3_PORT to run it"
	if ! running versitygw; then
		require_free_port versitygw "$S3_PORT"
		mkdir -p "$S3"
		# Keys through the environment (ROOT_ACCESS_KEY, ROOT_SECRET_KEY), so ps does not show them.
		start_proc versitygw \
			ROOT_ACCESS_KEY="$S3_ACCESS_KEY" \
			ROOT_SECRET_KEY="$S3_SECRET_KEY" \
			-- "$VERSITYGW" \
			--port "127.0.0.1:$S3_PORT" \
			--region "$S3_REGION" \
			posix "$S3"
	fi
	wait_for versitygw "$INFRA_TIMEOUT" "S3 on port $S3_PORT" port_open "$S3_PORT"
	ensure_s3_bucket
	log "versitygw: ready (http://127.0.0.1:$S3_PORT, bucket $S3_BUCKET)"
}

# ---------------------------------------------------------------- smtp-sink

start_smtp_sink() {
	[[ -n $SMTP_PORT ]] || die "smtp-sink: set STACK_SMTP_PORT to run it"
	if ! running smtp-sink; then
		require_free_port smtp-sink "$SMTP_PORT"
		mkdir -p "$MAILDIR"
		start_proc smtp-sink -- "$PYTHON" "$SMTP_SINK" --listen "127.0.0.1:$SMTP_PORT" --dir "$MAILDIR"
	fi
	wait_for smtp-sink 30 "SMTP on port $SMTP_PORT" port_open "$SMTP_PORT"
	log "smtp-sink: ready (smtp://127.0.0.1:$SMTP_PORT, messages in $MAILDIR)"
}

# Appends to the array named $1 the mail settings of a daemon: SMTP_URL and MAIL_FROM when
# smtp-sink runs in this stack, nothing otherwise.
smtp_daemon_env() {
	local -n _env=$1
	[[ -z $SMTP_PORT ]] || _env+=("SMTP_URL=smtp://127.0.0.1:$SMTP_PORT" "MAIL_FROM=$SMTP_FROM")
}

# ---------------------------------------------------------------- FCM fake

# An RSA key and a service-account JSON for it, as Google hands them out; the key is made once, the
# JSON at each start (its token_uri names this stack's port).
ensure_fcm_keys() {
	mkdir -p "$KEYS"
	chmod 700 "$KEYS"
	if [[ ! -f $KEYS/fcm-private.pem || ! -f $KEYS/fcm-public.pem ]]; then
		(
			umask 077
			openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$KEYS/fcm-private.pem.tmp" 2>/dev/null
			openssl pkey -in "$KEYS/fcm-private.pem.tmp" -pubout -out "$KEYS/fcm-public.pem"
			mv "$KEYS/fcm-private.pem.tmp" "$KEYS/fcm-private.pem"
		) || die "could not generate the FCM service-account key in $KEYS"
		log "keys: made the FCM service-account key $KEYS/fcm-{private,public}.pem"
	fi
	local pem key_id
	pem=$(awk '{ printf "%s\\n", $0 }' "$KEYS/fcm-private.pem") # a JSON string: newlines as \n
	key_id=$(openssl pkey -pubin -in "$KEYS/fcm-public.pem" -outform DER 2>/dev/null | sha1sum | cut -c1-40)
	(
		umask 077
		cat >"$KEYS/fcm-service-account.json.tmp" <<EOF
{
  "type": "service_account",
  "project_id": "$FCM_PROJECT",
  "private_key_id": "$key_id",
  "private_key": "$pem",
  "client_email": "$FCM_CLIENT_EMAIL",
  "token_uri": "http://127.0.0.1:$FCM_PORT/token"
}
EOF
		mv "$KEYS/fcm-service-account.json.tmp" "$KEYS/fcm-service-account.json"
	) || die "could not write $KEYS/fcm-service-account.json"
}

start_fcm_fake() {
	[[ -n $FCM_PORT ]] || die "fcm-fake: set STACK_FCM_PORT to run it"
	require_bin "$BIN/fcm-fake" "build it: make binaries (SAN=1 for the test stack), or set STACK_BIN"
	if ! running fcm-fake; then
		require_free_port fcm-fake "$FCM_PORT"
		ensure_fcm_keys
		start_proc fcm-fake -- "$BIN/fcm-fake" \
			--listen "127.0.0.1:$FCM_PORT" \
			--public-key "$KEYS/fcm-public.pem" \
			--client-email "$FCM_CLIENT_EMAIL" \
			--project "$FCM_PROJECT" \
			--token-uri "http://127.0.0.1:$FCM_PORT/token"
	fi
	wait_for fcm-fake "$INFRA_TIMEOUT" "HTTP on port $FCM_PORT" port_open "$FCM_PORT"
	log "fcm-fake: ready (http://127.0.0.1:$FCM_PORT, credentials $KEYS/fcm-service-account.json)"
}

# The environment a daemon gets for push while the fake runs, one NAME=VALUE a line (else nothing).
fcm_daemon_env() {
	if [[ -n $FCM_PORT ]] && running fcm-fake; then
		printf '%s\n' "FCM_CREDENTIALS=$KEYS/fcm-service-account.json" "FCM_ENDPOINT=http://127.0.0.1:$FCM_PORT"
	fi
}

infra_up() {
	require_infra_bins
	start_rabbitmq
	start_ferretdb
	[[ -z $S3_PORT ]] || start_versitygw
	[[ -z $SMTP_PORT ]] || start_smtp_sink
	[[ -z $FCM_PORT ]] || start_fcm_fake
}

# ---------------------------------------------------------------- suite

# JWT signing key pair and a self-signed TLS certificate for localhost, made once.
ensure_keys() {
	mkdir -p "$KEYS" "$MEDIA"
	chmod 700 "$KEYS"
	if [[ ! -f $KEYS/jwt-private.pem || ! -f $KEYS/jwt-public.pem ]]; then
		(
			umask 077
			openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$KEYS/jwt-private.pem.tmp" 2>/dev/null
			openssl pkey -in "$KEYS/jwt-private.pem.tmp" -pubout -out "$KEYS/jwt-public.pem"
			mv "$KEYS/jwt-private.pem.tmp" "$KEYS/jwt-private.pem"
		) || die "could not generate the JWT key pair in $KEYS"
		log "keys: made the JWT key pair $KEYS/jwt-{private,public}.pem"
	fi
	if [[ ! -f $KEYS/tls.crt || ! -f $KEYS/tls.key ]]; then
		(
			umask 077
			openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj /CN=localhost \
				-addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
				-keyout "$KEYS/tls.key.tmp" -out "$KEYS/tls.crt" 2>/dev/null
			mv "$KEYS/tls.key.tmp" "$KEYS/tls.key"
		) || die "could not generate the TLS certificate in $KEYS"
		log "keys: made the self-signed TLS certificate $KEYS/tls.crt"
	fi
}

start_daemon() {
	local name=$1 port upper
	require_bin "$BIN/$name" "daemon $name; build it: make build, or set STACK_BIN"
	ensure_keys
	port=$(admin_port "$name")
	upper=$(upper_snake "$name")
	if ! running "$name"; then
		require_free_port "$name" "$port"
	fi
	local -a mail_env=() fcm_env=()
	smtp_daemon_env mail_env
	mapfile -t fcm_env < <(fcm_daemon_env)
	# env(1) adds these to the caller's whole environment (and wins over it).
	start_proc "$name" \
		"${mail_env[@]}" \
		"${fcm_env[@]}" \
		LOG_LEVEL="${LOG_LEVEL:-info}" \
		AMQP_URL="$(daemon_amqp_url "$name")" \
		ADMIN_LISTEN="127.0.0.1:$port" \
		"${upper}_MONGO_URI=mongodb://127.0.0.1:$MONGO_PORT/${name//-/_}" \
		JWT_PRIVATE_KEY_FILE="$KEYS/jwt-private.pem" \
		JWT_PUBLIC_KEY_FILE="$KEYS/jwt-public.pem" \
		MEDIA_DIR="$MEDIA" \
		SEARCH_INDEX_DIR="$VAR/search-index" \
		-- "$BIN/$name"
}

start_gateway() {
	require_bin "$BIN/gateway" "build it: make build, or set STACK_BIN"
	ensure_keys
	if ! running gateway; then
		require_free_port gateway "$HTTP_PORT"
		require_free_port gateway "$HTTPS_PORT"
	fi
	start_proc gateway \
		LOG_LEVEL="${LOG_LEVEL:-info}" \
		GATEWAY_LISTEN="127.0.0.1:$HTTP_PORT" \
		GATEWAY_TLS_LISTEN="127.0.0.1:$HTTPS_PORT" \
		GATEWAY_TLS_CERT_FILE="$KEYS/tls.crt" \
		GATEWAY_TLS_KEY_FILE="$KEYS/tls.key" \
		JWT_PUBLIC_KEY_FILE="$KEYS/jwt-public.pem" \
		AMQP_URL="$(daemon_amqp_url gateway)" \
		MEDIA_DIR="$MEDIA" \
		-- "$BIN/gateway"
}

gateway_ready() { http_ok "http://127.0.0.1:$HTTP_PORT/readyz"; }

wait_gateway_ready() {
	local started=$SECONDS
	until gateway_ready; do
		running gateway || fail_with_logs "gateway: exited before /readyz answered 200"
		((SECONDS - started < READY_TIMEOUT)) ||
			fail_with_logs "gateway: http://127.0.0.1:$HTTP_PORT/readyz did not answer 200 within ${READY_TIMEOUT}s"
		sleep 0.25
	done
	log "gateway: /readyz is 200 ($((SECONDS - started))s)"
}

daemons_up() {
	require_suite_bins
	local d
	while IFS= read -r d; do
		start_daemon "$d"
	done < <(daemon_names)
	start_gateway
	wait_gateway_ready
}

print_urls() {
	local d
	cat <<EOF

  API, HTTP/1.1 and h2c:  http://127.0.0.1:$HTTP_PORT
  API, HTTPS h2:          https://127.0.0.1:$HTTPS_PORT  (self-signed: $KEYS/tls.crt)
  RabbitMQ management:    http://127.0.0.1:$MGMT_PORT  (guest / guest)
  AMQP:                   $AMQP_URL
  MongoDB (FerretDB):     mongodb://127.0.0.1:$MONGO_PORT/
  Logs:                   $LOGDIR  (${0##*/} logs)
EOF
	[[ -z $S3_PORT ]] ||
		printf '  %-24shttp://127.0.0.1:%s/%s  (region %s)\n' "S3 (versitygw):" "$S3_PORT" "$S3_BUCKET" "$S3_REGION"
	[[ -z $SMTP_PORT ]] ||
		printf '  %-24ssmtp://127.0.0.1:%s  (messages in %s)\n' "SMTP (smtp-sink):" "$SMTP_PORT" "$MAILDIR"
	[[ -z $FCM_PORT ]] ||
		printf '  %-24shttp://127.0.0.1:%s  (credentials %s)\n' "FCM (fake):" "$FCM_PORT" "$KEYS/fcm-service-account.json"
	while IFS= read -r d; do
		printf '  %-24shttp://127.0.0.1:%s\n' "Admin of $d:" "$(admin_port "$d")"
	done < <(daemon_names)
	echo
}

# ---------------------------------------------------------------- commands

down() {
	local -a daemons=()
	local f name
	shopt -s nullglob
	for f in "$RUN"/*.pid; do
		name=${f##*/}
		name=${name%.pid}
		is_infra "$name" || daemons+=("$name")
	done
	shopt -u nullglob
	((${#daemons[@]} == 0)) || stop_procs "${daemons[@]}"
	stop_procs gateway
	# Optional: stopped when this var dir runs one, whatever STACK_S3_PORT says now.
	[[ ! -f $RUN/versitygw.pid ]] || stop_procs versitygw
	[[ ! -f $RUN/smtp-sink.pid ]] || stop_procs smtp-sink
	[[ ! -f $RUN/fcm-fake.pid ]] || stop_procs fcm-fake
	stop_procs ferretdb
	stop_procs rabbitmq
	stop_procs epmd
	log "down: nothing left running from $RUN"
}

start_one() {
	case $1 in
	epmd) start_epmd ;;
	rabbitmq) require_infra_bins && start_rabbitmq ;;
	ferretdb) require_infra_bins && start_ferretdb ;;
	versitygw) require_infra_bins && start_versitygw ;;
	smtp-sink) require_infra_bins && start_smtp_sink ;;
	fcm-fake) start_fcm_fake ;;
	gateway)
		start_gateway
		wait_for gateway 30 "its listener on port $HTTP_PORT" port_open "$HTTP_PORT"
		;;
	*)
		start_daemon "$1"
		local port
		port=$(admin_port "$1")
		wait_for "$1" 30 "its admin listener on port $port" port_open "$port"
		;;
	esac
}

status() {
	local f name pid any=0
	shopt -s nullglob
	for f in "$RUN"/*.pid; do
		any=1
		name=${f##*/}
		name=${name%.pid}
		if running "$name"; then
			printf '%-14s running (pid %s)\n' "$name" "$(pid_of "$name")"
		else
			printf '%-14s NOT running (stale pid file %s)\n' "$name" "$f"
		fi
	done
	shopt -u nullglob
	((any)) || echo "nothing started under $VAR"
}

logs() {
	shopt -s nullglob
	local -a files=("$LOGDIR"/*.log)
	shopt -u nullglob
	((${#files[@]} > 0)) || die "no logs in $LOGDIR"
	exec tail -n 20 -F "${files[@]}"
}

need_name() { [[ -n ${1:-} ]] || die "$2 needs a NAME (epmd, rabbitmq, ferretdb, versitygw, fcm-fake, smtp-sink, gateway or a daemon)"; }

main() {
	local cmd=${1:-}
	case $cmd in
	up)
		require_infra_bins
		require_suite_bins
		infra_up
		daemons_up
		print_urls
		;;
	infra-up) infra_up ;;
	daemons-up)
		daemons_up
		print_urls
		;;
	down) down ;;
	start)
		need_name "${2:-}" start
		start_one "$2"
		;;
	stop)
		need_name "${2:-}" stop
		stop_procs "$2"
		[[ $2 != rabbitmq ]] || ! port_open "$AMQP_PORT" || die "rabbitmq: port $AMQP_PORT still open after stop"
		;;
	kill9)
		need_name "${2:-}" kill9
		kill9_proc "$2"
		;;
	status) status ;;
	logs) logs ;;
	rabbitmqctl)
		shift
		rabbitmqctl_cmd "$@"
		;;
	-h | --help | help) usage ;;
	*)
		usage >&2
		exit 2
		;;
	esac
}

main "$@"
