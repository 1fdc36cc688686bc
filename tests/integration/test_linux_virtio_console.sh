#!/usr/bin/env bash
# `--console virtio:file:PATH`: the console is virtio-console (hvc0) instead of the 16550.
# The minimal kernel, booted with console=hvc0 and no root device, writes its log through
# Linux's virtio_console driver into the file until its panic, then resets (kiln exits 123).
# Then `--vconsole`: ttyS0 and hvc0 side by side, each into its own file, both carrying the log.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"

require_kvm
minimal_kernel
status=0
timeout --kill-after=10 "${KILN_LINUX_BOOT_TIMEOUT:-300}" "$KILN" run --kernel "$VMLINUX" \
    --memory 256M --console "virtio:file:$TEST_TMP/hvc.log" --cmdline "console=hvc0 panic=-1" \
    </dev/null >"$TEST_TMP/stdout" 2>"$TEST_TMP/stderr" || status=$?
echo "hvc0 log: $(wc -l <"$TEST_TMP/hvc.log") lines; last: $(tail -n 1 "$TEST_TMP/hvc.log")"
expect_status 123 "$(tail -3 "$TEST_TMP/stderr"); hvc0: $(tail -5 "$TEST_TMP/hvc.log")"
expect_contains "$TEST_TMP/hvc.log" "Kernel panic - not syncing: VFS: Unable to mount root fs"
expect_contains "$TEST_TMP/hvc.log" "Call Trace:"
[ ! -s "$TEST_TMP/stdout" ] || fail "output reached stdout, not the hvc0 file: $(head -c 300 "$TEST_TMP/stdout")"

status=0
timeout --kill-after=10 "${KILN_LINUX_BOOT_TIMEOUT:-300}" "$KILN" run --kernel "$VMLINUX" \
    --memory 256M --console "file:$TEST_TMP/ttyS0.log" --vconsole "file:$TEST_TMP/hvc0.log" \
    --cmdline "console=ttyS0 console=hvc0 panic=-1" </dev/null >"$TEST_TMP/stdout" \
    2>"$TEST_TMP/stderr" || status=$?
expect_status 123 "$(tail -3 "$TEST_TMP/stderr"); hvc0: $(tail -5 "$TEST_TMP/hvc0.log")"
for log in ttyS0 hvc0; do
    expect_contains "$TEST_TMP/$log.log" "Kernel panic - not syncing: VFS: Unable to mount root fs"
done
expect_contains "$TEST_TMP/ttyS0.log" "printk: console [hvc0] enabled"
echo "PASS"
