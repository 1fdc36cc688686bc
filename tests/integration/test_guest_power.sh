#!/usr/bin/env bash
# power.elf: ACPI power-off and reset through the FADT's registers, and SIGTERM as a power
# button press (GED, GSI 9) that a guest answers, ignores past --shutdown-grace, or gets twice.
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest power.elf
G="$GUEST_DIR/power.elf"

context() {
    echo "guest output: $(head -c 2000 "$TEST_TMP/out"); stderr: $(tail -5 "$TEST_TMP/err")"
}

# start_kiln ARGS...: kiln in the background (its own PID in $pid, so signals reach it and
# nothing else), guest output in $TEST_TMP/out, stderr in $TEST_TMP/err.
start_kiln() {
    : >"$TEST_TMP/out"
    "$KILN" "$@" </dev/null >"$TEST_TMP/out" 2>"$TEST_TMP/err" &
    pid=$!
    track_pid "$pid"
}

# wait_for_output TEXT: until the guest printed TEXT (at most 60 s).
wait_for_output() {
    for _ in $(seq 1 600); do
        grep -qF -- "$1" "$TEST_TMP/out" && return 0
        kill -0 "$pid" 2>/dev/null || fail "kiln exited before the guest printed '$1'; $(context)"
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    fail "the guest did not print '$1' within 60 s; $(context)"
}

# wait_kiln SECONDS: waits for the background kiln, sets $status and $elapsed (wall time since
# the last mark_signal, in tenths of a second); kills it and fails if it is still running
# SECONDS after that.
mark_signal() {
    signalled_ns=$(date +%s%N)
}

wait_kiln() {
    local deadline=$((signalled_ns + $1 * 1000000000))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$(date +%s%N)" -gt "$deadline" ]; then
            kill -KILL "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
            fail "kiln still running ${1} s after the signal; $(context)"
        fi
        sleep 0.05
    done
    status=0
    wait "$pid" || status=$?
    elapsed=$((($(date +%s%N) - signalled_ns) / 100000000))
}

# Power off: SLP_TYP 5 with SLP_EN in SLEEP_CONTROL_REG, which the FADT puts at I/O port 0x600.
run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$G" --cmdline mode=poweroff --log-level info
expect_status 0 "mode=poweroff; $(context)"
expect_contains "$TEST_TMP/out" "power: SLEEP_CONTROL_REG is SystemIO 0x600, 8 bits"
expect_contains "$TEST_TMP/out" "power: powering off: writing 0x34 (SLP_TYP 5, SLP_EN)"
expect_contains "$TEST_TMP/err" "guest powered off"
expect_not_contains "$TEST_TMP/out" "still running"

# Reset: RESET_VALUE to RESET_REG (port 0x602).
run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$G" --cmdline mode=acpi-reset
expect_status 123 "mode=acpi-reset; $(context)"
expect_contains "$TEST_TMP/out" "power: RESET_REG is SystemIO 0x602, 8 bits"
expect_contains "$TEST_TMP/out" "power: resetting: writing RESET_VALUE 0x1"
expect_contains "$TEST_TMP/err" "guest reset (ACPI reset register)"

# SIGTERM presses the power button; a guest that handles it powers off and kiln exits 0.
start_kiln run --kernel "$G" --cmdline mode=wait-power-button --log-level info
wait_for_output "power: waiting for the power button"
mark_signal
kill -TERM "$pid"
wait_kiln 30
expect_status 0 "wait-power-button after SIGTERM; $(context)"
expect_contains "$TEST_TMP/out" "power: power button pressed"
expect_contains "$TEST_TMP/err" "guest powered off"

# A guest that ignores the button is stopped when the grace period ends: 143, after about
# --shutdown-grace seconds, not at once and not much later.
start_kiln run --kernel "$G" --cmdline mode=ignore-power-button --shutdown-grace 1
wait_for_output "power: waiting for the power button"
mark_signal
kill -TERM "$pid"
wait_kiln 10
expect_status 143 "ignore-power-button, --shutdown-grace 1; $(context)"
expect_contains "$TEST_TMP/err" "kiln: stopped by SIGTERM"
[ "$elapsed" -ge 9 ] || fail "kiln stopped 0.$elapsed s after SIGTERM, before the 1 s grace period ended"
[ "$elapsed" -le 40 ] || fail "kiln took $elapsed tenths of a second to stop after a 1 s grace period"

# A second SIGTERM stops at once, well inside the default 5 s grace period.
start_kiln run --kernel "$G" --cmdline mode=ignore-power-button
wait_for_output "power: waiting for the power button"
kill -TERM "$pid"
sleep 0.3
mark_signal
kill -TERM "$pid" 2>/dev/null
wait_kiln 10
expect_status 143 "ignore-power-button, two SIGTERMs; $(context)"
[ "$elapsed" -le 20 ] ||
    fail "kiln took $elapsed tenths of a second to stop after the second SIGTERM (grace is 5 s)"
echo "PASS"
