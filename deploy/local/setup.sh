#!/usr/bin/env bash
# deploy/local/setup.sh -- idempotent installer of what builds and runs the suite locally (apt packages, FerretDB, versitygw, Python venv); run by `make deps`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS=$ROOT/tools
STAMPS=$TOOLS/stamps
VENV=$ROOT/.venv

APT_PACKAGES=(
	build-essential pkg-config librabbitmq-dev amqp-tools libmongoc-dev libbson-dev
	libh2o-evloop-dev libjwt-dev libvips-dev libglib2.0-dev libcurl4-openssl-dev libcjson-dev
	libsodium-dev uuid-dev libsqlite3-dev rabbitmq-server libcriterion-dev
	nghttp2-client wrk hyperfine clang-format openssl curl python3-venv
	# deploy/local/stack.sh: the broker definitions with their local passwords
	jq
	# tests/fuzz: libFuzzer
	clang libclang-rt-14-dev
	# bench/media: GNU time for peak RSS, ImageMagick (WebP is a hard dependency) as the reference
	time imagemagick
	# tests/deploy: docker-compose.yaml validated offline (`docker-compose config -q`; no engine runs here)
	docker-compose
)
# Wanted, but the setup goes on without them (with a warning) if apt cannot install them.
APT_OPTIONAL=()

FERRETDB_MODULE=github.com/FerretDB/FerretDB
FERRETDB_VERSION=v1.24.2

# The S3-compatible server the object store's tests run against (posix backend).
VERSITYGW_MODULE=github.com/versity/versitygw
VERSITYGW_VERSION=v1.8.0

# botocore: tests/deploy checks the ECS and Application Auto Scaling files against AWS's own API models.
PIP_PACKAGES=(pytest 'httpx[http2]' 'pyjwt[crypto]' pyyaml jsonschema pillow pillow-heif botocore)

log() { printf 'setup: %s\n' "$*"; }
warn() { printf 'setup: WARNING: %s\n' "$*" >&2; }
die() {
	printf 'setup: ERROR: %s\n' "$*" >&2
	exit 1
}

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root to run '$*' (not root and no sudo)"
	fi
}

# Prints the packages among the arguments that dpkg does not report as installed.
missing_packages() {
	local installed
	installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "$@" 2>/dev/null | awk '$2 == "ii" { print $1 }' || true)
	local p
	for p in "$@"; do
		grep -qxF "$p" <<<"$installed" || printf '%s\n' "$p"
	done
}

# apt-get as root, non-interactive, its output appended to tools/apt.log.
apt_quiet() {
	as_root env DEBIAN_FRONTEND=noninteractive apt-get -y -q "$@" >>"$TOOLS/apt.log" 2>&1
}

