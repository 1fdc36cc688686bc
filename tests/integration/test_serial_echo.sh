# stdin reaches the guest through the UART's RX FIFO and comes back out through TX,
# including input longer than the 16-byte FIFO (back-pressure, nothing lost).
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest serial-echo.elf

line="the lazy brown fox jumps over the dog 0123456789 ABCDEFGHIJKLMNOP" # no q: it ends the guest
status=0
printf '%s\nq' "$line" | timeout 120 "$KILN" run --kernel "$GUEST_DIR/serial-echo.elf" \
    >"$TEST_TMP/out" 2>"$TEST_TMP/err" || status=$?
expect_status 0 "$(cat "$TEST_TMP/err")"
expect_contains "$TEST_TMP/out" "serial-echo: ready"
expect_contains "$TEST_TMP/out" "$line"
expect_contains "$TEST_TMP/out" "serial-echo: bye"
echo "PASS"
