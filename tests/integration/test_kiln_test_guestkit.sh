#!/usr/bin/env bash
# The guest kit's boot tests through kiln test (tests/kiln-test/guestkit.yaml, which replaced
# test_exit_status.sh and test_serial_echo.sh): two VMs at a time, JUnit XML in the build
# folder (build/kiln-test/guestkit.xml, console logs beside it) for CI to collect.
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
for g in hello exit-status serial-echo smp rtc power misbehave; do
    require_guest "$g.elf"
done
OUT=$BUILD_DIR/kiln-test
rm -rf "$OUT"
status=0
KILN_GUEST_DIR=$GUEST_DIR timeout 600 "$KILN" test "$SOURCE_DIR/tests/kiln-test/guestkit.yaml" \
    --jobs 2 --junit "$OUT/guestkit.xml" --logs "$OUT/logs" </dev/null >"$TEST_TMP/out" 2>"$TEST_TMP/err" || status=$?
cat "$TEST_TMP/out"
expect_status 0 "$(cat "$TEST_TMP/err")"
expect_contains "$TEST_TMP/out" " passed, 0 failed, 0 skipped"
python3 - "$OUT/guestkit.xml" <<'PY' || fail "bad JUnit XML in $OUT/guestkit.xml"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
cases = root.findall("./testsuite/testcase")
assert len(cases) >= 10 and root.get("failures") == "0", root.attrib
assert all(c.get("classname") == "guestkit" for c in cases)
PY
echo "PASS"
