#!/usr/bin/env bash
# bench/density still runs end to end: a smoke run of 4 VMs per VMM that checks the report has
# a kiln row for each sample and that every VM it started was stopped again (figures are not
# checked: benchmarks print numbers, they do not pass or fail).
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
command -v python3 >/dev/null || fail "python3 is needed"
status=0
python3 "$SOURCE_DIR/bench/density" --count 4 --sample-every 2 --build "$BUILD_DIR" \
    >"$TEST_TMP/out" 2>&1 || status=$?
expect_status 0 "$(cat "$TEST_TMP/out")"
[ "$(grep -cE '^kiln +[24] +[0-9.]+ ' "$TEST_TMP/out")" = 2 ] ||
    fail "expected kiln rows for 2 and 4 VMs: $(cat "$TEST_TMP/out")"
grep -q '^kiln: 4 VMs running at once' "$TEST_TMP/out" || fail "kiln did not reach 4 VMs: $(cat "$TEST_TMP/out")"
# The bench's kiln VMs have their API sockets in its kiln-density.* folder.
if pgrep -f 'kiln-density\.' >/dev/null; then
    fail "VMs of the bench still run: $(pgrep -af 'kiln-density\.')"
fi
echo "PASS"
