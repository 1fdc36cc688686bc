#!/bin/bash
# Boots the guest kit under QEMU's microvm, a PVH peer of kiln: if a guest misbehaves here
# too, the bug is in the guest kit, not in kiln. Skips without QEMU or /dev/kvm.
. "$SOURCE_DIR/tests/integration/lib.sh"

command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "qemu-system-x86_64 not installed"
require_kvm
for guest in hello.elf exit-status.elf serial-echo.elf; do
    require_guest "$guest"
done

# isa-debug-exit turns the guest's test-exit write of S into QEMU exit status (S << 1) | 1,
# so an even status (0 after a triple fault with -no-reboot) means the guest never got there.
QEMU_ARGS=(-M microvm -enable-kvm -cpu host,-arch-capabilities -nodefaults -no-reboot
    -display none -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=4)

# run_qemu OUTFILE INFILE ARGS...: serial output to OUTFILE, QEMU's stderr to OUTFILE.err.
run_qemu() {
    local out=$1 in=$2
    shift 2
    status=0
    timeout --kill-after=10 "${KILN_TEST_TIMEOUT:-60}" qemu-system-x86_64 "${QEMU_ARGS[@]}" "$@" \
        <"$in" >"$out" 2>"$out.err" || status=$?
    [ "$status" -ne 124 ] || fail "qemu timed out: $*; serial: $(head -c 500 "$out"); stderr: $(tail -5 "$out.err")"
}

expect_exact() {
    printf '%b' "$2" >"$TEST_TMP/expected"
    cmp -s "$TEST_TMP/expected" "$1" || fail "expected exactly '$2' in $1, got: $(od -c "$1" | head -20)"
}

run_qemu "$TEST_TMP/hello.out" /dev/null -kernel "$GUEST_DIR/hello.elf"
expect_status 1 "hello.elf exits 0 -> (0 << 1) | 1; stderr: $(tail -3 "$TEST_TMP/hello.out.err")"
expect_exact "$TEST_TMP/hello.out" 'Hello from the kiln guest kit\n'

run_qemu "$TEST_TMP/status3.out" /dev/null -kernel "$GUEST_DIR/exit-status.elf" -append status=3
expect_status 7 "exit-status.elf status=3 -> (3 << 1) | 1"
expect_contains "$TEST_TMP/status3.out" "exit-status: exiting with status 3"

run_qemu "$TEST_TMP/status-hex.out" /dev/null -kernel "$GUEST_DIR/exit-status.elf" \
    -append "console=ttyS0 status=0x10 quiet"
expect_status 33 "exit-status.elf status=0x10 among other words -> (16 << 1) | 1"

run_qemu "$TEST_TMP/status-missing.out" /dev/null -kernel "$GUEST_DIR/exit-status.elf"
expect_status 3 "exit-status.elf with no status= exits 1 -> 3"
expect_contains "$TEST_TMP/status-missing.out" "missing or invalid status=N"

# exit_port= moves the exit write; with the device moved too, the status still arrives.
QEMU_ARGS=("${QEMU_ARGS[@]/iobase=0xf4/iobase=0x501}")
run_qemu "$TEST_TMP/port.out" /dev/null -kernel "$GUEST_DIR/exit-status.elf" \
    -append "status=5 exit_port=0x501"
expect_status 11 "exit-status.elf status=5 exit_port=0x501 -> (5 << 1) | 1"
QEMU_ARGS=("${QEMU_ARGS[@]/iobase=0x501/iobase=0xf4}")

# The input is all there before the guest starts: the kit's serial_init must not drop it.
printf 'abc\ndefq' >"$TEST_TMP/echo.in"
run_qemu "$TEST_TMP/echo.out" "$TEST_TMP/echo.in" -kernel "$GUEST_DIR/serial-echo.elf"
expect_status 1 "serial-echo.elf exits 0 after 'q'"
expect_exact "$TEST_TMP/echo.out" 'serial-echo: ready\nabc\ndef\nserial-echo: bye\n'

echo "PASS: guest kit under QEMU microvm"
