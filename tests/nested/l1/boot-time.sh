#!/bin/sh
# Runs in the nested tier's L1 for bench/nested: boots the same L2 (Debian's cloud kernel as an
# ELF vmlinux through PVH, the test guest's initramfs, 2 vCPUs, 512 MiB, a disk and entropy)
# on kiln and on QEMU microvm in turns, and records for each boot the seconds from starting
# the VMM to the guest's "init running" line and to the VMM's exit, on L1's clock.
#
# Usage: boot-time.sh [--runs N]   (default 3 boots of each, alternating, kiln first)
# Writes /out/boot-time/samples.txt: "VMM RUN init=SECONDS exit=SECONDS status=N" per boot; a
# boot still running after BOOT_BOUND seconds is killed (status 137) and counted init=none.
# shellcheck shell=sh
. /nested/repo/tests/nested/l1/lib.sh

RUNS=3
[ "${1:-}" = --runs ] && RUNS=$2
start_case boot-time
KERNEL=/nested/cache/linux-guest/vmlinux
INITRD=/nested/cache/nested-guest/initrd.cpio
CMDLINE="console=ttyS0 loglevel=5 panic=-1 kiln.checks=none"
dd if=/dev/zero of="$DIR/disk.img" bs=1M count=8 2>/dev/null
: >"$OUT/samples.txt"

# Each console line with L1's seconds since T0 in front, as it arrives.
stamp() {
    awk -v t0="$1" '{ getline up < "/proc/uptime"; close("/proc/uptime"); split(up, u, " ");
        printf "%.2f %s\n", u[1] - t0, $0; fflush() }'
}

# A boot that has not ended after this many seconds is stopped and counted as not reaching init
# (a hang must not cost the whole L1 session, and its console must come back to be read).
BOOT_BOUND=150

boot_once() { # boot_once VMM RUN
    t0=$(uptime_s)
    if [ "$1" = kiln ]; then
        set -- "$1" "$2" kiln run --kernel "$KERNEL" --initrd "$INITRD" --cpus 2 --memory 512M \
            --rng --disk "$DIR/disk.img" --cmdline "$CMDLINE"
    else
        set -- "$1" "$2" qemu-system-x86_64 -M microvm,acpi=on -enable-kvm -cpu host -smp 2 \
            -m 512M -nodefaults -no-reboot -display none -L /nested/qemu -kernel "$KERNEL" \
            -initrd "$INITRD" -append "$CMDLINE" -serial stdio -device virtio-rng-device \
            -drive "id=d0,file=$DIR/disk.img,format=raw,if=none" -device virtio-blk-device,drive=d0
    fi
    vmm=$1 run=$2
    shift 2
    # The console, stamped, into the boot's log and onto L1's console as it comes.
    echo 0 >"$DIR/$vmm.$run.status"
    { timeout -s KILL "$BOOT_BOUND" "$@" </dev/null 2>"$DIR/$vmm.$run.err" ||
        echo $? >"$DIR/$vmm.$run.status"; } |
        stamp "$t0" | tee "$DIR/$vmm.$run.log" | awk -v p="$vmm.$run| " '{ print p $0; fflush() }'
    total=$(seconds_since "$t0")
    status=$(cat "$DIR/$vmm.$run.status")
    [ "$status" = 0 ] || sed "s/^/$vmm.$run! /" "$DIR/$vmm.$run.err" # why it ended, on L1's console
    init=$(awk '/kiln-linux-guest: init running/ { print $1; exit }' "$DIR/$vmm.$run.log")
    echo "$vmm $run init=${init:-none} exit=$total status=$status" | tee -a "$OUT/samples.txt"
    cp "$DIR/$vmm.$run.log" "$DIR/$vmm.$run.err" "$OUT/"
}

i=1
while [ "$i" -le "$RUNS" ]; do
    boot_once kiln "$i"
    boot_once qemu "$i"
    i=$((i + 1))
done
grep -q 'init=none' "$OUT/samples.txt" && exit 1
exit 0
