#!/bin/sh
# Runs in the nested tier's L1: the L2 test guest in reboot mode on kiln (--on-reset restart)
# or QEMU microvm (which restarts on a reset unless -no-reboot). The first boot marks its disk
# and runs `reboot -f` (on kiln with Linux's default method, which jumps to the reset vector),
# the second finds the mark and powers off: init must run twice and the VMM must exit 0.
# Results in /out/NAME/results.txt.
#
# Usage: reboot.sh --name NAME --vmm kiln|qemu --kernel PATH [--timeout S]
# shellcheck shell=sh
. /nested/repo/tests/nested/l1/lib.sh

NAME='' VMM=kiln KERNEL='' TIMEOUT=300
INITRD=/nested/cache/nested-guest/initrd.cpio
case_args "name vmm kernel timeout" "reboot.sh --name NAME --vmm kiln|qemu --kernel PATH" "$@"

start_case "$NAME"
TOKEN=tok$$$(date +%s)
dd if=/dev/zero of="$DIR/mark.img" bs=1M count=1 2>/dev/null
# nowatchdog: on a busy host, TCG (the tier's L0) starves L2's vCPUs for tens of seconds and
# the guest's lockup detector then reports a "soft lockup" (seen with QEMU microvm in
# test_nested_peer at load 10); a guest that really stops is still caught by the time bound.
CMDLINE="console=ttyS0 loglevel=5 panic=-1 nowatchdog kiln.mode=reboot kiln.mark_serial=nested-mark kiln.token=$TOKEN"
if [ "$VMM" = kiln ]; then
    set -- kiln run --kernel "$KERNEL" --initrd "$INITRD" --cpus 2 --memory 512M \
        --cmdline "$CMDLINE" --disk "$DIR/mark.img,serial=nested-mark" --on-reset restart \
        --console "file:$DIR/ttyS0.log" --log-level info
else
    # QEMU microvm cannot take Linux's default reboot on hardware-reduced ACPI (a jump to the
    # firmware's reset vector: the guest hangs there); its ACPI reset register works.
    CMDLINE="$CMDLINE reboot=acpi"
    set -- qemu-system-x86_64 -M microvm,acpi=on -enable-kvm -cpu host -smp 2 -m 512M \
        -nodefaults -display none -L /nested/qemu -kernel "$KERNEL" -initrd "$INITRD" \
        -append "$CMDLINE" -serial "file:$DIR/ttyS0.log" \
        -drive "id=mark,file=$DIR/mark.img,format=raw,if=none" \
        -device virtio-blk-device,drive=mark,serial=nested-mark
fi
start_vmm /dev/null "$@"
wait_vmm "$TIMEOUT"

BOOTS=$(grep -c 'kiln-linux-guest: init running' "$DIR/ttyS0.log")
if [ "$BOOTS" = 2 ]; then
    host_result PASS boots "init ran twice: the guest rebooted and came back"
else
    host_result FAIL boots "init ran $BOOTS time(s), expected 2"
fi
if [ "$VMM_STATUS" = 0 ]; then
    host_result PASS vmm-exit "$VMM exited 0 after the second boot's power-off"
else
    host_result FAIL vmm-exit "$VMM exited $VMM_STATUS, expected 0"
fi
finish_case "reboot boots vmm-exit kernel-log"
