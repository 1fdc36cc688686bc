#!/usr/bin/env bash
# kiln's reaction to a misbehaving guest: unclaimed port/MMIO accesses read all-ones (and are
# logged once), i8042 reset, a jump to the reset vector and triple fault end the VM as "guest
# reset" (status 123), and an exit kiln cannot handle stops it with RIP, exit reason and
# instruction bytes (status 126).
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest misbehave.elf
G="$GUEST_DIR/misbehave.elf"

run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$G" --cmdline mode=unclaimed-io --log-level info
expect_status 0 "$(cat "$TEST_TMP/out")"
expect_contains "$TEST_TMP/err" "port I/O bus: 1-byte read at 0x2f8 hits no device"
expect_contains "$TEST_TMP/err" "MMIO bus: 4-byte read at 0xd0000000 hits no device"
[ "$(grep -c 'hits no device' "$TEST_TMP/err")" -eq 2 ] || fail "unknown accesses logged more than once per bus"

run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$G" --cmdline mode=i8042-reset
expect_status 123
expect_lines "$TEST_TMP/err" 1
expect_contains "$TEST_TMP/err" "kiln: guest reset (i8042 reset command)"

# A guest jumping to the reset vector (Linux's BIOS reboot) finds kiln's stub there: a reset,
# not a run through zeroed memory that never ends.
run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$G" --cmdline mode=reset-vector
expect_status 123 "$(cat "$TEST_TMP/out" "$TEST_TMP/err")"
expect_contains "$TEST_TMP/out" "misbehave: jumping to the reset vector"
expect_contains "$TEST_TMP/err" "kiln: guest reset (i8042 reset command)"

run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$G" --cmdline mode=triple-fault
expect_status 123
expect_contains "$TEST_TMP/err" "kiln: guest reset (triple fault"

# int3 at ring 0 reaches the guest's own #BP handler (status 99): natively with hardware
# virtualisation, through kiln's host-compat #BP injection where ring 0 is emulated.
run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$G" --cmdline mode=int3
expect_status 99 "$(cat "$TEST_TMP/out" "$TEST_TMP/err")"
expect_contains "$TEST_TMP/out" "exception 3"

# Without host-compat, on hosts that emulate ring 0 KVM cannot run it and kiln must stop with a
# diagnostic (RIP, exit reason, instruction bytes).
run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$G" --cmdline mode=int3 --host-compat off
if [ "$status" -eq 126 ]; then
    expect_lines "$TEST_TMP/err" 1
    expect_contains "$TEST_TMP/err" "kiln: error: vCPU 0 stopped: KVM_EXIT_INTERNAL_ERROR"
    expect_contains "$TEST_TMP/err" "emulation failure) at RIP 0x"
    expect_contains "$TEST_TMP/err" "instruction bytes: cc"
else
    expect_status 99 "guest's exception handler"
fi
echo "PASS"
