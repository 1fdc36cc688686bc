#!/bin/sh
# Runs in the nested tier's L1: live migration of a Linux guest with a real user space between
# two kiln processes. The L2 guest counts in a shell loop (kiln.mode=snapshot), writes each
# number to its ext4 disk, prints it, and sends it to L1 over one TCP connection it keeps
# open. Mid-count, `kiln ctl migrate` moves it to a `kiln receive` on another TAP (given the
# first TAP's MAC, so the guest's ARP entry for L1 stays right). Afterwards the counter goes on
# from where it was, none missing or repeated; the TCP connection carries every line (it
# survived the move); L1 can ping the guest; the guest powers off (status 0). The ext4 image
# goes back to the host for e2fsck. Results in /out/NAME/results.txt.
#
# Usage: migrate.sh --name NAME --kernel PATH [--timeout S]
# shellcheck shell=sh
. /nested/repo/tests/nested/l1/lib.sh

NAME='' KERNEL='' TIMEOUT=300 EXT4=/nested/fixtures/ext4.img
INITRD=/nested/cache/nested-guest/initrd.cpio
COUNT=30 MIGRATE_AT=5
case_args "name kernel timeout" "migrate.sh --name NAME --kernel PATH" "$@"
[ -f "$EXT4" ] || die "no ext4 image '$EXT4'"

start_case "$NAME"
MAC=02:00:00:6b:00:06
cp "$EXT4" "$DIR/ext4.img"
tap_up tap0 10.0.2.1
# The destination's TAP, down and without an address until the switch-over, with tap0's MAC.
ip link show tap1 >/dev/null 2>&1 || tunctl -t tap1 >/dev/null || die "tunctl -t tap1 failed"
ip addr flush dev tap1
ip link set tap1 down
ip link set tap1 address "$(cat /sys/class/net/tap0/address)" || die "cannot give tap1 tap0's MAC"
# L1's end of the guest's TCP connection: every line the guest sends. busybox nc ends the
# connection when its stdin ends, so its stdin is a fifo held open until the case ends.
mkfifo "$DIR/nc.in"
nc -l -p 7000 <"$DIR/nc.in" >"$DIR/tcp.log" 2>/dev/null &
NC_PID=$!
# However the case ends (finish_case exits): a listener left behind would hold port 7000, and
# a retried case's guest would connect to it, not to the retry's own listener.
trap 'kill "$NC_PID" 2>/dev/null' EXIT
exec 5>"$DIR/nc.in"
CMDLINE="console=ttyS0 loglevel=5 panic=-1 nowatchdog kiln.mode=snapshot kiln.count=$COUNT"
CMDLINE="$CMDLINE kiln.ext4_serial=nested-ext4 kiln.mac=$MAC kiln.ip=10.0.2.2 kiln.tcp=10.0.2.1:7000"
counter_lines() { sed -n 's/.*kiln-counter: \([0-9]*\) .*/\1/p' "$@" | tr -d '\r'; }

start_vmm /dev/null kiln run --kernel "$KERNEL" --initrd "$INITRD" --cpus 2 --memory 256M \
    --cmdline "$CMDLINE" --disk "$DIR/ext4.img,serial=nested-ext4" --net "tap=tap0,mac=$MAC" \
    --rng --console "file:$DIR/ttyS0.log" --api-socket "$DIR/api.sock" --log-level info
if ! wait_console "kiln-counter: $MIGRATE_AT " "$TIMEOUT"; then
    vmm_running && mark_hung "no 'kiln-counter: $MIGRATE_AT' within $TIMEOUT s of the boot"
    wait_vmm 0
    finish_case "migrate"
fi
SOURCE_PID=$VMM_PID
: >"$DIR/dst.log"
kiln receive --listen "unix:$DIR/mig.sock" --console "file:$DIR/dst.log" \
    --net "tap=tap1,mac=$MAC" --api-socket "$DIR/dst.sock" --log-level info \
    </dev/null >"$DIR/dst.stdout" 2>"$DIR/dst.stderr" &
RECEIVER_PID=$!
n=0
while [ ! -S "$DIR/mig.sock" ] && [ "$n" -lt 100 ]; do
    sleep 0.2
    n=$((n + 1))
