# Shared helpers for the scripts in this folder; sourced, never run.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="${RUN_DIR:-$ROOT/.run}"
# BROKER_PORT moves the local broker (tests run a second one beside the usual 9092).
LOCAL_BROKER="127.0.0.1:${BROKER_PORT:-9092}"
export RUST_LOG="${RUST_LOG:-info}"

log() { printf '%s %s\n' "[$(date +%H:%M:%S)]" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Where the processes connect: the cluster named by KAFKA_BOOTSTRAP, or the local broker.
bootstrap() { printf '%s\n' "${KAFKA_BOOTSTRAP:-$LOCAL_BROKER}"; }

# True when the user pointed us at a cluster of their own: then no script starts a broker.
external_cluster() { [ -n "${KAFKA_BOOTSTRAP:-}" ] && [ "${KAFKA_BOOTSTRAP}" != "$LOCAL_BROKER" ]; }

# Ask HOST:PORT for cluster metadata (Kafka Metadata v4 request, all topics) over plain TCP
# and check that the answer carries our correlation id. Needs nothing but bash.
broker_answers() {
    local host=${1%:*} port=${1##*:}
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        # size=20 | api_key=3 (Metadata) | version=4 | correlation=42 | client "probe" | all topics | no auto-create
        printf "\x00\x00\x00\x14\x00\x03\x00\x04\x00\x00\x00\x2a\x00\x05probe\xff\xff\xff\xff\x00" >&3
        reply=$(head -c 8 <&3 | od -An -tx1 | tr -d " \n")
        [ "${reply:8:8}" = "0000002a" ]
    ' "$host" "$port" 2>/dev/null
}

# Binaries of this workspace, in release mode unless BUILD_PROFILE names another cargo
# profile: debug (the tests use the debug build they already have) or demo (the demo's
# quicker first build, see Cargo.toml). cargo skips up-to-date work. `build_release
# PACKAGE...` builds only those packages' binaries; with no argument, every binary of the
# workspace.
BUILD_PROFILE="${BUILD_PROFILE:-release}"
# shellcheck disable=SC2120 # the packages come from the scripts that source this file
build_release() {
    local flags=(--bins --quiet) package
    if [ $# -eq 0 ]; then flags+=(--workspace); fi
    for package in "$@"; do flags+=(-p "$package"); done
    # cargo calls the debug build's profile `dev`; the others go by their folder's name.
    [ "$BUILD_PROFILE" = debug ] || flags+=(--profile "$BUILD_PROFILE")
    (cd "$ROOT" && cargo build "${flags[@]}") || die "cargo build failed"
}
bin() { printf '%s\n' "${CARGO_TARGET_DIR:-$ROOT/target}/$BUILD_PROFILE/$1"; }

# Build (a no-op when up to date; NO_BUILD=1 skips it), then replace this shell with the named
# process, connected to bootstrap().
run_process() {
    local name=$1
    shift
    [ -n "${NO_BUILD:-}" ] || build_release
    export KAFKA_BOOTSTRAP
    KAFKA_BOOTSTRAP=$(bootstrap)
    cd "$ROOT"
    exec "$(bin "$name")" "$@"
}

# The address in the development broker's ready line (crates/devbroker) written to FILE, once
# it is there: `devbroker: listening on HOST:PORT (development broker: ...)`.
devbroker_address() { sed -n 's/^devbroker: listening on \([^ ]*\) .*/\1/p' "$1" | head -n 1; }