step_apt() {
	local -a missing optional
	mapfile -t missing < <(missing_packages "${APT_PACKAGES[@]}")
	mapfile -t optional < <(missing_packages "${APT_OPTIONAL[@]}")

	# An optional package that apt could not install last time is not retried on every run
	# (that would mean an apt-get update each time); delete the stamp to retry.
	local optional_stamp=$STAMPS/apt-optional-unavailable
	if ((${#missing[@]} == 0 && ${#optional[@]} > 0)) && [[ -f $optional_stamp ]] &&
		[[ $(cat "$optional_stamp") == "${optional[*]}" ]]; then
		warn "apt: not installed (unavailable earlier; rm $optional_stamp to retry): ${optional[*]}"
		optional=()
	fi

	if ((${#missing[@]} == 0 && ${#optional[@]} == 0)); then
		log "apt packages: all ${#APT_PACKAGES[@]} installed"
		return
	fi

	local apt_log=$TOOLS/apt.log
	mkdir -p "$TOOLS"
	: >"$apt_log"
	log "apt packages: installing ${missing[*]} ${optional[*]} (output in $apt_log)"
	apt_quiet update || die "apt-get update failed; see $apt_log"
	if ((${#missing[@]} > 0)); then
		apt_quiet install --no-install-recommends "${missing[@]}" ||
			die "apt-get install failed for ${missing[*]}: $(tail -n 5 "$apt_log")"
	fi
	if ((${#optional[@]} > 0)); then
		if apt_quiet install --no-install-recommends "${optional[@]}"; then
			rm -f "$optional_stamp"
		else
			warn "apt: could not install optional ${optional[*]}; going on without"
			mkdir -p "$STAMPS"
			printf '%s\n' "${optional[*]}" >"$optional_stamp"
		fi
	fi
	log "apt packages: done"
}

find_go() {
	if command -v go >/dev/null 2>&1; then
		command -v go
	elif [[ -x /usr/local/go/bin/go ]]; then
		echo /usr/local/go/bin/go
	else
		return 1
	fi
}

# True when tools/bin/ferretdb runs and reports FerretDB $FERRETDB_VERSION.
ferretdb_ok() {
	local bin=$TOOLS/bin/ferretdb out
	[[ -x $bin ]] || return 1
	out=$("$bin" --version 2>/dev/null) || return 1
	grep -qxF "version: $FERRETDB_VERSION" <<<"$out" && [[ -f $TOOLS/ferretdb-build/$(ferretdb_patched_mark) ]]
}

# Builds FerretDB from a copy of its module source with build/version/version.txt filled in.
# Neither `go install .../cmd/ferretdb@v1.24.2` nor `go get` + `go install` in a scratch module
# gives a binary that runs: both record FerretDB as the main module, and then its version
# package panics at init because the module zip has no build/version/version.txt.
build_ferretdb() {
	local go=$1 build=$TOOLS/ferretdb-build dir
	mkdir -p "$build"
	dir=$(cd "$build" && GOFLAGS='' "$go" mod download -json "$FERRETDB_MODULE@$FERRETDB_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p') || return 1
	[[ -n $dir && -d $dir ]] || return 1
	if [[ -d $build/src ]]; then
		chmod -R u+w "$build/src"
		rm -rf "$build/src"
	fi
	cp -R "$dir" "$build/src"
	chmod -R u+w "$build/src"
	printf '%s\n' "$FERRETDB_VERSION" >"$build/src/build/version/version.txt"
	ferretdb_patch_id_lookup "$build/src" || return 1
	local p
	for p in "$FERRETDB_PATCHES"/*.patch; do
		patch -d "$build/src" -p1 --forward --batch <"$p" || return 1
	done
	(cd "$build/src" && GOFLAGS=-buildvcs=false GOBIN="$TOOLS/bin" "$go" install -trimpath ./cmd/ferretdb)
	rm -f "$build"/patched-*
	touch "$build/$(ferretdb_patched_mark)"
}

# FerretDB 1.24's SQLite backend looks a document up by `_ferretdb_sjson->'$._id'`, but makes the
# _id index on `_ferretdb_sjson->"_id"`; SQLite uses an expression index only for the expression
# as written, so every {_id: x} lookup (the only filter FerretDB hands to SQLite) scanned the
# whole table: a post read took 155 ms with 4,600 posts stored. Written as the index is, the
# lookup is an index search. Nothing else changes: both spell the same JSON path.
# Our other changes to FerretDB are patches in deploy/local/ferretdb/ (each says why). The build
# is marked with a digest of them, so a binary built without the current set is built again.
FERRETDB_PATCHES=$ROOT/deploy/local/ferretdb
ferretdb_patched_mark() {
	printf 'patched-id-lookup-%s\n' "$(cat "$FERRETDB_PATCHES"/*.patch | sha256sum | cut -c1-12)"
}
ferretdb_patch_id_lookup() {
	local f=$1/internal/backends/sqlite/metadata/metadata.go
	grep -qF "IDColumn = DefaultColumn + \"->'\$._id'\"" "$f" || return 1
	sed -i "s|IDColumn = DefaultColumn + \"->'\\\$._id'\"|IDColumn = DefaultColumn + \"->'_id'\"|" "$f"
	grep -qF "IDColumn = DefaultColumn + \"->'_id'\"" "$f"
}

# go_tool NAME VERSION SECONDS: makes sure tools/bin/NAME is VERSION (NAME_ok), else builds it
# with build_NAME (a Go program: Go must be on the machine), logging to tools/NAME-build.log.
go_tool() {
	local name=$1 version=$2 seconds=$3 go
	if "${name}_ok"; then
		log "$name $version: present ($TOOLS/bin/$name)"
		return
	fi
	go=$(find_go) || die "$name: Go is needed to build $name $version and was not found"
	log "$name $version: building into $TOOLS/bin (about $seconds s)"
	mkdir -p "$TOOLS/bin"
	rm -f "$TOOLS/bin/$name"
	local build_log=$TOOLS/$name-build.log
	"build_$name" "$go" >"$build_log" 2>&1 ||
		die "$name: build failed (full output in $build_log): $(tail -n 5 "$build_log")"
	"${name}_ok" || die "$name: $TOOLS/bin/$name was built but does not run as $version"
	log "$name $version: built"
}

step_ferretdb() { go_tool ferretdb "$FERRETDB_VERSION" 90; }

# True when tools/bin/versitygw runs and reports versitygw $VERSITYGW_VERSION.
versitygw_ok() {
	local bin=$TOOLS/bin/versitygw out
	[[ -x $bin ]] || return 1
	out=$("$bin" --version 2>/dev/null) || return 1
	grep -qxF "Version  : $VERSITYGW_VERSION" <<<"$out"
}

# A plain `go install` leaves the version that `versitygw --version` prints at "git" (upstream's
# Makefile sets it with -X); we stamp it the same way, so versitygw_ok can check it.
build_versitygw() {
	local go=$1
	GOFLAGS=-buildvcs=false GOBIN="$TOOLS/bin" "$go" install -trimpath \
		-ldflags "-X=main.Version=$VERSITYGW_VERSION" "$VERSITYGW_MODULE/cmd/versitygw@$VERSITYGW_VERSION"
}

step_versitygw() { go_tool versitygw "$VERSITYGW_VERSION" 100; }

step_venv() {
	local stamp=$STAMPS/venv want
	want="$(python3 --version 2>&1) ${PIP_PACKAGES[*]}"
	if [[ -x $VENV/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then
		log "python venv: up to date ($VENV)"
		return
	fi
	log "python venv: installing ${PIP_PACKAGES[*]} into $VENV"
	[[ -x $VENV/bin/python ]] || python3 -m venv "$VENV" || die "python venv: python3 -m venv failed"
	"$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}" ||
		die "python venv: pip install failed"
	mkdir -p "$STAMPS"
	printf '%s\n' "$want" >"$stamp"
	log "python venv: done"
}

# `setup.sh versitygw` runs that one step (the others: `setup.sh apt`, ...); no argument, all.
if (($# > 0)); then
	for step in "$@"; do
		case $step in
		apt | ferretdb | versitygw | venv) "step_$step" ;;
		*) die "unknown step '$step' (apt, ferretdb, versitygw, venv)" ;;
		esac
	done
	exit 0
fi

step_apt
step_ferretdb
step_versitygw
step_venv
