#!/usr/bin/env bash
# Nested tier: Debian's cloud kernel as a bzImage (the boot protocol's 64-bit entry) on kiln
# inside L1, with every user-space check of the Linux test guest (tests/nested/guest-init.sh);
# it ends with `kiln-exit 7` from user space, so kiln must exit 7 (the test-exit port).
# Debian's cloud kernel finds virtio-mmio devices only through ACPI (it has neither
# CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES nor an MP-table parser): test_nested_kiln_minimal.sh
# covers --device-discovery cmdline.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/nested/lib.sh"

ext4_fixture
nested_run kiln_bzimage --file "$EXT4:/nested/fixtures/ext4.img" -- \
    sh tests/nested/l1/retry-hung.sh tests/nested/l1/linux-checks.sh --name kiln-bzimage-acpi --vmm kiln \
    --kernel /nested/cache/linux-guest/vmlinuz --discovery acpi --end exit:7
expect_case kiln-bzimage-acpi
expect_guest_ext4 kiln-bzimage-acpi
grep -q '^kiln-check: PASS vmm-exit: kiln exited 7' "$OUT/kiln-bzimage-acpi/results.txt" ||
    fail "kiln did not exit 7 after the guest's kiln-exit 7"
[ "$status" -eq 0 ] || fail "the L1 command exited $status"
echo "PASS: the bzImage reached user space on kiln; kiln-exit 7 from user space made kiln exit 7"
