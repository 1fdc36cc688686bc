#!/usr/bin/env bash
# Bad kernel images through the real binary: one error line naming the file, exit 125,
# and no VM started (nothing on stdout).
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest hello.elf

head -c 8192 /dev/urandom >"$TEST_TMP/random.bin"
printf '' >"$TEST_TMP/empty.bin"
head -c 100 "$GUEST_DIR/hello.elf" >"$TEST_TMP/truncated.elf"

for image in random.bin empty.bin truncated.elf; do
    run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$TEST_TMP/$image"
    expect_status 125
    expect_lines "$TEST_TMP/err" 1
    expect_contains "$TEST_TMP/err" "kiln: error: kernel '$TEST_TMP/$image'"
    [ ! -s "$TEST_TMP/out" ] || fail "$image: guest output from a VM that should not start"
done

# An initrd that cannot fit in a small VM's RAM.
head -c $((8 << 20)) /dev/zero >"$TEST_TMP/big.initrd"
run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$GUEST_DIR/hello.elf" \
    --initrd "$TEST_TMP/big.initrd" --memory 4M
expect_status 125
expect_lines "$TEST_TMP/err" 1
expect_contains "$TEST_TMP/err" "--initrd '$TEST_TMP/big.initrd'"
echo "PASS"
