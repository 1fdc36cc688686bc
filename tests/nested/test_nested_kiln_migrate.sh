#!/usr/bin/env bash
# Nested tier: live migration with a real Linux user space (tests/nested/l1/migrate.sh). A
# Linux guest counts in a shell loop, writing each number to its ext4 disk and over one TCP
# connection to L1; mid-count kiln migrates it to a `kiln receive` on another TAP. It must go on
# counting from where it was, its TCP connection must carry every line, L1 must ping it
# afterwards, and here its ext4 image must be clean (e2fsck) and hold every number once.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/nested/lib.sh"

minimal_kernel
ext4_fixture
nested_run kiln_migrate --file "$EXT4:/nested/fixtures/ext4.img" -- \
    sh tests/nested/l1/retry-hung.sh tests/nested/l1/migrate.sh --name kiln-migrate \
    --kernel /nested/cache/minimal-kernel/current/vmlinux
expect_case kiln-migrate
count=$(cat "$OUT/kiln-migrate/count" 2>/dev/null) || fail "case kiln-migrate sent back no count"
image=$OUT/kiln-migrate/ext4.img.gz
[ -s "$image" ] || fail "no ext4 image came back"
gzip -dc "$image" >"$TEST_TMP/ext4" || fail "bad $image"
e2fsck -fn "$TEST_TMP/ext4" >"$TEST_TMP/fsck" 2>&1 ||
    fail "e2fsck finds the migrated guest's ext4 unclean: $(tail -n 5 "$TEST_TMP/fsck")"
got=$(debugfs -R 'cat /counter.txt' "$TEST_TMP/ext4" 2>/dev/null | tr '\n' ' ')
[ "$got" = "$(seq 1 "$count" | tr '\n' ' ')" ] || fail "counter.txt holds '$got', expected 1 to $count"
echo "its ext4 is clean and counter.txt holds 1 to $count"
grep -h '^kiln-check: PASS migrate' "$OUT/kiln-migrate/results.txt" | sed 's/^/  /'
[ "$status" -eq 0 ] || fail "the L1 command exited $status"
echo "PASS: a Linux guest migrated mid-count went on counting, kept its TCP connection and file system, and answers ping"
