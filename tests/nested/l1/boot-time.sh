#!/bin/sh
# Runs in the nested tier's L1 for bench/nested: boots the same L2 (Debian's cloud kernel as an
# ELF vmlinux through PVH, the test guest's initramfs, 2 vCPUs, 512 MiB, a disk and entropy)
# on kiln and on QEMU microvm in turns, and records for each boot the seconds from starting
# the VMM to the guest's "init running" line and to the VMM's exit, on L1's clock.
#
# Usage: boot-time.sh [--runs N]   (default 3 boots of each, alternating, kiln first)
# Writes /out/boot-time/samples.txt: "VMM RUN init=SECONDS exit=SECONDS status=N" per boot.
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

boot_once() { # boot_once VMM RUN
    t0=$(uptime_s)
    status=0
    if [ "$1" = kiln ]; then
        kiln run --kernel "$KERNEL" --initrd "$INITRD" --cpus 2 --memory 512M --rng \
            --disk "$DIR/disk.img" --cmdline "$CMDLINE" </dev/null 2>"$DIR/$1.$2.err" |
            stamp "$t0" >"$DIR/$1.$2.log" || status=$?
    else
        qemu-system-x86_64 -M microvm,acpi=on -enable-kvm -cpu host -smp 2 -m 512M -nodefaults \
            -no-reboot -display none -L /nested/qemu -kernel "$KERNEL" -initrd "$INITRD" \
            -append "$CMDLINE" -serial stdio -device virtio-rng-device \
            -drive "id=d0,file=$DIR/disk.img,format=raw,if=none" \
            -device virtio-blk-device,drive=d0 </dev/null 2>"$DIR/$1.$2.err" |
            stamp "$t0" >"$DIR/$1.$2.log" || status=$?
    fi
    total=$(seconds_since "$t0")
    init=$(awk '/kiln-linux-guest: init running/ { print $1; exit }' "$DIR/$1.$2.log")
    echo "$1 $2 init=${init:-none} exit=$total status=$status" | tee -a "$OUT/samples.txt"
    cp "$DIR/$1.$2.log" "$OUT/"
}

i=1
while [ "$i" -le "$RUNS" ]; do
    boot_once kiln "$i"
    boot_once qemu "$i"
    i=$((i + 1))
done
grep -q 'init=none' "$OUT/samples.txt" && exit 1
exit 0
