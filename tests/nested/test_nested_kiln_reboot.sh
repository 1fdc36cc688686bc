#!/usr/bin/env bash
# Nested tier: --on-reset restart with a real Linux user space. The test guest's first boot
# marks its disk and runs `reboot -f`; kiln must start it again, and the second boot finds
# the mark and powers off, so init runs twice and kiln exits 0.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/nested/lib.sh"

nested_run kiln_reboot -- sh tests/nested/l1/retry-hung.sh tests/nested/l1/reboot.sh --name kiln-reboot --vmm kiln \
    --kernel /nested/cache/linux-guest/vmlinux
expect_case kiln-reboot
[ "$status" -eq 0 ] || fail "the L1 command exited $status"
echo "PASS: the guest rebooted under --on-reset restart and powered off on its second boot"
