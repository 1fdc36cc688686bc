#!/bin/sh
# Runs in the nested tier's L1: snapshot and restore of a Linux guest in user space on kiln.
# The L2 test guest counts in a shell loop (kiln.mode=snapshot), writes each number to its
# ext4 disk and prints it with the time and 16 bytes of /dev/hwrng. Mid-count, `kiln ctl
# snapshot --stop` saves it and ends the original; then two clones are restored from that one
# snapshot, one after the other: the first on the same TAP, the second on another TAP and a
# copy of the disk as it was at the snapshot. Each must go on counting from where the original
# stopped, with the right time, the network answering, its own entropy, and a new VM
# generation ID that its kernel reseeds from (the kernel needs CONFIG_VMGENID: the project's
# minimal kernel has it, Debian's cloud kernel does not).
# Results in /out/NAME/results.txt; the clones' ext4 images go back to the host for e2fsck.
#
# Usage: snapshot.sh --name NAME --kernel PATH [--timeout S]
# shellcheck shell=sh
. /nested/repo/tests/nested/l1/lib.sh

NAME='' KERNEL='' TIMEOUT=300 EXT4=/nested/fixtures/ext4.img
INITRD=/nested/cache/nested-guest/initrd.cpio
COUNT=25 SNAP_AT=6
case_args "name kernel timeout" "snapshot.sh --name NAME --kernel PATH" "$@"
[ -f "$EXT4" ] || die "no ext4 image '$EXT4'"

start_case "$NAME"
MAC=02:00:00:6b:00:05
cp "$EXT4" "$DIR/ext4.img"
tap_up tap0 10.0.2.1
CMDLINE="console=ttyS0 loglevel=5 panic=-1 nowatchdog kiln.mode=snapshot kiln.count=$COUNT"
CMDLINE="$CMDLINE kiln.ext4_serial=nested-ext4 kiln.mac=$MAC kiln.ip=10.0.2.2"

# L1's wall clock to the microsecond (busybox's date has no %N; its adjtimex prints the time).
now() { adjtimex | awk '/tv_sec/ { s = $2 } /tv_usec/ { u = $2 } END { printf "%d.%06d", s, u }'; }
# clock_offset SEEN LINE: L1's time SEEN minus the guest's time in its counter LINE, in s.
clock_offset() {
    echo "$2" | tr -d '\r' | sed -n 's/.* time \([0-9.]*\) .*/\1/p' |
        awk -v h="$1" '{ printf "%.2f", h - $1 }'
}
# track_offset FROM TO: waits for the counter's lines FROM to TO and prints the smallest
# difference between L1's time when it first saw a line and the guest's time in it: the
# offset between the two clocks plus L1's least delay in reading the console (it polls every
# 0.2 s, and TCG makes L1 slow), which the smallest of several readings keeps small.
track_offset() {
    n=$1 best=''
    while [ "$n" -le "$2" ]; do
        wait_console "kiln-counter: $n time [0-9.]+ rng [0-9a-f]{32}" 120 || return 1
        seen=$(now)
        line=$(grep -a -m 1 -E "kiln-counter: $n time [0-9.]+ rng [0-9a-f]{32}" "$DIR/ttyS0.log")
        best=$(clock_offset "$seen" "$line" |
            awk -v a="$best" '{ if (a == "" || $1 + 0 < a + 0) print $1; else print a }')
        n=$((n + 1))
    done
    echo "$best"
}
# counter_lines [LOG]: the counter's numbers in LOG (or stdin), one a line.
counter_lines() { sed -n 's/.*kiln-counter: \([0-9]*\) .*/\1/p' "$@" | tr -d '\r'; }

# --- the original -------------------------------------------------------------------------------
start_vmm /dev/null kiln run --kernel "$KERNEL" --initrd "$INITRD" --cpus 2 --memory 256M \
    --cmdline "$CMDLINE" --disk "$DIR/ext4.img,serial=nested-ext4" --net "tap=tap0,mac=$MAC" \
    --rng --console "file:$DIR/ttyS0.log" --api-socket "$DIR/api.sock" --log-level info
