#!/usr/bin/env bash
# Nested tier, kiln and its peer side by side in one L1: Debian's cloud kernel as an ELF vmlinux
# through its PVH entry, devices through ACPI, on kiln and then on QEMU microvm with the same
# kernel, initramfs and disks. On both, the guest's init checks CPUs, memory, virtio-blk (the
# bytes, serials, a write reaching the image, a read-only disk), ext4 read-write and
# read-only, virtio-rng, virtio-net on a TAP (ping both ways, 4 MiB over TCP each way) and
# hvc0 in and out, then powers off. QEMU also reboots its guest once. Both VMMs must show the
# same XSAVE warning, or neither: it comes from the environment (docs/nested.md).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/nested/lib.sh"

ext4_fixture
L=tests/nested/l1
VMLINUX=/nested/cache/linux-guest/vmlinux
nested_run peer --qemu --file "$EXT4:/nested/fixtures/ext4.img" -- sh -c "
    sh $L/retry-hung.sh $L/linux-checks.sh --name kiln-vmlinux-acpi --vmm kiln --kernel $VMLINUX; a=\$?
    sh $L/retry-hung.sh $L/linux-checks.sh --name qemu-vmlinux-acpi --vmm qemu --kernel $VMLINUX; b=\$?
    sh $L/retry-hung.sh $L/reboot.sh --name qemu-reboot --vmm qemu --kernel $VMLINUX; c=\$?
    exit \$((a | b | c))"
for case in kiln-vmlinux-acpi qemu-vmlinux-acpi qemu-reboot; do
    expect_case "$case"
done
expect_guest_ext4 kiln-vmlinux-acpi
expect_guest_ext4 qemu-vmlinux-acpi
[ "$status" -eq 0 ] || fail "the L1 command exited $status"

# The same checks passed on both, by name.
checks() { sed -n 's/^kiln-check: PASS \([^:]*\):.*/\1/p' "$OUT/$1/results.txt" | sort; }
[ "$(checks kiln-vmlinux-acpi)" = "$(checks qemu-vmlinux-acpi)" ] ||
    fail "kiln and QEMU passed different checks: $(diff <(checks kiln-vmlinux-acpi) <(checks qemu-vmlinux-acpi) | tr '\n' ' ')"
xsave() { sed -n 's/^kiln-check: INFO xsave-warning: //p' "$OUT/$1/results.txt"; }
[ "$(xsave kiln-vmlinux-acpi)" = "$(xsave qemu-vmlinux-acpi)" ] ||
    fail "the XSAVE warning differs: kiln '$(xsave kiln-vmlinux-acpi)', QEMU '$(xsave qemu-vmlinux-acpi)'"
echo "XSAVE warning on both VMMs: '$(xsave kiln-vmlinux-acpi)'"
grep -h '^kiln-check: INFO timing' "$OUT"/{kiln,qemu}-vmlinux-acpi/results.txt
echo "PASS: $(checks kiln-vmlinux-acpi | wc -l) checks pass on kiln and on QEMU microvm in the same L1"
