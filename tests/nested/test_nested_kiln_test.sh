#!/usr/bin/env bash
# Nested tier, the CI use case end to end: inside L1, `kiln test` boots the Linux test guest
# with a shell on its console (tests/nested/linux-shell.yaml), waits for the prompt, sends
# commands, checks their output and exit status, and writes JUnit XML. Then the same L1 runs
# what `scripts/dev.sh boot` runs, `kiln run configs/linux-guest.yaml`, which must print the
# guest's "init running" line and power off (exit 0).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/nested/lib.sh"

nested_run kiln_test -- sh -c '
    sh tests/nested/l1/kiln-test.sh; a=$?
    mkdir -p /out/linux-guest
    kiln run configs/linux-guest.yaml </dev/null >/out/linux-guest/console.log 2>&1; b=$?
    echo "l1: kiln run configs/linux-guest.yaml exited $b"
    [ "$b" -eq 0 ] || b=1
    exit $((a | b))'
XML=$OUT/kiln-test/linux-shell.xml
[ -s "$XML" ] || fail "kiln test wrote no JUnit file; L1 console: $OUT/l1-console.log"
sed 's/^/  /' "$OUT/kiln-test/kiln-test.out"
python3 - "$XML" <<'PY' || fail "the JUnit file does not say what the run did"
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
cases = root.findall(".//testcase")
names = sorted(c.get("name") for c in cases)
bad = [c.get("name") for c in cases if c.find("failure") is not None or c.find("skipped") is not None]
assert names == ["shell-commands", "shell-poweroff"], names
assert not bad, f"failed or skipped: {bad}"
assert root.get("failures") == "0", root.get("failures")
print(f"  JUnit: {len(cases)} cases, no failures")
PY
grep -q "kiln-test: the scratch disk starts with 'kiln'" "$OUT/kiln-test/kiln-test.out" ||
    fail "the shell's write to /dev/vda did not reach the disk image"
grep -q 'kiln-linux-guest: init running' "$OUT/linux-guest/console.log" ||
    fail "configs/linux-guest.yaml did not reach init: $(tail -n 5 "$OUT/linux-guest/console.log")"
[ "$status" -eq 0 ] || fail "the L1 command exited $status"
echo "PASS: kiln test drove a Linux shell in L1 (JUnit in $XML); configs/linux-guest.yaml reached init and powered off"