# How far the guest's clock is from L1's before the snapshot: Linux set it at boot from the
# CMOS RTC, to the second, so it may differ by up to a second from the start.
if wait_console "kiln-counter: 2 " "$TIMEOUT"; then
    BASE_OFFSET=$(track_offset 2 "$SNAP_AT")
fi
if [ -z "${BASE_OFFSET:-}" ]; then
    vmm_running && mark_hung "no 'kiln-counter: $SNAP_AT' within $TIMEOUT s of the boot"
    wait_vmm 0
    finish_case "snapshot"
fi
if kiln ctl "$DIR/api.sock" snapshot "$DIR/snap" --stop >"$DIR/snapshot.out" 2>&1; then
    host_result PASS snapshot "$(cat "$DIR/snapshot.out")"
else
    host_result FAIL snapshot "kiln ctl snapshot: $(cat "$DIR/snapshot.out")"
fi
wait_vmm 60
if [ "$VMM_STATUS" = 0 ]; then
    host_result PASS original-stop "kiln ended with status 0 after the snapshot"
else
    host_result FAIL original-stop "kiln ended with status $VMM_STATUS after snapshot --stop, expected 0"
fi
echo "kiln-check: INFO clock: before the snapshot, L1 saw the guest's lines at least $BASE_OFFSET s after the time in them" >>"$RESULTS"
LAST=$(counter_lines "$DIR/ttyS0.log" | tail -n 1)
mv "$DIR/ttyS0.log" "$DIR/original.log"
cp "$DIR/vmm.stderr" "$DIR/original.stderr"
echo "kiln-check: INFO snapshot: the original's last line was number $LAST; memory file $(du -k "$DIR/snap/memory.kiln" | cut -f1) KiB on disk" >>"$RESULTS"
# The disk as the snapshot saw it, with its modification time to the nanosecond (GNU touch;
# kiln restore refuses a disk whose time changed): the second clone runs on this copy.
cp "$DIR/ext4.img" "$DIR/ext4-at-snapshot.img"
touch -r "$DIR/ext4.img" "$DIR/ext4-at-snapshot.img"

