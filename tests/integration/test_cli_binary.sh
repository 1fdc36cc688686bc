#!/usr/bin/env bash
# The real binary's behaviour for help, version and bad flags: help/version exit 0 on stdout;
# every bad flag or value is one line on stderr and exit status 125, with no VM started.
. "$SOURCE_DIR/tests/integration/lib.sh"

run_kiln "$TEST_TMP/out" "$TEST_TMP/err" --help
expect_status 0
expect_contains "$TEST_TMP/out" "kiln run --kernel PATH"
run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --help
expect_status 0
expect_contains "$TEST_TMP/out" "--memory SIZE"
expect_contains "$TEST_TMP/out" "exit status:"
run_kiln "$TEST_TMP/out" "$TEST_TMP/err" --version
expect_status 0
grep -qE '^kiln [0-9]+\.[0-9]+\.[0-9]+ \(commit ([0-9a-f]{12}(-dirty)?|unknown)\)$' "$TEST_TMP/out" ||
    fail "bad version line: $(cat "$TEST_TMP/out")"
# The commit is the source tree's, as git names it (this test runs in a checkout, or says unknown).
if commit=$(git -C "$SOURCE_DIR" rev-parse --short=12 HEAD 2>/dev/null); then
    expect_contains "$TEST_TMP/out" "(commit $commit"
fi

check_bad() {
    local expected=$1
    shift
    run_kiln "$TEST_TMP/out" "$TEST_TMP/err" "$@"
    expect_status 125
    expect_lines "$TEST_TMP/err" 1
    expect_contains "$TEST_TMP/err" "kiln: error: $expected"
    [ ! -s "$TEST_TMP/out" ] || fail "stdout should be empty for: kiln $*"
}

check_bad "missing command"
check_bad "unknown flag '--kernal' for 'kiln run' (did you mean '--kernel'?)" run --kernal x
check_bad "--memory: '12Q' is not a size" run --kernel x --memory 12Q
check_bad "--cpus: '0' is not a valid vCPU count (expected 1 to 254)" run --kernel x --cpus 0
check_bad "--console: 'tty' is not a console" run --kernel x --console tty
check_bad "--log-level: 'loud' is not a log level" run --kernel x --log-level loud
check_bad "--kernel: '$TEST_TMP/nope': No such file or directory (expected a kernel image file)" run --kernel "$TEST_TMP/nope"
check_bad "--kernel: missing" run --memory 1G
echo "PASS"