done
if kiln ctl "$DIR/api.sock" migrate "unix:$DIR/mig.sock" >"$DIR/migrate.out" 2>&1; then
    host_result PASS migrate "$(cat "$DIR/migrate.out")"
else
    host_result FAIL migrate "kiln ctl migrate: $(cat "$DIR/migrate.out")"
fi
wait_vmm 60
if [ "$VMM_STATUS" = 0 ]; then
    host_result PASS source-stop "the source kiln ended with status 0 after the migration"
else
    host_result FAIL source-stop "the source kiln ended with status $VMM_STATUS, expected 0"
fi
LAST=$(counter_lines "$DIR/ttyS0.log" | tail -n 1)
mv "$DIR/ttyS0.log" "$DIR/source.log"
cp "$DIR/vmm.stderr" "$DIR/source.stderr"

# The guest is on tap1 now: L1's address moves there (its TCP socket is bound to the address,
# not to the TAP, so the connection goes on).
ip addr flush dev tap0
ip link set tap0 down
tap_up tap1 10.0.2.1
VMM_PID=$RECEIVER_PID
VMM_START=$(uptime_s)
next=$((LAST + 1))
if wait_console "kiln-counter: $next " 120 "$DIR/dst.log"; then
    if ping -c 3 -W 5 10.0.2.2 >"$DIR/ping.out" 2>&1; then
        host_result PASS ping "ping 10.0.2.2 through tap1 after the migration: $(grep -o '[0-9]* packets received' "$DIR/ping.out")"
    else
        host_result FAIL ping "ping 10.0.2.2 through tap1 after the migration: $(tail -n 2 "$DIR/ping.out" | tr '\n' ' ')"
    fi
fi
wait_vmm "$TIMEOUT"
if [ "$VMM_STATUS" = 0 ]; then
    host_result PASS destination-exit "kiln receive ended with status 0 (the guest powered off)"
else
    host_result FAIL destination-exit "kiln receive ended with status $VMM_STATUS, expected 0: $(tail -n 3 "$DIR/dst.stderr" | tr '\n' ' ')"
fi
exec 5>&-
kill "$NC_PID" 2>/dev/null
got=$(cat "$DIR/source.log" "$DIR/dst.log" | counter_lines | tr '\n' ' ')
want=$(seq 1 "$COUNT" | tr '\n' ' ')
after=$(counter_lines "$DIR/dst.log" | head -n 1)
if [ "$got" = "$want" ] && [ -n "$after" ]; then
    host_result PASS continues "the source counted to $LAST, the destination went on from $after to $COUNT: none missing or repeated"
else
    host_result FAIL continues "the source and the destination counted '$got', expected '$want'"
fi
tcp=$(sed -n 's/^kiln-counter-tcp: \([0-9]*\).*/\1/p' "$DIR/tcp.log" | tr '\n' ' ')
if [ "$tcp" = "$want" ]; then
    host_result PASS tcp "one TCP connection carried lines 1 to $COUNT across the migration"
else
    host_result FAIL tcp "the guest's TCP connection carried '$tcp', expected '$want'"
fi
# A migrated VM is the same VM: no new generation ID, so its kernel does not reseed.
vmgenid=$(grep -a -m 1 'kiln-check: INFO vmgenid:' "$DIR/dst.log" | tr -d '\r')
case $vmgenid in
*"bound 1, reseeds 0") host_result PASS vmgenid "the vmgenid driver saw no new generation (${vmgenid#*vmgenid: })" ;;
*) host_result FAIL vmgenid "expected the vmgenid driver bound and no reseed, got '${vmgenid#*vmgenid: }'" ;;
esac
gzip -c "$DIR/ext4.img" >"$OUT/ext4.img.gz"
echo "$COUNT" >"$OUT/count"
cat "$DIR/source.log" "$DIR/dst.log" >"$DIR/ttyS0.log"
cat "$DIR/source.stderr" "$DIR/dst.stderr" >"$DIR/vmm.stderr"
cp "$DIR/source.log" "$DIR/dst.log" "$DIR/tcp.log" "$OUT/" 2>/dev/null
finish_case "migrate source-stop ping destination-exit continues tcp vmgenid counter kernel-log"
