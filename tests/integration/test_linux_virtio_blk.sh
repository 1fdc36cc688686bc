#!/usr/bin/env bash
# Linux's own virtio drivers judge kiln's virtio-mmio transport, virtio-blk and virtio-rng: the
# minimal kernel (no initramfs) probes the disks, reads a partition table, mounts an ext4 root
# from a disk and finds no init there, panics and resets (kiln exits 123) — on any host.
# Boot 1 (ACPI discovery): vda = a 33 MiB image with an MBR (vda1, vda2), vdb = an ext4 image
#   attached read-only as root: the kernel must mount it read-only and the image must not change;
#   virtio-rng must have served bytes to the kernel's hwrng.
# Boot 2 (--device-discovery cmdline): vda = an ext4 image attached read-write as root, vdb = a
#   copy of the MBR image attached read-only, and virtio-rng. kiln adds three virtio_mmio.device=
#   entries in slot order and acpi=off (IRQ numbers are GSIs only without ACPI); the kernel finds
#   its CPU and IOAPIC in kiln's MP table, registers the devices from the command line, reads
#   vdb's partition table, mounts vda read-write, and ext4's superblock update (mount count
#   0 -> 1) reaches the image.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"

require_kvm
[ -x "$KILN" ] || fail "kiln binary '$KILN' is missing or not executable"
command -v mkfs.ext4 >/dev/null && command -v dumpe2fs >/dev/null ||
    skip "mkfs.ext4/dumpe2fs (e2fsprogs) are not installed"
minimal_kernel
BOOT_TIMEOUT=${KILN_LINUX_BOOT_TIMEOUT:-300}

