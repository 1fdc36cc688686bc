#!/usr/bin/env bash
# Nested tier: the project's minimal kernel (scripts/build-minimal-kernel.sh: every virtio
# driver built in) on kiln inside L1, twice: the ELF vmlinux through PVH with devices through
# ACPI, then the bzImage with --device-discovery cmdline (virtio_mmio.device= words, the MP
# table and acpi=off). Every user-space check of the Linux test guest must pass both times;
# the second ends with kiln-exit 3.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/nested/lib.sh"

minimal_kernel # builds it once, then "up to date"; nested.sh puts the cached one into L1
ext4_fixture
L=tests/nested/l1
K=/nested/cache/minimal-kernel/current
nested_run kiln_minimal --file "$EXT4:/nested/fixtures/ext4.img" -- sh -c "
    sh $L/retry-hung.sh $L/linux-checks.sh --name kiln-minimal-pvh-acpi --vmm kiln --kernel $K/vmlinux; a=\$?
    sh $L/retry-hung.sh $L/linux-checks.sh --name kiln-minimal-bzimage-cmdline --vmm kiln --kernel $K/bzImage \
        --discovery cmdline --end exit:3; b=\$?
    exit \$((a | b))"
expect_case kiln-minimal-pvh-acpi
expect_case kiln-minimal-bzimage-cmdline
expect_guest_ext4 kiln-minimal-bzimage-cmdline
grep -q '^kiln-check: INFO discovery: [1-9][0-9]* virtio_mmio.device words; acpi=off' \
    "$OUT/kiln-minimal-bzimage-cmdline/results.txt" ||
    fail "the cmdline case did not find its devices through virtio_mmio.device= with acpi=off"
grep -q '^kiln-check: INFO discovery: 0 virtio_mmio.device words; ACPI on' \
    "$OUT/kiln-minimal-pvh-acpi/results.txt" || fail "the ACPI case did not boot with ACPI discovery"
[ "$status" -eq 0 ] || fail "the L1 command exited $status"
echo "PASS: the minimal kernel reached user space on kiln through PVH + ACPI and bzImage + cmdline"
