#!/usr/bin/env bash
# Rate limits measured from the host (ratelimit_check.py): a disk limited in bytes and in
# operations runs at its limits within 25% and unlimited at several times them; the control
# API's PATCH changes the rate mid-transfer, refuses bad bodies in one line each, and the next
# snapshot holds the new limits; a virtio-rng request over its limit waits for its tokens.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest blk-bench.elf
require_guest rng.elf

IMG=$TEST_TMP/disk.img
truncate -s 32M "$IMG"
timeout --kill-after=10 240 python3 "$SOURCE_DIR/tests/integration/ratelimit_check.py" "$KILN" \
    "$GUEST_DIR/blk-bench.elf" "$IMG" "$TEST_TMP" >"$TEST_TMP/check.out" 2>&1 ||
    fail "$(cat "$TEST_TMP/check.out")"
cat "$TEST_TMP/check.out"

# rng.elf asks twice for 64 bytes: with 64 bytes a second, the second request waits ~1 s.
rng_run() { # rng_run [FLAGS]: sets seconds
    local start
    start=$(now_us)
    run_kiln "$TEST_TMP/rng.out" "$TEST_TMP/rng.err" run --kernel "$GUEST_DIR/rng.elf" --rng \
        --device-discovery cmdline "$@"
    seconds=$(seconds_since "$start")
    expect_status 0 "$(cat "$TEST_TMP/rng.out" "$TEST_TMP/rng.err")"
    expect_contains "$TEST_TMP/rng.out" "rng: 2 x 64 random bytes"
}
rng_run
free=$seconds
rng_run --rng-limit bw=64
limited=$seconds
echo "rng.elf: ${free} s without a limit, ${limited} s with bw=64"
python3 -c "import sys; sys.exit(0 if float('$limited') - float('$free') >= 0.8 else 1)" ||
    fail "rng with bw=64 took ${limited} s, without a limit ${free} s (expected ~1 s more)"

# Bad limits end in one line before the VM starts.
run_kiln "$TEST_TMP/bad.out" "$TEST_TMP/bad.err" run --kernel "$GUEST_DIR/rng.elf" \
    --rng-limit ops=5
expect_status 125 "--rng-limit without --rng"
expect_lines "$TEST_TMP/bad.err" 1
expect_contains "$TEST_TMP/bad.err" "--rng-limit: there is no virtio-rng to limit (expected --rng too)"
echo "PASS"
