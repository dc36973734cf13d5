#!/usr/bin/env bash
# Run a local Kafka-compatible broker on 127.0.0.1:9092 (BROKER_PORT to move it): Tansu, or
# the development broker that comes with this workspace.
#
#   scripts/broker.sh start [--broker tansu|dev] [--storage memory|sqlite]
#                                             start it (idempotent), wait until it answers
#   scripts/broker.sh stop                    stop the broker this script started
#   scripts/broker.sh status                  say whether a broker answers, exit 0 if so
#   scripts/broker.sh kind                    print tansu or dev: the broker started here
#   scripts/broker.sh install                 install Tansu if no usable binary is found
#
# Tansu is the default (installed from crates.io on first use). Memory storage is its
# default; `--storage sqlite` keeps topics and offsets in .run/tansu.db across restarts.
# `--broker dev` starts crates/devbroker instead: librdkafka's mock cluster, built with the
# workspace, which keeps records in memory only (lost when it stops), creates the pipeline's
# topics at start and does not serve CreateTopics. With KAFKA_BOOTSTRAP set to another
# address, nothing is started: the processes use that cluster. TANSU=/path/to/tansu picks a
# binary.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PID_FILE="$RUN_DIR/broker.pid"
# Which broker the pid belongs to: tansu or dev.
KIND_FILE="$RUN_DIR/broker.kind"
LOG_FILE="$RUN_DIR/broker.log"
TANSU_VERSION="0.6.0"

find_tansu() {
    local candidate
    for candidate in "${TANSU:-}" "$(command -v tansu 2>/dev/null || true)" "$HOME/.cargo/bin/tansu"; do
        [ -n "$candidate" ] && [ -x "$candidate" ] || continue
        # Usable = it runs and knows the broker command (a broken or foreign binary does not).
        if "$candidate" broker --help >/dev/null 2>&1; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

install_tansu() {
    if find_tansu >/dev/null; then return 0; fi
    log "Tansu not found: installing it from crates.io (once; about 15-20 minutes on two cores)"
    cargo install --locked tansu --version "$TANSU_VERSION" --features dynostore,libsql \
        || die "cargo install tansu failed"
    find_tansu >/dev/null || die "tansu installed but not runnable"
}

our_pid() {
    [ -f "$PID_FILE" ] || return 1
    local pid
    pid=$(cat "$PID_FILE")
    kill -0 "$pid" 2>/dev/null || return 1
    printf '%s\n' "$pid"
}

start() {
    local storage="" broker=tansu
    while [ $# -gt 0 ]; do
        case "$1" in
            --storage) storage=${2:?--storage needs memory or sqlite}; shift 2 ;;
            --storage=*) storage=${1#*=}; shift ;;
            --broker) broker=${2:?--broker needs tansu or dev}; shift 2 ;;
            --broker=*) broker=${1#*=}; shift ;;
            *) die "unknown option $1" ;;
        esac
    done
    case "$broker" in
        tansu) storage=${storage:-memory} ;;
        dev) [ -z "$storage" ] || die "--storage is Tansu's: the development broker keeps records in memory only" ;;
        *) die "--broker must be tansu or dev, not $broker" ;;
    esac
    if external_cluster; then
        log "KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP: using that cluster, no local broker started"
        return 0
    fi
    if our_pid >/dev/null && broker_answers "$LOCAL_BROKER"; then
        log "broker already running (pid $(our_pid), $(cat "$KIND_FILE" 2>/dev/null || echo tansu)) on $LOCAL_BROKER"
        return 0
    fi
    if broker_answers "$LOCAL_BROKER"; then
        log "a broker already answers on $LOCAL_BROKER (not started by this script); using it"
        return 0
    fi
    if [ "$broker" = dev ]; then
        start_dev
        return 0
    fi
    local engine
    case "$storage" in
        memory) engine="memory://tansu/" ;;
        sqlite) engine="sqlite://tansu.db" ;; # relative to the broker's working directory, .run/
        *) die "--storage must be memory or sqlite, not $storage" ;;
    esac
    install_tansu
    local tansu
    tansu=$(find_tansu)
    mkdir -p "$RUN_DIR"
    log "starting Tansu ($storage storage) on $LOCAL_BROKER, log in $LOG_FILE"
    (
        cd "$RUN_DIR"
        # setsid: the broker gets its own session, so a Ctrl-C meant for a caller doesn't reach it
        # and `stop` can end the whole group.
        RUST_LOG="${TANSU_LOG:-warn}" exec setsid "$tansu" broker \
            --listener-url "tcp://$LOCAL_BROKER" \
            --advertised-listener-url "tcp://$LOCAL_BROKER" \
            --storage-engine "$engine" >>"$LOG_FILE" 2>&1 </dev/null
    ) &
    echo $! >"$PID_FILE"
    echo tansu >"$KIND_FILE"
    local deadline=$((SECONDS + 60))
    until broker_answers "$LOCAL_BROKER"; do
        if ! our_pid >/dev/null; then
            tail -n 20 "$LOG_FILE" >&2 || true
            rm -f "$PID_FILE"
            die "the broker exited at start (see $LOG_FILE)"
        fi
        [ $SECONDS -lt $deadline ] || die "the broker did not answer within 60 s (see $LOG_FILE)"
        sleep 0.2
    done
    log "broker ready on $LOCAL_BROKER (pid $(cat "$PID_FILE"))"
}

