#!/usr/bin/env bash
# The guest kit's virtio-net driver (net.elf: ARP request out, ARP reply in) against kiln and
# against QEMU microvm on the same TAP, inside a network namespace this test creates (nothing
# leaves it). Also the TAP errors a user meets: a TAP another process holds, a bad MAC.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"

require_kvm
require_guest net.elf
[ "$(id -u)" -eq 0 ] || skip "network namespaces and TAPs need root"
command -v ip >/dev/null || skip "iproute2 is needed"
[ -e /dev/net/tun ] || skip "no /dev/net/tun"

NS=kiln-test-$$
HOST_IP=169.254.78.1 GUEST_IP=169.254.78.2
trap 'cleanup; ip netns del "$NS" 2>/dev/null' EXIT
ip netns add "$NS" || fail "cannot create network namespace $NS"
ip -n "$NS" tuntap add dev kt0 mode tap || fail "cannot create a TAP in $NS"
ip -n "$NS" addr add "$HOST_IP/24" dev kt0
ip -n "$NS" link set kt0 up
HOST_MAC=$(ip -n "$NS" -br link show kt0 | awk '{print $3}')
GUEST_ARGS="net.ip=$GUEST_IP net.peer=$HOST_IP"

status=0
timeout 60 ip netns exec "$NS" "$KILN" run --kernel "$GUEST_DIR/net.elf" \
    --net tap=kt0,mac=02:00:00:78:00:02 --device-discovery cmdline --cmdline "$GUEST_ARGS" \
    </dev/null >"$TEST_TMP/kiln.out" 2>"$TEST_TMP/kiln.err" || status=$?
expect_status 0 "$(cat "$TEST_TMP/kiln.out" "$TEST_TMP/kiln.err")"
expect_contains "$TEST_TMP/kiln.out" "net: mac 02:00:00:78:00:02"
expect_contains "$TEST_TMP/kiln.out" "net: ARP reply from $HOST_IP: $HOST_MAC"

if command -v qemu-system-x86_64 >/dev/null 2>&1; then
    status=0
    timeout 60 ip netns exec "$NS" qemu-system-x86_64 -M microvm,acpi=off -enable-kvm \
        -cpu host,-arch-capabilities -nodefaults -no-reboot -display none -serial stdio \
        -device isa-debug-exit,iobase=0xf4,iosize=4 -global virtio-mmio.force-legacy=false \
        -netdev tap,id=n0,ifname=kt0,script=no,downscript=no \
        -device virtio-net-device,netdev=n0,mac=02:00:00:78:00:03 \
        -kernel "$GUEST_DIR/net.elf" -append "$GUEST_ARGS" \
        </dev/null >"$TEST_TMP/qemu.out" 2>"$TEST_TMP/qemu.err" || status=$?
    expect_status 1 "QEMU: (0 << 1) | 1; $(cat "$TEST_TMP/qemu.out" "$TEST_TMP/qemu.err")"
    expect_contains "$TEST_TMP/qemu.out" "net: ARP reply from $HOST_IP: $HOST_MAC"
else
    echo "qemu-system-x86_64 not installed: the peer run is skipped"
fi

# A TAP someone else holds open: one line, status 125.
ip netns exec "$NS" python3 -c '
import fcntl, struct, sys, time
fd = open("/dev/net/tun", "r+b", buffering=0)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", b"kt0", 0x0002 | 0x1000 | 0x4000))
print("held", flush=True)
time.sleep(60)
' >"$TEST_TMP/holder.out" &
track_pid $!
for _ in $(seq 1 50); do grep -q held "$TEST_TMP/holder.out" && break; sleep 0.1; done
status=0
ip netns exec "$NS" "$KILN" run --kernel "$GUEST_DIR/net.elf" --net tap=kt0 </dev/null \
    >/dev/null 2>"$TEST_TMP/busy.err" || status=$?
expect_status 125
expect_lines "$TEST_TMP/busy.err" 1
expect_contains "$TEST_TMP/busy.err" "--net: TAP 'kt0' is busy"

run_kiln "$TEST_TMP/mac.out" "$TEST_TMP/mac.err" run --kernel "$GUEST_DIR/net.elf" --net tap=kt0,mac=zz
expect_status 125
expect_lines "$TEST_TMP/mac.err" 1
expect_contains "$TEST_TMP/mac.err" "is not a MAC address"

# No /dev/net/tun (a tmpfs hides /dev/net in a mount namespace of its own): one line, 125.
status=0
ip netns exec "$NS" unshare -m sh -c 'mount -t tmpfs none /dev/net && exec "$@"' sh \
    "$KILN" run --kernel "$GUEST_DIR/net.elf" --net tap=kt9 </dev/null >/dev/null \
    2>"$TEST_TMP/notun.err" || status=$?
expect_status 125 "$(cat "$TEST_TMP/notun.err")"
expect_lines "$TEST_TMP/notun.err" 1
expect_contains "$TEST_TMP/notun.err" \
    "kiln: error: --net: /dev/net/tun does not exist (expected the tun module: modprobe tun)"

# No permission: without CAP_NET_ADMIN kiln may not create a TAP: one line, 125, no TAP left.
if command -v setpriv >/dev/null 2>&1; then
    status=0
    ip netns exec "$NS" setpriv --bounding-set -net_admin "$KILN" run \
        --kernel "$GUEST_DIR/net.elf" --net tap=kt9 </dev/null >/dev/null \
        2>"$TEST_TMP/perm.err" || status=$?
    expect_status 125 "$(cat "$TEST_TMP/perm.err")"
    expect_lines "$TEST_TMP/perm.err" 1
    expect_contains "$TEST_TMP/perm.err" \
        "kiln: error: --net: no permission to open or create TAP 'kt9' (expected CAP_NET_ADMIN"
    ! ip netns exec "$NS" ip link show kt9 >/dev/null 2>&1 || fail "a TAP kt9 was left behind"
else
    echo "setpriv not installed: the no-permission case is skipped"
fi
echo "PASS"
