# The test-exit device: the status the guest writes becomes kiln's exit status.
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest exit-status.elf

for status in 3 0 1 42 122; do
    run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$GUEST_DIR/exit-status.elf" \
        --cmdline "status=$status"
    expect_status "$status" "$(cat "$TEST_TMP/err")"
done

# Without a status the guest reports its own error and exits 1.
run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$GUEST_DIR/exit-status.elf"
expect_status 1
echo "PASS"