# The development broker (crates/devbroker), built if needed, on $LOCAL_BROKER; it creates
# the pipeline's topics and says so, and its ready line names the address it answers on.
start_dev() {
    [ -n "${NO_BUILD:-}" ] || build_release devbroker
    local devbroker
    devbroker=$(bin devbroker)
    [ -x "$devbroker" ] || die "$devbroker is not built (cargo build --release -p devbroker)"
    mkdir -p "$RUN_DIR"
    : >"$LOG_FILE" # a fresh log: the ready line below is this start's
    (
        cd "$RUN_DIR"
        # setsid: as for Tansu, a Ctrl-C meant for a caller doesn't reach it.
        RUST_LOG="${DEVBROKER_LOG:-info}" exec setsid "$devbroker" --listen "$LOCAL_BROKER" \
            >>"$LOG_FILE" 2>&1 </dev/null
    ) &
    echo $! >"$PID_FILE"
    echo dev >"$KIND_FILE"
    local deadline=$((SECONDS + 30))
    until [ -n "$(devbroker_address "$LOG_FILE")" ]; do
        if ! our_pid >/dev/null; then
            tail -n 20 "$LOG_FILE" >&2 || true
            rm -f "$PID_FILE" "$KIND_FILE"
            die "the development broker exited at start (see $LOG_FILE)"
        fi
        [ $SECONDS -lt $deadline ] || die "the development broker was not ready within 30 s (see $LOG_FILE)"
        sleep 0.1
    done
    log "$(grep -m 1 '^devbroker: listening on' "$LOG_FILE") (pid $(cat "$PID_FILE"))"
}

# tansu or dev: the broker this script started and that still runs; fails if none.
kind() {
    our_pid >/dev/null && [ -f "$KIND_FILE" ] && cat "$KIND_FILE"
}

stop() {
    local pid
    if ! pid=$(our_pid); then
        rm -f "$PID_FILE" "$KIND_FILE"
        log "no broker started by this script is running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then
            log "broker did not stop within 15 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        sleep 0.2
    done
    rm -f "$PID_FILE" "$KIND_FILE"
    log "broker stopped"
}

status() {
    local address
    address=$(bootstrap)
    if [[ "$address" == *,* ]] || external_cluster; then
        log "using KAFKA_BOOTSTRAP=$address (not probed: it may need TLS or SASL)"
        return 0
    fi
    if broker_answers "$address"; then
        if pid=$(our_pid); then log "broker running on $address (pid $pid)"; else log "a broker answers on $address"; fi
        return 0
    fi
    log "no broker answers on $address"
    return 1
}

case "${1:-}" in
    start) shift; start "$@" ;;
    stop) stop ;;
    status) status ;;
    kind) kind ;;
    install) install_tansu; log "tansu: $(find_tansu)" ;;
    *) echo "usage: $0 start [--broker tansu|dev] [--storage memory|sqlite] | stop | status | kind | install" >&2; exit 2 ;;
esac
