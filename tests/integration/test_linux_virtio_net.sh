#!/usr/bin/env bash
# Linux's virtio_net driver on kiln's virtio-net, inside a network namespace this test makes
# (no packet leaves it; link-local 169.254.77.0/24): the minimal kernel configures eth0 with
# ip= (no user space needed), netconsole sends its log to a UDP listener on the host side of
# the TAP, and the host pings the guest, whose kernel answers. The kernel stays alive waiting
# for a root device that never appears (rootwait); the test then stops kiln.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"

require_kvm
[ "$(id -u)" -eq 0 ] || skip "network namespaces and TAPs need root"
command -v ip >/dev/null && command -v ping >/dev/null || skip "iproute2 and iputils-ping are needed"
[ -e /dev/net/tun ] || skip "no /dev/net/tun"
minimal_kernel
BOOT_TIMEOUT=${KILN_LINUX_BOOT_TIMEOUT:-300}

NS=kiln-test-$$
HOST_IP=169.254.77.1 GUEST_IP=169.254.77.2 GUEST_MAC=02:00:00:77:00:02
trap 'cleanup; ip netns del "$NS" 2>/dev/null' EXIT
ip netns add "$NS" || fail "cannot create network namespace $NS"
ip -n "$NS" link set lo up
ip -n "$NS" tuntap add dev kt0 mode tap || fail "cannot create a TAP in $NS"
ip -n "$NS" addr add "$HOST_IP/24" dev kt0
ip -n "$NS" link set kt0 up

# netconsole's UDP packets, as the host side of the TAP receives them.
ip netns exec "$NS" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 6666))
with open(sys.argv[1], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(2048))
' "$TEST_TMP/netconsole.log" &
track_pid $!

CMDLINE="console=ttyS0 panic=-1 root=/dev/vda rootwait"
CMDLINE+=" ip=$GUEST_IP::$HOST_IP:255.255.255.0::eth0:off"
CMDLINE+=" netconsole=6665@$GUEST_IP/eth0,6666@$HOST_IP/"
ip netns exec "$NS" "$KILN" run --kernel "$VMLINUX" --memory 256M --net "tap=kt0,mac=$GUEST_MAC" \
    --cmdline "$CMDLINE" --console "file:$TEST_TMP/serial.log" --log-level debug \
    --shutdown-grace 0 </dev/null 2>"$TEST_TMP/kiln.err" &
kiln_pid=$!
track_pid "$kiln_pid"

deadline=$((SECONDS + BOOT_TIMEOUT))
until grep -q "IP-Config: Complete" "$TEST_TMP/serial.log" 2>/dev/null; do
    kill -0 "$kiln_pid" 2>/dev/null || fail "kiln ended early: $(tail -3 "$TEST_TMP/kiln.err"); serial: $(tail -5 "$TEST_TMP/serial.log")"
    [ "$SECONDS" -lt "$deadline" ] || fail "no IP-Config within ${BOOT_TIMEOUT}s: $(tail -5 "$TEST_TMP/serial.log")"
    sleep 1
done
grep -E "virtio_net|IP-Config|netconsole|eth0" "$TEST_TMP/serial.log" | sed 's/^/  | /'

pinged=0
for _ in 1 2 3 4 5 6 7 8 9 10; do
    if ip netns exec "$NS" ping -c 2 -W 3 "$GUEST_IP" >"$TEST_TMP/ping.out" 2>&1; then
        pinged=1
        break
    fi
done
cat "$TEST_TMP/ping.out"
sleep 1
kill -TERM "$kiln_pid"
wait "$kiln_pid" 2>/dev/null
grep virtio-net "$TEST_TMP/kiln.err" | sed 's/^/  ! /'

[ "$pinged" -eq 1 ] || fail "the guest did not answer ping"
expect_contains "$TEST_TMP/serial.log" "hwaddr=$GUEST_MAC"
expect_contains "$TEST_TMP/serial.log" "ipaddr=$GUEST_IP"
grep -q "IP-Config: Complete" "$TEST_TMP/netconsole.log" 2>/dev/null ||
    fail "netconsole delivered no kernel log over UDP: $(head -c 500 "$TEST_TMP/netconsole.log" 2>/dev/null)"
echo "netconsole: $(wc -l <"$TEST_TMP/netconsole.log") lines over UDP, e.g. $(grep -m1 "IP-Config" "$TEST_TMP/netconsole.log")"
echo "PASS"
