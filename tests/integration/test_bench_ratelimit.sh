#!/usr/bin/env bash
# bench/ratelimit still runs end to end in its --quick form (1 s a row; the disk rows, and the
# net rows as root): the figures are printed, not judged; each row must be there.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest blk-bench.elf
require_guest net-bench.elf
status=0
timeout --kill-after=10 300 python3 "$SOURCE_DIR/bench/ratelimit" --quick --build "$BUILD_DIR" \
    --image "$TEST_TMP/bench.img" >"$TEST_TMP/out" 2>&1 || status=$?
expect_status 0 "$(cat "$TEST_TMP/out")"
for row in "blk bw=10M seq write" "blk bw=100M seq write" "blk iops=1000 random read" \
    "blk bw=10M,bw-burst=50M seq write"; do
    grep -qE "^$row +[0-9]+ +[0-9.]+ " "$TEST_TMP/out" || fail "no '$row' row: $(cat "$TEST_TMP/out")"
done
if [ "$(id -u)" -eq 0 ] && [ -e /dev/net/tun ] && command -v ip >/dev/null; then
    grep -qE "^net tx-bw=50M 1514 B frames +50 +[0-9.]+ " "$TEST_TMP/out" ||
        fail "no net rows: $(cat "$TEST_TMP/out")"
fi
echo "PASS"
