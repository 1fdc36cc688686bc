#!/usr/bin/env bash
# Nested tier: snapshot and restore with a real Linux user space (tests/nested/l1/snapshot.sh).
# A Linux guest (the minimal kernel, for its CONFIG_VMGENID) counts in a shell loop, writing
# each number to its ext4 disk; kiln snapshots it mid-count and stops it, then two clones are
# restored from the one snapshot (the second on another TAP and on the disk as it was at the
# snapshot). Each goes on counting from where the original stopped, keeps the right time,
# answers ping, has its own entropy and reseeds its CRNG from a new VM generation ID; here
# each clone's ext4 image must be clean (e2fsck) and hold every number once, in order.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/nested/lib.sh"

minimal_kernel # CONFIG_VMGENID, which Debian's cloud kernel lacks; built once, then cached
ext4_fixture
nested_run kiln_snapshot --file "$EXT4:/nested/fixtures/ext4.img" -- \
    sh tests/nested/l1/retry-hung.sh tests/nested/l1/snapshot.sh --name kiln-snapshot \
    --kernel /nested/cache/minimal-kernel/current/vmlinux
expect_case kiln-snapshot
count=$(cat "$OUT/kiln-snapshot/count" 2>/dev/null) || fail "case kiln-snapshot sent back no count"
for clone in clone1 clone2; do
    image=$OUT/kiln-snapshot/$clone-ext4.img.gz
    [ -s "$image" ] || fail "$clone: no ext4 image came back"
    gzip -dc "$image" >"$TEST_TMP/$clone.ext4" || fail "$clone: bad $image"
    e2fsck -fn "$TEST_TMP/$clone.ext4" >"$TEST_TMP/$clone.fsck" 2>&1 ||
        fail "$clone: e2fsck finds the guest's ext4 unclean: $(tail -n 5 "$TEST_TMP/$clone.fsck")"
    got=$(debugfs -R 'cat /counter.txt' "$TEST_TMP/$clone.ext4" 2>/dev/null | tr '\n' ' ')
    [ "$got" = "$(seq 1 "$count" | tr '\n' ' ')" ] ||
        fail "$clone: counter.txt holds '$got', expected 1 to $count"
    echo "$clone: its ext4 is clean and counter.txt holds 1 to $count"
done
grep -h '^kiln-check: INFO' "$OUT/kiln-snapshot/results.txt" | sed 's/^/  /'
[ "$status" -eq 0 ] || fail "the L1 command exited $status"
echo "PASS: two clones of a Linux guest's snapshot went on counting, with their clock, network, disk, own entropy and a new generation ID"
