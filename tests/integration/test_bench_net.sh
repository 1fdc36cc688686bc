#!/usr/bin/env bash
# bench/net still runs end to end in its --quick form (one boot each of kiln and QEMU, 2000
# frames a phase, in a namespace it creates): the figures are printed, not judged.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest net-bench.elf
[ "$(id -u)" -eq 0 ] || skip "network namespaces and TAPs need root"
command -v ip >/dev/null || skip "iproute2 is needed"
[ -e /dev/net/tun ] || skip "no /dev/net/tun"
[ -x "$BUILD_DIR/bench/net-blaster" ] || fail "$BUILD_DIR/bench/net-blaster was not built"
status=0
timeout --kill-after=10 300 python3 "$SOURCE_DIR/bench/net" --quick --build "$BUILD_DIR" \
    >"$TEST_TMP/out" 2>&1 || status=$?
expect_status 0 "$(cat "$TEST_TMP/out")"
for phase in "TX 64 B" "TX 1514 B" "RX 64 B" "RX 1514 B"; do
    grep -qE "^$phase +kiln +[0-9]+ /s" "$TEST_TMP/out" ||
        fail "no kiln $phase figures: $(cat "$TEST_TMP/out")"
    if command -v qemu-system-x86_64 >/dev/null 2>&1; then
        grep -qE "^$phase +qemu microvm +[0-9]+ /s" "$TEST_TMP/out" ||
            fail "no QEMU $phase figures: $(cat "$TEST_TMP/out")"
    fi
done
echo "PASS"
