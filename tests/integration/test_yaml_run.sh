#!/usr/bin/env bash
# kiln run VM.yaml boots the same guest as the equivalent flags: the hello guest's output is the
# same byte for byte, the blk guest passes its checks on the disk the file names, flags given
# with the file override it, and a file with a mistake starts nothing.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"

require_kvm
require_guest hello.elf
require_guest blk.elf
require_guest exit-status.elf
export KILN_GUEST_DIR=$GUEST_DIR
CONFIGS=$SOURCE_DIR/configs

run_kiln "$TEST_TMP/file.out" "$TEST_TMP/file.err" run "$CONFIGS/hello.yaml"
expect_status 0 "$(cat "$TEST_TMP/file.err")"
run_kiln "$TEST_TMP/flags.out" "$TEST_TMP/flags.err" run --kernel "$GUEST_DIR/hello.elf" --name hello
expect_status 0 "$(cat "$TEST_TMP/flags.err")"
cmp -s "$TEST_TMP/file.out" "$TEST_TMP/flags.out" ||
    fail "configs/hello.yaml and its flags printed different output: $(cat "$TEST_TMP/file.out") / $(cat "$TEST_TMP/flags.out")"
expect_contains "$TEST_TMP/file.out" "Hello from the kiln guest kit"
[ ! -s "$TEST_TMP/file.err" ] || fail "unexpected stderr: $(cat "$TEST_TMP/file.err")"

# Paths in the file are relative to it, wherever kiln runs.
(cd / && run_kiln "$TEST_TMP/root.out" "$TEST_TMP/root.err" run "$CONFIGS/hello.yaml" && expect_status 0)
expect_contains "$TEST_TMP/root.out" "Hello from the kiln guest kit"

export KILN_DISK=$TEST_TMP/scratch.img
truncate -s 1M "$KILN_DISK"
run_kiln "$TEST_TMP/blk.out" "$TEST_TMP/blk.err" run "$CONFIGS/blk-rng.yaml"
expect_status 0 "$(cat "$TEST_TMP/blk.out" "$TEST_TMP/blk.err")"
expect_contains "$TEST_TMP/blk.out" "blk: serial 'kiln-disk-1'"
expect_contains "$TEST_TMP/blk.out" "blk: all checks passed"

# Flags win over the file: another kernel, and its command line.
run_kiln "$TEST_TMP/over.out" "$TEST_TMP/over.err" run "$CONFIGS/hello.yaml" \
    --kernel "$GUEST_DIR/exit-status.elf" --cmdline status=3
expect_status 3 "$(cat "$TEST_TMP/over.err")"
expect_contains "$TEST_TMP/over.out" "exit-status: exiting with status 3"

# A mistake anywhere in the file: status 125 and no guest output.
printf 'kernel: {path: "%s/hello.elf"}\ncpus: 0\n' "$GUEST_DIR" >"$TEST_TMP/bad.yaml"
run_kiln "$TEST_TMP/bad.out" "$TEST_TMP/bad.err" run "$TEST_TMP/bad.yaml"
expect_status 125
expect_lines "$TEST_TMP/bad.err" 1
expect_contains "$TEST_TMP/bad.err" "bad.yaml:2:7: cpus: '0' is not a valid vCPU count (expected 1 to 254)"
[ ! -s "$TEST_TMP/bad.out" ] || fail "a VM started: $(cat "$TEST_TMP/bad.out")"
echo "PASS"
