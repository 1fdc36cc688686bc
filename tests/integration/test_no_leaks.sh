#!/usr/bin/env bash
# Orderly shutdown releases everything: under valgrind, a full run (guest exit, and a stop by
# SIGTERM with 2 vCPUs) ends with no leaked heap blocks and no open fds beyond stdio.
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest hello.elf
command -v valgrind >/dev/null || fail "valgrind is needed (scripts/dev.sh setup installs it)"
# The same program linked with the shared libraries: memcheck sees malloc and free only in a
# shared libc, and would find "no leaks" in the static kiln because it sees no heap at all.
KILN=${KILN_DYNAMIC:-$KILN}

check_valgrind_log() {
    grep -Eq "total heap usage: [1-9][0-9,]* allocs" "$1" ||
        fail "valgrind saw no heap blocks in $KILN (a static binary?): $(grep -m1 'heap usage' "$1")"
    expect_contains "$1" "All heap blocks were freed -- no leaks are possible"
    expect_contains "$1" "ERROR SUMMARY: 0 errors"
    # Descriptors the test harness handed down are not kiln's to close.
    local leaked
    leaked=$(awk '/Open file descriptor [0-9]+:/ { fd = $0; getline; if ($0 !~ /inherited from parent/) print fd }' "$1")
    [ -z "$leaked" ] || fail "file descriptors left open by kiln: $leaked"
    expect_contains "$1" "FILE DESCRIPTORS:"
}

# --seccomp off: valgrind runs kiln's code on its own and cannot apply seccomp filters to it.
VG=(valgrind --leak-check=full --track-fds=yes --error-exitcode=99)
status=0
"${VG[@]}" --log-file="$TEST_TMP/vg1" "$KILN" run --kernel "$GUEST_DIR/hello.elf" --seccomp off \
    </dev/null >"$TEST_TMP/out" 2>"$TEST_TMP/err" || status=$?
expect_status 0 "$(cat "$TEST_TMP/err")"
expect_contains "$TEST_TMP/out" "Hello from the kiln guest kit"
check_valgrind_log "$TEST_TMP/vg1"

require_guest serial-echo.elf
mkfifo "$TEST_TMP/in"
sleep 300 >"$TEST_TMP/in" &
holder=$!
track_pid "$holder"
"${VG[@]}" --log-file="$TEST_TMP/vg2" "$KILN" run --kernel "$GUEST_DIR/serial-echo.elf" --cpus 2 --seccomp off \
    <"$TEST_TMP/in" >"$TEST_TMP/out" 2>"$TEST_TMP/err" &
pid=$!
track_pid "$pid"
wait_for_text "$TEST_TMP/out" "serial-echo: ready" "$pid"
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
kill "$holder" 2>/dev/null || true
expect_status 143 "$(cat "$TEST_TMP/err")"
check_valgrind_log "$TEST_TMP/vg2"
echo "PASS"
