#!/usr/bin/env bash
# bench/startup still runs end to end (a smoke run with 2 samples; the figures themselves are
# not checked: benchmarks print numbers, they do not pass or fail).
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
command -v python3 >/dev/null || fail "python3 is needed"
status=0
python3 "$SOURCE_DIR/bench/startup" --runs 2 --build "$BUILD_DIR" >"$TEST_TMP/out" 2>&1 || status=$?
expect_status 0 "$(cat "$TEST_TMP/out")"
grep -qE '^kiln +[0-9.]+ ms' "$TEST_TMP/out" || fail "no kiln figures: $(cat "$TEST_TMP/out")"
echo "PASS"
