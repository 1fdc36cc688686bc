#!/usr/bin/env bash
# The guest kit's own virtio-blk and virtio-rng drivers against kiln's devices: data written
# by the guest is on the host image (first and last sector), a read-only disk refuses writes
# and stays unchanged, a FLUSHed write survives SIGKILL of kiln, entropy arrives; and the
# user's disk mistakes end in one clear error line (status 125) before anything starts.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"

require_kvm
require_guest blk.elf
require_guest rng.elf

# sector_has_pattern IMG SECTOR: the guest's pattern, byte i of sector s = (s * 31 + i) & 0xff.
sector_has_pattern() {
    python3 - "$1" "$2" <<'PY'
import sys
path, s = sys.argv[1], int(sys.argv[2])
with open(path, "rb") as f:
    f.seek(s * 512)
    data = f.read(512)
sys.exit(0 if data == bytes((s * 31 + i) & 0xff for i in range(512)) else 1)
PY
}

IMG=$TEST_TMP/disk.img
truncate -s 1M "$IMG"
run_kiln "$TEST_TMP/rw.out" "$TEST_TMP/rw.err" run --kernel "$GUEST_DIR/blk.elf" \
    --disk "$IMG,serial=kiln-disk-1" --device-discovery cmdline --cmdline "blk.serial=kiln-disk-1"
expect_status 0 "$(cat "$TEST_TMP/rw.out" "$TEST_TMP/rw.err")"
expect_contains "$TEST_TMP/rw.out" "blk: capacity 2048 sectors"
expect_contains "$TEST_TMP/rw.out" "blk: serial 'kiln-disk-1'"
expect_contains "$TEST_TMP/rw.out" "blk: all checks passed"
for s in 0 2 3 2047; do
    sector_has_pattern "$IMG" "$s" || fail "sector $s of the image lacks the guest's data"
done

SUM=$(sha256sum <"$IMG")
run_kiln "$TEST_TMP/ro.out" "$TEST_TMP/ro.err" run --kernel "$GUEST_DIR/blk.elf" \
    --disk "$IMG,readonly" --device-discovery cmdline --cmdline "blk.expect=readonly"
expect_status 0 "$(cat "$TEST_TMP/ro.out" "$TEST_TMP/ro.err")"
expect_contains "$TEST_TMP/ro.out" "blk: read-only disk refuses writes"
[ "$(sha256sum <"$IMG")" = "$SUM" ] || fail "the read-only image changed"

run_kiln "$TEST_TMP/rng.out" "$TEST_TMP/rng.err" run --kernel "$GUEST_DIR/rng.elf" --rng \
    --device-discovery cmdline
expect_status 0 "$(cat "$TEST_TMP/rng.out" "$TEST_TMP/rng.err")"
expect_contains "$TEST_TMP/rng.out" "rng: 2 x 64 random bytes"

# Durability: once the guest has seen its FLUSH complete, SIGKILL cannot lose the data.
DURABLE=$TEST_TMP/durable.img
truncate -s 1M "$DURABLE"
"$KILN" run --kernel "$GUEST_DIR/blk.elf" --disk "$DURABLE" --device-discovery cmdline \
    --cmdline "blk.mode=durable" --console "file:$TEST_TMP/durable.out" \
    </dev/null 2>"$TEST_TMP/durable.err" &
pid=$!
track_pid "$pid"
for _ in $(seq 1 300); do
    grep -q "blk: flushed" "$TEST_TMP/durable.out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
grep -q "blk: flushed" "$TEST_TMP/durable.out" ||
    fail "the guest never reported its flush: $(cat "$TEST_TMP/durable.out" "$TEST_TMP/durable.err")"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
for s in 1 2 3 4 5 6 7 8; do
    sector_has_pattern "$DURABLE" "$s" || fail "sector $s was flushed but is not on disk"
done

# A second VM cannot open an image a running one holds.
"$KILN" run --kernel "$GUEST_DIR/blk.elf" --disk "$DURABLE" --device-discovery cmdline \
    --cmdline "blk.mode=durable" --console "file:$TEST_TMP/holder.out" </dev/null 2>/dev/null &
holder=$!
track_pid "$holder"
for _ in $(seq 1 300); do
    grep -q "blk: flushed" "$TEST_TMP/holder.out" 2>/dev/null && break
    sleep 0.1
done
run_kiln "$TEST_TMP/locked.out" "$TEST_TMP/locked.err" run --kernel "$GUEST_DIR/blk.elf" --disk "$DURABLE"
expect_status 125
expect_lines "$TEST_TMP/locked.err" 1
expect_contains "$TEST_TMP/locked.err" "is in use by another VM or process"
kill -KILL "$holder"
wait "$holder" 2>/dev/null

# Careless-user errors: one line each, status 125, nothing started.
printf 'x%.0s' $(seq 1 1000) >"$TEST_TMP/odd.img"
run_kiln "$TEST_TMP/odd.out" "$TEST_TMP/odd.err" run --kernel "$GUEST_DIR/blk.elf" --disk "$TEST_TMP/odd.img"
expect_status 125
expect_lines "$TEST_TMP/odd.err" 1
expect_contains "$TEST_TMP/odd.err" "is 1000 bytes, not a multiple of 512 (expected whole sectors; e.g. truncate -s 1024)"
run_kiln "$TEST_TMP/missing.out" "$TEST_TMP/missing.err" run --kernel "$GUEST_DIR/blk.elf" --disk "$TEST_TMP/nope.img"
expect_status 125
expect_contains "$TEST_TMP/missing.err" "--disk: '$TEST_TMP/nope.img': No such file or directory (expected a raw disk image or block device)"
run_kiln "$TEST_TMP/opt.out" "$TEST_TMP/opt.err" run --kernel "$GUEST_DIR/blk.elf" --disk "$IMG,cache=never"
expect_status 125
expect_lines "$TEST_TMP/opt.err" 1
expect_contains "$TEST_TMP/opt.err" "is not a cache mode"
echo "PASS"
