#!/usr/bin/env bash
# bench/migrate still runs end to end in its --quick form (one idle 128 MiB dirty.elf guest,
# one migration each of kiln and QEMU over a Unix socket): the figures are printed, not judged;
# that the row is there, that kiln's run converged within the 300 ms limit having sent the
# 32 MiB quarter of RAM the bench fills, and that no VM or file is left behind, is.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest dirty.elf
command -v python3 >/dev/null || fail "python3 is needed"

# Bad knobs end in one line naming the knob, before any VM starts.
status=0
KILN_BENCH_SIZES="256M 16G" python3 "$SOURCE_DIR/bench/migrate" --build "$BUILD_DIR" \
    >"$TEST_TMP/bad1" 2>&1 || status=$?
expect_status 2 "$(cat "$TEST_TMP/bad1")"
expect_contains "$TEST_TMP/bad1" "--sizes: 16384 MiB does not fit"
status=0
KILN_BENCH_RATES="0 fast" python3 "$SOURCE_DIR/bench/migrate" --build "$BUILD_DIR" \
    >"$TEST_TMP/bad2" 2>&1 || status=$?
expect_status 2 "$(cat "$TEST_TMP/bad2")"
expect_contains "$TEST_TMP/bad2" "--rates and --runs: expected whole numbers"

mkdir "$TEST_TMP/work"
status=0
timeout --kill-after=10 300 python3 "$SOURCE_DIR/bench/migrate" --quick --build "$BUILD_DIR" \
    --dir "$TEST_TMP/work" >"$TEST_TMP/out" 2>&1 || status=$?
expect_status 0 "$(cat "$TEST_TMP/out")"
cat "$TEST_TMP/out"
num='[0-9]+(\.[0-9]+)?'
# RAM, rate, then kiln's total ms, downtime ms, MiB sent, converged runs, guest gap ms.
kiln_row="^ 128 M +0 +$num +$num +$num +1/1 +$num"
row=$(grep -E "$kiln_row" "$TEST_TMP/out") || fail "no converged kiln row for 128 MiB idle"
read -r _ _ _ _ downtime sent _ <<<"$row"
awk -v d="$downtime" 'BEGIN { exit !(d <= 300) }' ||
    fail "kiln's downtime $downtime ms is over the 300 ms limit of a run that converged"
awk -v s="$sent" 'BEGIN { exit !(s >= 32 && s < 48) }' ||
    fail "kiln sent $sent MiB, not the 32 MiB the bench fills (plus the guest's pages)"
if command -v qemu-system-x86_64 >/dev/null; then
    grep -qE "$kiln_row +$num +$num +$num +1/1 +$num$" "$TEST_TMP/out" ||
        fail "no converged QEMU figures beside kiln's"
else
    echo "QEMU is not installed: its column is left out"
    expect_contains "$TEST_TMP/out" "no QEMU column"
fi
expect_not_contains "$TEST_TMP/out" "the source did not end with status 0"
left=$(find "$TEST_TMP/work" -mindepth 1)
[ -z "$left" ] || fail "bench/migrate left files behind: $left"
pgrep -af -- "$TEST_TMP/work" && fail "bench/migrate left VMs running"
echo "PASS"
