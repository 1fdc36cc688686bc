# shellcheck shell=bash
# Shared helpers for the integration tests: sourced, not run.
# Each test gets KILN, GUEST_DIR, SOURCE_DIR and BUILD_DIR from ctest.
set -u

: "${KILN:?KILN must point at the kiln binary}"
: "${GUEST_DIR:=}"
TEST_TMP=$(mktemp -d)
BACKGROUND_PIDS=()
# Whatever a test started in the background dies with it, pass or fail: no stray VMs.
cleanup() {
    local pid
    for pid in "${BACKGROUND_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null
    done
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$TEST_TMP"
}
trap cleanup EXIT

track_pid() {
    BACKGROUND_PIDS+=("$1")
}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

skip() {
    echo "SKIP: $*"
    exit 77
}

# Tests that start a VM call this first: where /dev/kvm is missing they skip loudly.
require_kvm() {
    [ -e "${KILN_KVM_DEVICE:-/dev/kvm}" ] || skip "no /dev/kvm"
}

require_guest() {
    [ -f "$GUEST_DIR/$1" ] || fail "guest kit binary $GUEST_DIR/$1 was not built"
}

# run_kiln OUTFILE ERRFILE ARGS...: runs kiln with a time limit, sets $status.
run_kiln() {
    local out=$1 err=$2
    shift 2
    status=0
    timeout --kill-after=10 "${KILN_TEST_TIMEOUT:-120}" "$KILN" "$@" >"$out" 2>"$err" </dev/null || status=$?
    [ "$status" -ne 124 ] || fail "kiln timed out: kiln $*; stderr: $(tail -5 "$err")"
}

expect_status() {
    [ "$status" -eq "$1" ] || fail "expected exit status $1, got $status${2:+ ($2)}"
}

expect_contains() {
    grep -qF -- "$2" "$1" || fail "expected '$2' in $1, got: $(head -c 2000 "$1")"
}

expect_not_contains() {
    ! grep -qF -- "$2" "$1" || fail "did not expect '$2' in $1: $(head -c 2000 "$1")"
}

expect_lines() {
    local n
    n=$(wc -l <"$1")
    [ "$n" -eq "$2" ] || fail "expected $2 line(s) in $1, got $n: $(head -c 2000 "$1")"
}

# wait_for_text FILE TEXT [PID]: waits up to 60 s for TEXT in FILE (a guest's console); fails
# the test, with the file's end, if it never comes or if kiln (PID, when given) ends first.
wait_for_text() {
    local _i
    for _i in $(seq 1 600); do
        grep -qsF -- "$2" "$1" && return 0
        [ -z "${3:-}" ] || kill -0 "$3" 2>/dev/null ||
            fail "kiln ended before '$2' appeared in $1: $(tail -c 1000 "$1")"
        sleep 0.1
    done
    fail "no '$2' in $1 within 60 s: $(tail -c 1000 "$1")"
}

# minimal_kernel: sets VMLINUX to the project's minimal kernel (scripts/build-minimal-kernel.sh:
# builds it the first time, else prints the cached path), falling back to the last cached one;
# skips when there is none and no root to build one.
minimal_kernel() {
    local cache=${KILN_CACHE_DIR:-$SOURCE_DIR/.cache}
    if VMLINUX=$(bash "$SOURCE_DIR/scripts/build-minimal-kernel.sh" 2>"$TEST_TMP/kernel.err" </dev/null); then
        grep -E 'up to date|done in' "$TEST_TMP/kernel.err" | tail -n 1
    elif [ -s "$cache/minimal-kernel/current/vmlinux" ]; then
        VMLINUX=$cache/minimal-kernel/current/vmlinux
        echo "WARNING: build-minimal-kernel.sh failed; using the last cached kernel $VMLINUX:"
        tail -n 5 "$TEST_TMP/kernel.err"
    elif [ "$(id -u)" -ne 0 ]; then
        tail -n 3 "$TEST_TMP/kernel.err"
        skip "no minimal kernel in $cache/minimal-kernel and no root to build one (run scripts/build-minimal-kernel.sh as root)"
    else
        fail "scripts/build-minimal-kernel.sh failed: $(tail -n 15 "$TEST_TMP/kernel.err")"
    fi
    [ -s "$VMLINUX" ] || fail "build-minimal-kernel.sh printed '$VMLINUX', which is not a file"
}

# Serial logs stamped with the seconds since kiln started, for the Linux boot tests:
# kiln ... > >(stamp_lines "$START" >"$SERIAL") &, then wait_stamped_boot PID.
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$((10#$t))"; } # microseconds, no `date` per line
seconds_since() { # seconds_since START_US -> "12.34"
    local d=$(($(now_us) - $1))
    printf '%d.%02d' $((d / 1000000)) $((d % 1000000 / 10000))
}
stamp_lines() { # stamp_lines START_US: "SECONDS<TAB>LINE" for each line of stdin
    local line
    while IFS= read -r line || [ -n "$line" ]; do
        printf '%s\t%s\n' "$(seconds_since "$1")" "${line%$'\r'}"
    done
}
# wait_stamped_boot PID: sets status (kiln's exit status) and WALL (seconds since $START), and
# writes the log's lines without stamps to $TEST_TMP/serial.txt.
wait_stamped_boot() {
    status=0
    wait "$1" || status=$?
    sleep 1 # let the time-stamping finish the last lines
    # shellcheck disable=SC2034 # WALL is for the calling test
    WALL=$(seconds_since "$START")
    cut -f2- "$SERIAL" >"$TEST_TMP/serial.txt"
}
