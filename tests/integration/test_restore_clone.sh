#!/usr/bin/env bash
# kiln restore --clone on a VM with a NIC (a TAP in a network namespace this test creates): the
# clone's NIC gets a new MAC in its config space, which the vmgenid guest reads back at the
# restore's VM generation interrupt; a plain restore keeps the snapshot's MAC; --clone keeps a
# mac= given with the restore's own --net; a plain restore with mac= applies it too.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"

require_kvm
require_guest vmgenid.elf
[ "$(id -u)" -eq 0 ] || skip "network namespaces and TAPs need root"
command -v ip >/dev/null || skip "iproute2 is needed"
[ -e /dev/net/tun ] || skip "no /dev/net/tun"

NS=kiln-clone-$$
trap 'cleanup; ip netns del "$NS" 2>/dev/null' EXIT
ip netns add "$NS" || fail "cannot create network namespace $NS"
ip -n "$NS" tuntap add dev kt0 mode tap || fail "cannot create a TAP in $NS"
ORIG_MAC=02:00:00:c1:00:01
SNAP=$TEST_TMP/snap

wait_for() { # wait_for PATTERN FILE
    local i
    for ((i = 0; i < 600; i++)); do
        grep -qE -- "$1" "$2" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "no '$1' in $2 within 60 s: $(tail -n 5 "$2")"
}
# vm NAME ARGS...: kiln in the namespace, in the background, its pid in $PID.
vm() {
    local name=$1
    shift
    ip netns exec "$NS" "$KILN" "$@" --log-level info >"$TEST_TMP/$name.txt" \
        2>"$TEST_TMP/$name.err" </dev/null &
    PID=$!
    track_pid "$PID"
}
# mac_after_restore NAME: the MAC the guest read at the restore's notify.
mac_after_restore() { sed -n 's/^vmgenid: id [0-9a-f]* notifies 1 mac \(.*\)$/\1/p' "$TEST_TMP/$1.txt"; }
# restored NAME ARGS...: restores the snapshot, waits for the notify, stops it; $MAC is what
# the guest read.
restored() {
    local name=$1
    shift
    vm "$name" restore "$SNAP" "$@"
    wait_for "^vmgenid: id .* notifies 1 mac " "$TEST_TMP/$name.txt"
    kill -TERM "$PID"
    wait "$PID" || fail "$name: kiln did not end with status 0 after the power button: $(cat "$TEST_TMP/$name.err")"
    MAC=$(mac_after_restore "$name")
    echo "$name: the guest reads $MAC"
}

vm orig run --kernel "$GUEST_DIR/vmgenid.elf" --net "tap=kt0,mac=$ORIG_MAC" \
    --device-discovery cmdline --shutdown-grace 5 --api-socket "$TEST_TMP/orig.sock"
wait_for "^vmgenid: id .* notifies 0 mac $ORIG_MAC\$" "$TEST_TMP/orig.txt"
timeout 60 "$KILN" ctl "$TEST_TMP/orig.sock" snapshot "$SNAP" --stop >/dev/null || fail "snapshot --stop"
wait "$PID" || fail "the original did not end with status 0 after snapshot --stop"

restored plain
[ "$MAC" = "$ORIG_MAC" ] || fail "a plain restore changed the MAC to $MAC"
expect_not_contains "$TEST_TMP/plain.err" "from the config, not the snapshot's"

restored clone1 --clone
[ "$MAC" != "$ORIG_MAC" ] || fail "--clone kept the original's MAC"
[[ $MAC == 02:4b:* ]] || fail "--clone's MAC $MAC is not kiln's locally administered 02:4b:..."
expect_contains "$TEST_TMP/clone1.err" "virtio-net at 0xd0000000: MAC $MAC from the config, not the snapshot's $ORIG_MAC"
FIRST=$MAC
restored clone2 --clone
if [ "$MAC" = "$ORIG_MAC" ] || [ "$MAC" = "$FIRST" ]; then
    fail "the second clone's MAC $MAC is the original's or the first clone's"
fi

restored given --clone --net tap=kt0,mac=02:00:00:c1:00:09
[ "$MAC" = 02:00:00:c1:00:09 ] || fail "--clone did not keep the restore's own mac=: $MAC"
restored plain_given --net tap=kt0,mac=02:00:00:c1:00:0a
[ "$MAC" = 02:00:00:c1:00:0a ] || fail "a restore's mac= was not applied: $MAC"
echo "PASS: --clone gives new MACs, a plain restore keeps the snapshot's, a restore's mac= wins"
