#!/bin/sh
# Runs in the nested tier's L1: `kiln test` against the Linux test guest's shell
# (tests/nested/linux-shell.yaml), with JUnit XML and the console logs in /out/kiln-test/.
# Exit status: kiln test's.
# shellcheck shell=sh
. /nested/repo/tests/nested/l1/lib.sh

start_case kiln-test
dd if=/dev/zero of="$DIR/shell.img" bs=1M count=4 2>/dev/null
export KILN_NESTED_DISK="$DIR/shell.img"
status=0
kiln test /nested/repo/tests/nested/linux-shell.yaml --jobs 1 --junit "$OUT/linux-shell.xml" \
    --logs "$OUT/logs" >"$OUT/kiln-test.out" 2>&1 || status=$?
sed 's/^/l1: kiln-test: /' "$OUT/kiln-test.out"
GOT=$(head -c 4 "$DIR/shell.img")
echo "kiln-test: the scratch disk starts with '$GOT'" >>"$OUT/kiln-test.out"
echo "l1: case kiln-test: kiln test exited $status"
exit "$status"
