#!/usr/bin/env bash
# bench/blk still runs end to end in its --quick form (one boot each of kiln and QEMU, 8 MiB):
# the figures are printed, not judged; the guest's own checks (no failed request) are.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest blk-bench.elf
status=0
python3 "$SOURCE_DIR/bench/blk" --quick --build "$BUILD_DIR" --image "$TEST_TMP/bench.img" \
    >"$TEST_TMP/out" 2>&1 || status=$?
expect_status 0 "$(cat "$TEST_TMP/out")"
grep -qE '^kiln +[0-9.]+ MiB/s' "$TEST_TMP/out" || fail "no kiln figures: $(cat "$TEST_TMP/out")"
echo "PASS"