# clone NAME TAP: restores the snapshot with its console in DIR/ttyS0.log and checks it: the
# counter goes on from where the original stopped to COUNT (the original's console and the
# clone's, one after the other, are the stream of one guest: a line the snapshot cut in two
# is whole again), the guest's clock agrees with L1's, L1 can ping it, and it powers off
# (status 0). Leaves its log in DIR/NAME.log.
clone() {
    start_vmm /dev/null kiln restore "$DIR/snap" --console "file:$DIR/ttyS0.log" \
        --net "tap=$2,mac=$MAC" --api-socket "$DIR/$1.sock" --log-level info
    if wait_console "kiln-counter: [0-9]+ time [0-9.]+ rng [0-9a-f]{32}" 120; then
        first=$(grep -a -m 1 -E 'kiln-counter: [0-9]+ time [0-9.]+ rng [0-9a-f]{32}' "$DIR/ttyS0.log" |
            sed -n 's/.*kiln-counter: \([0-9]*\) .*/\1/p')
        # The guest's clock must have gone on with L1's across the time the VM was saved: the
        # offset may move by the noise in L1's reading, not by the seconds the VM was saved.
        offset=$(track_offset "$first" $((first + 3)))
        if [ -n "$offset" ] && awk -v o="$offset" -v b="$BASE_OFFSET" 'BEGIN { d = o - b; exit !(d > -1 && d < 1) }'; then
            host_result PASS "$1-clock" "L1 saw the guest's lines $first-$((first + 3)) at least $offset s after the time in them (before the snapshot: $BASE_OFFSET s)"
        else
            host_result FAIL "$1-clock" "L1 saw the guest's lines $first-$((first + 3)) at least '$offset' s after the time in them, before the snapshot $BASE_OFFSET s: the guest's clock is off by the difference"
        fi
        if ping -c 3 -W 5 10.0.2.2 >"$DIR/$1.ping" 2>&1; then
            host_result PASS "$1-ping" "ping 10.0.2.2 through $2: $(grep -o '[0-9]* packets received' "$DIR/$1.ping")"
        else
            host_result FAIL "$1-ping" "ping 10.0.2.2 through $2: $(tail -n 2 "$DIR/$1.ping" | tr '\n' ' ')"
        fi
    fi
    wait_vmm "$TIMEOUT"
    mv "$DIR/ttyS0.log" "$DIR/$1.log"
    cp "$DIR/vmm.stderr" "$DIR/$1.stderr"
    got=$(cat "$DIR/original.log" "$DIR/$1.log" | counter_lines | tr '\n' ' ')
    want=$(seq 1 "$COUNT" | tr '\n' ' ')
    after=$(counter_lines "$DIR/$1.log" | head -n 1)
    if [ "$got" = "$want" ] && [ -n "$after" ]; then
        host_result PASS "$1-continues" "the original counted to $LAST, the clone went on from $after to $COUNT: none missing or repeated"
    else
        host_result FAIL "$1-continues" "the original and the clone counted '$got', expected '$want'"
    fi
    # The restore gave the guest a new VM generation ID, and its kernel reseeded once.
    vmgenid=$(grep -a -m 1 'kiln-check: INFO vmgenid:' "$DIR/$1.log" | tr -d '\r')
    case $vmgenid in
    *"bound 1, reseeds 1") host_result PASS "$1-vmgenid" "the guest's vmgenid driver saw a new generation ID and reseeded its CRNG once (${vmgenid#*vmgenid: })" ;;
    *) host_result FAIL "$1-vmgenid" "expected the vmgenid driver bound and one 'crng reseeded due to virtual machine fork', got '${vmgenid#*vmgenid: }'" ;;
    esac
    if [ "$VMM_STATUS" = 0 ]; then
        host_result PASS "$1-exit" "kiln restore ended with status 0 (the guest powered off)"
    else
        host_result FAIL "$1-exit" "kiln restore ended with status $VMM_STATUS, expected 0"
    fi
}

clone clone1 tap0
gzip -c "$DIR/ext4.img" >"$OUT/clone1-ext4.img.gz"
mv "$DIR/ext4-at-snapshot.img" "$DIR/ext4.img"
ip addr flush dev tap0
tap_up tap1 10.0.2.1
clone clone2 tap1
gzip -c "$DIR/ext4.img" >"$OUT/clone2-ext4.img.gz"

# Each clone read its own entropy: the same line numbers carry other /dev/hwrng bytes.
rng_of() { sed -n "s/.*kiln-counter: $2 .* rng \([0-9a-f]*\).*/\1/p" "$DIR/$1.log" | tr -d '\r'; }
a=$(rng_of clone1 "$COUNT") b=$(rng_of clone2 "$COUNT")
if [ ${#a} -eq 32 ] && [ ${#b} -eq 32 ] && [ "$a" != "$b" ]; then
    host_result PASS clones-rng "line $COUNT: clone1's /dev/hwrng gave $a, clone2's $b"
else
    host_result FAIL clones-rng "line $COUNT: clone1's /dev/hwrng gave '$a', clone2's '$b' (expected two different 16-byte values)"
fi
echo "$COUNT" >"$OUT/count"

cat "$DIR/original.log" "$DIR/clone1.log" "$DIR/clone2.log" >"$DIR/ttyS0.log"
cat "$DIR/original.stderr" "$DIR/clone1.stderr" "$DIR/clone2.stderr" >"$DIR/vmm.stderr"
cp "$DIR/original.log" "$DIR/clone1.log" "$DIR/clone2.log" "$OUT/" 2>/dev/null
REQUIRED="snapshot original-stop counter"
for c in clone1 clone2; do
    REQUIRED="$REQUIRED $c-continues $c-clock $c-ping $c-vmgenid $c-exit"
done
finish_case "$REQUIRED clones-rng kernel-log"
