#!/usr/bin/env bash
# --console file:PATH writes the guest's output to the file (stdout stays empty);
# --console none discards it; a failed start leaves an existing console file untouched.
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest hello.elf

run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$GUEST_DIR/hello.elf" \
    --console "file:$TEST_TMP/console.log"
expect_status 0
expect_contains "$TEST_TMP/console.log" "Hello from the kiln guest kit"
[ ! -s "$TEST_TMP/out" ] || fail "stdout should be empty with --console file:"

run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$GUEST_DIR/hello.elf" --console none
expect_status 0
[ ! -s "$TEST_TMP/out" ] || fail "stdout should be empty with --console none"

echo "keep me" >"$TEST_TMP/keep.log"
head -c 4096 /dev/urandom >"$TEST_TMP/garbage"
run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$TEST_TMP/garbage" \
    --console "file:$TEST_TMP/keep.log"
expect_status 125
expect_contains "$TEST_TMP/keep.log" "keep me"

run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$GUEST_DIR/hello.elf" \
    --console "file:$TEST_TMP/no/such/dir/console.log"
expect_status 125
expect_lines "$TEST_TMP/err" 1
expect_contains "$TEST_TMP/err" "kiln: error: --console: cannot open 'file:$TEST_TMP/no/such/dir/console.log' for writing: No such file or directory (expected a path kiln may write)"
echo "PASS"
