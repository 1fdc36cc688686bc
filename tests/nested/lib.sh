# shellcheck shell=bash
# Shared by the nested tier's tests on the host (sourced, not run): runs an L1 session through
# scripts/nested.sh, reads the results its cases wrote, and checks the ext4 image a guest
# wrote with the host's e2fsck and debugfs. ctest gives KILN, SOURCE_DIR and BUILD_DIR.
# shellcheck source-path=SCRIPTDIR source=../integration/lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh" # fail, skip, TEST_TMP, cleanup

NESTED=$SOURCE_DIR/scripts/nested.sh
export KILN_BUILD_DIR=${KILN_BUILD_DIR:-$BUILD_DIR}

# ext4_fixture: EXT4 is a 16 MiB ext4 image holding from-host.txt (L1 has no mkfs.ext4).
ext4_fixture() {
    mkdir -p "$TEST_TMP/ext4-root"
    echo "written by the host" >"$TEST_TMP/ext4-root/from-host.txt"
    EXT4=$TEST_TMP/ext4.img
    mkfs.ext4 -q -F -d "$TEST_TMP/ext4-root" "$EXT4" 16M || fail "mkfs.ext4 failed"
}

# L1 itself locking up, resetting or panicking (status 86 from scripts/nested.sh) is the
# environment's (QEMU TCG's emulated SVM, docs/nested.md): the session runs again, up to this
# many times in all. CI once met it twice in a row, both times while QEMU microvm booted in L1.
NESTED_L1_TRIES=3

# nested_run NAME [nested.sh run options] -- COMMAND...: one L1 session; its output goes to
# OUT=BUILD_DIR/tests/nested/NAME (kept for reading after a failure; a session L1 lost is
# kept in NAME.locked-up, then NAME.locked-up2). Skips when the tier cannot run; sets status
# to COMMAND's exit status.
nested_run() {
    local name=$1 try kept
    shift
    OUT=$BUILD_DIR/tests/nested/$name
    rm -rf "$OUT" "$OUT".locked-up*
    for try in $(seq 1 "$NESTED_L1_TRIES"); do
        mkdir -p "$OUT"
        status=0
        bash "$NESTED" run --out "$OUT" "$@" >"$OUT/nested.stdout" 2>"$OUT/nested.stderr" </dev/null ||
            status=$?
        grep -v '^Get:\|^Fetched' "$OUT/nested.stderr" | sed 's/^/  /'
        if [ "$status" -ne 86 ] || [ "$try" -eq "$NESTED_L1_TRIES" ]; then
            break
        fi
        kept=$OUT.locked-up$([ "$try" -gt 1 ] && echo "$try")
        echo "RETRY: the L1 session locked up or crashed; running it once more (this one's files: $kept)"
        mv "$OUT" "$kept"
    done
    [ "$status" -ne 86 ] ||
        fail "the L1 session locked up or crashed $NESTED_L1_TRIES times; consoles: $OUT.locked-up*/l1-console.log, $OUT/l1-console.log"
    if [ "$status" -eq 77 ]; then
        skip "$(sed -n 's/^SKIP: //p' "$OUT/nested.stdout" | head -n 1)"
    fi
    grep -h 'kiln-nested: \|^l1: ' "$OUT/l1-console.log" 2>/dev/null | tr -d '\r' | sed 's/^/  /'
    if [ "$status" -eq 124 ]; then
        fail "the L1 session ran out of time; console: $OUT/l1-console.log"
    fi
}

# expect_case CASE: the case's results file exists and says every check passed.
expect_case() {
    local results=$OUT/$1/results.txt
    [ -s "$results" ] || fail "case $1 wrote no results ($results); L1 console: $OUT/l1-console.log"
    if grep -a -q '^kiln-check: FAIL' "$results"; then
        fail "case $1: $(grep -a '^kiln-check: FAIL' "$results" | head -n 5 | tr '\n' ' ')"
    fi
    grep -a -q '^kiln-check: PASS' "$results" || fail "case $1 passed no check at all"
}

# expect_guest_ext4 CASE: the image the guest wrote is a clean ext4 (e2fsck -fn) whose
# from-guest.txt holds the case's token.
expect_guest_ext4() {
    local dir=$OUT/$1 got
    [ -s "$dir/ext4-rw.img.gz" ] || fail "case $1 sent back no ext4 image"
    gzip -dc "$dir/ext4-rw.img.gz" >"$TEST_TMP/$1.ext4" || fail "case $1: bad ext4-rw.img.gz"
    e2fsck -fn "$TEST_TMP/$1.ext4" >"$TEST_TMP/$1.fsck" 2>&1 ||
        fail "case $1: e2fsck finds the guest's ext4 unclean: $(tail -n 5 "$TEST_TMP/$1.fsck")"
    got=$(debugfs -R 'cat /from-guest.txt' "$TEST_TMP/$1.ext4" 2>/dev/null)
    [ "$got" = "$(cat "$dir/token")" ] ||
        fail "case $1: from-guest.txt on the host holds '$got', expected '$(cat "$dir/token")'"
    echo "case $1: the guest's ext4 is clean on the host and holds its file"
}
