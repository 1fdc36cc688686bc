#!/usr/bin/env bash
# kiln run boots the guest kit's hello guest: its line on stdout, exit status 0, nothing on
# stderr; also with several vCPUs (the APs wait in-kernel for a SIPI that never comes).
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest hello.elf

run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$GUEST_DIR/hello.elf"
expect_status 0 "$(cat "$TEST_TMP/err")"
expect_contains "$TEST_TMP/out" "Hello from the kiln guest kit"
[ ! -s "$TEST_TMP/err" ] || fail "unexpected stderr: $(cat "$TEST_TMP/err")"

run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$GUEST_DIR/hello.elf" --cpus 4 --memory 64M
expect_status 0 "$(cat "$TEST_TMP/err")"
expect_contains "$TEST_TMP/out" "Hello from the kiln guest kit"

# A VM bigger than the 3 GiB hole start gets RAM above 4 GiB too; it must still boot.
run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$GUEST_DIR/hello.elf" --memory 5G
expect_status 0 "$(cat "$TEST_TMP/err")"
expect_contains "$TEST_TMP/out" "Hello from the kiln guest kit"

# --log-level info reports the kernel format and the guest's exit.
run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$GUEST_DIR/hello.elf" --log-level info
expect_status 0
expect_contains "$TEST_TMP/err" "PVH ELF"
expect_contains "$TEST_TMP/err" "guest exited with status 0"
echo "PASS"
