#!/usr/bin/env bash
# bench/snapshot still runs end to end in its --quick form (one 128 MiB guest, one run of each
# snapshot and restore, kiln and QEMU): the figures are printed, not judged; that each row is
# there with a number, and that kiln's memory file holds about the 64 MiB the guest touched, is.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest counter.elf
command -v python3 >/dev/null || fail "python3 is needed"
status=0
timeout --kill-after=10 300 python3 "$SOURCE_DIR/bench/snapshot" --quick --build "$BUILD_DIR" \
    --dir "$TEST_TMP" >"$TEST_TMP/out" 2>&1 || status=$?
expect_status 0 "$(cat "$TEST_TMP/out")"
cat "$TEST_TMP/out"
num='[0-9]+\.[0-9]+'
grep -qE "^ 128 M  kiln +$num +$num +6[45]\.[0-9] +128$" "$TEST_TMP/out" ||
    fail "no kiln snapshot row with a 64 MiB file of 128 MiB: $(cat "$TEST_TMP/out")"
# The diff 1 s later holds the counter's table, a fraction of RAM: less than 4 MiB.
grep -qE "^ 128 M  kiln +$num +$num +[0-3]\.[0-9]+ +$num$" "$TEST_TMP/out" ||
    fail "no kiln diff snapshot row with a memory.diff under 4 MiB: $(cat "$TEST_TMP/out")"
for row in "kiln restore lazy" "kiln restore copy" "kiln run \(fresh boot\)"; do
    grep -qE "^ 128 M  $row +$num +$num +$num$" "$TEST_TMP/out" ||
        fail "no figures for '$row': $(cat "$TEST_TMP/out")"
done
if command -v qemu-system-x86_64 >/dev/null; then
    grep -qE "^ 128 M  qemu microvm +$num" "$TEST_TMP/out" || fail "no QEMU snapshot row"
    grep -qE "^ 128 M  qemu -incoming \+ cont +$num" "$TEST_TMP/out" || fail "no QEMU restore row"
fi
left=$(find "$TEST_TMP" -mindepth 1 -maxdepth 1 ! -name out)
[ -z "$left" ] || fail "bench/snapshot left files behind: $left"
echo "PASS"
