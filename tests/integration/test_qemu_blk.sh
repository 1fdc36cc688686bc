#!/usr/bin/env bash
# The guest kit's virtio-blk and virtio-rng drivers against QEMU microvm's devices (version 2
# virtio-mmio, listed on the command line with acpi=off): checks the kit's drivers against a
# peer, so that a kiln test failing with the same guest points at kiln. Skips without QEMU.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"

command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "qemu-system-x86_64 not installed"
require_kvm
require_guest blk.elf
require_guest rng.elf

QEMU_ARGS=(-M microvm,acpi=off -enable-kvm -cpu host,-arch-capabilities -nodefaults -no-reboot
    -display none -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=4
    -global virtio-mmio.force-legacy=false)
run_qemu() { # run_qemu OUTFILE ARGS...
    local out=$1
    shift
    status=0
    timeout --kill-after=10 "${KILN_TEST_TIMEOUT:-60}" qemu-system-x86_64 "${QEMU_ARGS[@]}" "$@" \
        </dev/null >"$out" 2>"$out.err" || status=$?
    [ "$status" -ne 124 ] || fail "qemu timed out: $*; serial: $(head -c 500 "$out")"
}

IMG=$TEST_TMP/disk.img
truncate -s 1M "$IMG"
# isa-debug-exit: guest status S -> QEMU status (S << 1) | 1, so 1 is a pass.
run_qemu "$TEST_TMP/rw.out" -drive "id=d0,file=$IMG,format=raw,if=none" \
    -device virtio-blk-device,drive=d0,serial=qemu-disk-1 \
    -kernel "$GUEST_DIR/blk.elf" -append "blk.serial=qemu-disk-1"
expect_status 1 "$(cat "$TEST_TMP/rw.out" "$TEST_TMP/rw.out.err")"
expect_contains "$TEST_TMP/rw.out" "blk: all checks passed"

run_qemu "$TEST_TMP/ro.out" -drive "id=d0,file=$IMG,format=raw,if=none,readonly=on" \
    -device virtio-blk-device,drive=d0 -kernel "$GUEST_DIR/blk.elf" -append "blk.expect=readonly"
expect_status 1 "$(cat "$TEST_TMP/ro.out" "$TEST_TMP/ro.out.err")"
expect_contains "$TEST_TMP/ro.out" "blk: read-only disk refuses writes"

run_qemu "$TEST_TMP/rng.out" -device virtio-rng-device -kernel "$GUEST_DIR/rng.elf"
expect_status 1 "$(cat "$TEST_TMP/rng.out" "$TEST_TMP/rng.out.err")"
expect_contains "$TEST_TMP/rng.out" "rng: 2 x 64 random bytes"
echo "PASS"
