#!/bin/bash
# Boots the guest kit under QEMU's microvm, a PVH peer of kiln: if a guest misbehaves here
# too, the bug is in the guest kit, not in kiln. Skips without QEMU or /dev/kvm.
. "$SOURCE_DIR/tests/integration/lib.sh"

command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "qemu-system-x86_64 not installed"
require_kvm
for guest in hello.elf hello32.elf exit-status.elf serial-echo.elf; do
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

# The same guest as a 32-bit PVH ELF (kiln's run is in tests/kiln-test/guestkit.yaml).
run_qemu "$TEST_TMP/hello32.out" /dev/null -kernel "$GUEST_DIR/hello32.elf"
expect_status 1 "hello32.elf exits 0 -> (0 << 1) | 1; stderr: $(tail -3 "$TEST_TMP/hello32.out.err")"
expect_exact "$TEST_TMP/hello32.out" 'Hello from the kiln guest kit\n'

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

# The platform guests against microvm's ACPI tables (MADT, FADT), CMOS RTC and Generic Event
# Device: the same binaries kiln's test_guest_{smp,power,rtc}.sh run. microvm's FADT names
# memory-mapped GED registers (reset value 0x42) where kiln's names I/O ports, so only the
# outcomes are compared. QEMU exits 0 when the guest powers off, and on a reset (-no-reboot).
for guest in smp.elf power.elf rtc.elf; do
    require_guest "$guest"
done
QEMU_ARGS=("${QEMU_ARGS[@]/#microvm/microvm,acpi=on,rtc=on}")

run_qemu "$TEST_TMP/smp.out" /dev/null -smp 4 -kernel "$GUEST_DIR/smp.elf"
expect_status 1 "smp.elf -smp 4 exits 0; serial: $(head -c 1000 "$TEST_TMP/smp.out")"
for id in 0 1 2 3; do
    [ "$(grep -cx "smp: cpu $id up" "$TEST_TMP/smp.out")" -eq 1 ] ||
        fail "smp.elf -smp 4: expected 'smp: cpu $id up' once: $(cat "$TEST_TMP/smp.out")"
done
expect_contains "$TEST_TMP/smp.out" "smp: all 4 cpus up"

before=$(date -u +%s)
run_qemu "$TEST_TMP/rtc.out" /dev/null -kernel "$GUEST_DIR/rtc.elf"
after=$(date -u +%s)
expect_status 1 "rtc.elf exits 0; serial: $(head -c 1000 "$TEST_TMP/rtc.out")"
stamp=$(sed -n 's/^rtc: \([0-9-]* [0-9:]*\) UTC$/\1/p' "$TEST_TMP/rtc.out")
guest=$(date -u -d "$stamp UTC" +%s) || fail "rtc.elf printed no time date can parse: '$stamp'"
if [ "$guest" -lt $((before - 5)) ] || [ "$guest" -gt $((after + 5)) ]; then
    fail "rtc.elf read $stamp, not within 5 s of the host's clock"
fi

run_qemu "$TEST_TMP/poweroff.out" /dev/null -kernel "$GUEST_DIR/power.elf" -append mode=poweroff
expect_status 0 "power.elf mode=poweroff: QEMU exits 0 on S5"
expect_contains "$TEST_TMP/poweroff.out" "power: powering off: writing 0x34"
expect_not_contains "$TEST_TMP/poweroff.out" "still running"

run_qemu "$TEST_TMP/reset.out" /dev/null -kernel "$GUEST_DIR/power.elf" -append mode=acpi-reset
expect_status 0 "power.elf mode=acpi-reset: QEMU exits 0 on a reset with -no-reboot"
expect_contains "$TEST_TMP/reset.out" "power: resetting: writing RESET_VALUE 0x42"
expect_not_contains "$TEST_TMP/reset.out" "still running"

# The power button: QEMU's system_powerdown pulses the GED's interrupt, GSI 9 as on kiln.
if command -v python3 >/dev/null 2>&1; then
    timeout --kill-after=10 60 qemu-system-x86_64 "${QEMU_ARGS[@]}" -kernel "$GUEST_DIR/power.elf" \
        -append mode=wait-power-button -monitor "unix:$TEST_TMP/monitor.sock,server,nowait" \
        </dev/null >"$TEST_TMP/button.out" 2>"$TEST_TMP/button.err" &
    qemu=$!
    for _ in $(seq 1 300); do
        grep -q "waiting for the power button" "$TEST_TMP/button.out" && break
        sleep 0.1
    done
    python3 - "$TEST_TMP/monitor.sock" <<'PY' || fail "cannot send system_powerdown to QEMU's monitor"
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"system_powerdown\n")
time.sleep(0.5)
PY
    status=0
    wait "$qemu" || status=$?
    expect_status 0 "power.elf mode=wait-power-button after system_powerdown; serial: $(cat "$TEST_TMP/button.out")"
    expect_contains "$TEST_TMP/button.out" "power: power button pressed"
else
    echo "note: python3 missing, the QEMU power-button check is skipped"
fi

echo "PASS: guest kit under QEMU microvm"
