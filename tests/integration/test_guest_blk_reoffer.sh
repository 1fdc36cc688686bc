#!/usr/bin/env bash
# A hostile guest re-offers one virtio-blk read (head 0) as soon as kiln takes it, never
# waiting for it to complete. kiln must refuse the busy head (DEVICE_NEEDS_RESET, one log
# line), keep its memory bounded, and still stop promptly on SIGTERM. Before the fix such a
# guest had 100,000 requests in flight on a 16-entry queue and kiln did not exit until SIGKILL.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"

require_kvm
require_guest blk.elf

IMG=$TEST_TMP/disk.img
truncate -s 1M "$IMG"
"$KILN" run --kernel "$GUEST_DIR/blk.elf" --disk "$IMG" --device-discovery cmdline \
    --cmdline "blk.mode=reoffer" --shutdown-grace 1 --console "file:$TEST_TMP/out" \
    </dev/null 2>"$TEST_TMP/err" &
pid=$!
track_pid "$pid"
for _ in $(seq 1 300); do
    grep -q "blk: the device stopped taking head 0" "$TEST_TMP/out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
rss_kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
grep -q "blk: the device stopped taking head 0" "$TEST_TMP/out" ||
    fail "kiln kept taking the busy head (RSS ${rss_kib} KiB): $(tail -3 "$TEST_TMP/out") $(tail -3 "$TEST_TMP/err")"
expect_contains "$TEST_TMP/err" "available ring offers a head the device has not given back yet; the device needs a reset"
[ "$(grep -c 'needs a reset' "$TEST_TMP/err")" -eq 1 ] || fail "the refusal was logged more than once"
# kiln's own memory plus what the guest touched; unbounded requests grew it by ~1 KiB each.
[ "$rss_kib" -lt 65536 ] || fail "kiln's RSS is ${rss_kib} KiB with a hostile guest"

start=$(now_us)
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
took=$(seconds_since "$start")
expect_status 143 "$(tail -3 "$TEST_TMP/err")"
# --shutdown-grace 1: the guest ignores the power button, kiln stops it a second later.
awk -v t="$took" 'BEGIN { exit !(t < 5) }' || fail "kiln took ${took} s to stop after SIGTERM"
echo "PASS (RSS ${rss_kib} KiB, stopped ${took} s after SIGTERM)"