# --- images -------------------------------------------------------------------------------------
MBR_IMG=$TEST_TMP/mbr.img MBR_COPY=$TEST_TMP/mbr-copy.img RO_IMG=$TEST_TMP/ro.ext4 RW_IMG=$TEST_TMP/rw.ext4
python3 - "$MBR_IMG" <<'PY' || fail "cannot make the MBR image"
import struct, sys
size = 33 * 1024 * 1024
with open(sys.argv[1], "wb") as f:
    f.truncate(size)
    mbr = bytearray(512)
    def entry(start, count):  # a Linux (0x83) primary partition, LBA only
        return bytes([0, 0, 0, 0, 0x83, 0, 0, 0]) + struct.pack("<II", start, count)
    mbr[446:462] = entry(2048, 16384)
    mbr[462:478] = entry(18432, size // 512 - 18432)
    mbr[510:512] = b"\x55\xaa"
    f.write(mbr)
PY
cp --sparse=always "$MBR_IMG" "$MBR_COPY" || fail "cannot copy the MBR image"
for img in "$RO_IMG" "$RW_IMG"; do
    truncate -s 16M "$img" && mkfs.ext4 -q -F "$img" || fail "mkfs.ext4 $img failed"
done
mount_count() { dumpe2fs -h "$1" 2>/dev/null | sed -n 's/^Mount count: *//p'; }
[ "$(mount_count "$RW_IMG")" = 0 ] || fail "a fresh ext4 image should have mount count 0"
RO_SUM=$(sha256sum <"$RO_IMG")

# --- boots (both at once: one vCPU each) --------------------------------------------------------
CMDLINE="console=ttyS0 panic=-1"
boot() { # boot NAME ARGS...: runs kiln in the background with the serial log in NAME.log
    local name=$1
    shift
    timeout --kill-after=10 "$BOOT_TIMEOUT" "$KILN" run --kernel "$VMLINUX" --memory 256M \
        --console "file:$TEST_TMP/$name.log" --log-level debug "$@" </dev/null \
        2>"$TEST_TMP/$name.err" &
    track_pid $!
}
boot acpi --disk "$MBR_IMG,serial=kiln-mbr" --disk "$RO_IMG,readonly" --rng \
    --cmdline "$CMDLINE root=/dev/vdb rw"
acpi_pid=$!
boot cmdline --disk "$RW_IMG" --disk "$MBR_COPY,readonly" --rng --device-discovery cmdline --cmdline "$CMDLINE root=/dev/vda rw"
cmdline_pid=$!
acpi_status=0 cmdline_status=0
wait "$acpi_pid" || acpi_status=$?
wait "$cmdline_pid" || cmdline_status=$?
for name in acpi cmdline; do
    echo "== $name boot: kernel log lines about the devices"
    grep -E 'virtio|vd[ab]|VFS|EXT4|Kernel panic' "$TEST_TMP/$name.log" | sed 's/^/  | /'
    grep -E 'virtio|error' "$TEST_TMP/$name.err" | sed 's/^/  ! /'
done

# --- verdict ------------------------------------------------------------------------------------
expect_boot() { # expect_boot NAME STATUS: the guest got to its panic (no init) and reset
    [ "$2" -eq 123 ] ||
        fail "$1 boot: kiln exited $2 (expected 123, the reset after the panic): $(tail -n 3 "$TEST_TMP/$1.err"); serial: $(tail -n 5 "$TEST_TMP/$1.log")"
    expect_contains "$TEST_TMP/$1.log" "Kernel panic - not syncing: No working init found"
}
expect_boot acpi "$acpi_status"
expect_boot cmdline "$cmdline_status"

A=$TEST_TMP/acpi.log
expect_contains "$A" "virtio_blk virtio0: [vda] 67584 512-byte logical blocks (34.6 MB/33.0 MiB)"
expect_contains "$A" " vda: vda1 vda2"
expect_contains "$A" "virtio_blk virtio1: [vdb] 32768 512-byte logical blocks (16.8 MB/16.0 MiB)"
expect_contains "$A" "VFS: Mounted root (ext4 filesystem) readonly on device 254:16."
expect_not_contains "$A" "virtio-mmio: Registering device" # ACPI only, never both
[ "$(sha256sum <"$RO_IMG")" = "$RO_SUM" ] || fail "the read-only image changed"
expect_rng_served() { # expect_rng_served NAME: kiln's virtio-rng gave the kernel's hwrng bytes
    local served
    served=$(sed -n 's/.*virtio-rng [0-9]*: malformed [0-9]*, bytes \([0-9]*\).*/\1/p' "$TEST_TMP/$1.err")
    [ -n "$served" ] && [ "$served" -gt 0 ] ||
        fail "$1 boot: virtio-rng served no bytes to the kernel's hwrng: $(grep virtio "$TEST_TMP/$1.err")"
}
expect_rng_served acpi

C=$TEST_TMP/cmdline.log
expect_contains "$C" "found SMP MP-table at [mem 0x0009fc00-0x0009fc0f]"
expect_contains "$C" "virtio-mmio: Registering device virtio-mmio.0 at 0xd0000000-0xd0000fff, IRQ 16."
expect_contains "$C" "virtio-mmio: Registering device virtio-mmio.1 at 0xd0001000-0xd0001fff, IRQ 17."
expect_contains "$C" "virtio-mmio: Registering device virtio-mmio.2 at 0xd0002000-0xd0002fff, IRQ 18."
expect_contains "$C" "virtio_blk virtio0: [vda] 32768 512-byte logical blocks (16.8 MB/16.0 MiB)"
expect_contains "$C" "virtio_blk virtio1: [vdb] 67584 512-byte logical blocks (34.6 MB/33.0 MiB)"
expect_contains "$C" " vdb: vdb1 vdb2"
expect_rng_served cmdline
expect_contains "$C" "VFS: Mounted root (ext4 filesystem) on device 254:0."
[ "$(mount_count "$RW_IMG")" = 1 ] ||
    fail "ext4's superblock update did not reach the image: mount count $(mount_count "$RW_IMG")"
for name in acpi cmdline; do
    grep -qE 'virtio-blk [0-9]+: malformed 0,' "$TEST_TMP/$name.err" ||
        fail "$name boot: no virtio-blk counter line in the debug log"
    ! grep -E 'virtio-blk [0-9]+: malformed [1-9]' "$TEST_TMP/$name.err" ||
        fail "$name boot: Linux sent requests kiln called malformed"
done
echo "PASS"
