#!/bin/sh
# Runs in the nested tier's L1 (scripts/nested.sh run): boots the L2 Linux test guest on kiln or
# on QEMU microvm with a raw disk, an ext4 disk, a read-only ext4 disk, a TAP, entropy and hvc0,
# does the host's half of the checks (ping and TCP to the guest, hvc0 input, the disk writes
# reaching the image files), and writes every result to /out/NAME/results.txt.
#
# Usage: linux-checks.sh --name NAME --vmm kiln|qemu --kernel PATH [--initrd PATH]
#            [--discovery acpi|cmdline] [--end poweroff|exit:N] [--ext4 IMAGE] [--timeout S]
#   --ext4 IMAGE  an ext4 image holding from-host.txt (made on the host: L1 has no mkfs.ext4);
#                 it is copied twice, one disk read-write and one read-only
# Exit status: 0 when every check passed, 1 otherwise.
# shellcheck shell=sh
. /nested/repo/tests/nested/l1/lib.sh

NAME='' VMM=kiln KERNEL='' INITRD=/nested/cache/nested-guest/initrd.cpio DISCOVERY=acpi
END=poweroff EXT4=/nested/fixtures/ext4.img TIMEOUT=300
case_args "name vmm kernel initrd discovery end ext4 timeout" "linux-checks.sh --name NAME --vmm kiln|qemu --kernel PATH ..." "$@"
[ -f "$EXT4" ] || die "no ext4 image '$EXT4'"
case $END in poweroff) WANT_STATUS=0 ;; exit:*) WANT_STATUS=${END#exit:} ;; *) die "bad --end '$END'" ;; esac
# QEMU's isa-debug-exit reports a guest's status S as (S << 1) | 1.
[ "$VMM" = qemu ] && [ "$END" != poweroff ] && WANT_STATUS=$(((WANT_STATUS << 1) | 1))

start_case "$NAME"
TOKEN=tok$$$(date +%s)
MAC=02:00:00:6b:00:02

# --- the host side: disks, TAP, a web server with a blob -------------------------------------
dd if=/dev/urandom of="$DIR/raw.img" bs=1M count=8 2>/dev/null
RAW_SHA=$(sha256sum "$DIR/raw.img" | cut -d' ' -f1)
WRITE_SECTOR=4097
cp "$EXT4" "$DIR/ext4-rw.img"
cp "$EXT4" "$DIR/ext4-ro.img"
RO_SHA=$(sha256sum "$DIR/ext4-ro.img" | cut -d' ' -f1)
tap_up tap0 10.0.2.1
mkdir -p "$DIR/www"
dd if=/dev/urandom of="$DIR/www/blob" bs=1M count=4 2>/dev/null
BLOB_SHA=$(sha256sum "$DIR/www/blob" | cut -d' ' -f1)
httpd -p 10.0.2.1:8080 -h "$DIR/www" || die "httpd failed"

CHECKS=cpus,memory,blk,blk-ro,ext4,rng,net,hvc0
WORDS="kiln.checks=$CHECKS kiln.end=$END kiln.token=$TOKEN kiln.cpus=2 kiln.memory_mib=512"
WORDS="$WORDS kiln.raw_serial=nested-raw kiln.raw_sha256=$RAW_SHA kiln.raw_bytes=8388608"
WORDS="$WORDS kiln.write_sector=$WRITE_SECTOR kiln.ext4_serial=nested-ext4 kiln.ro_serial=nested-ro"
WORDS="$WORDS kiln.mac=$MAC kiln.ip=10.0.2.2 kiln.peer=10.0.2.1 kiln.blob_sha256=$BLOB_SHA"
# kiln promises the disks in the order given (vda first); QEMU's virtio-mmio order is its own.
[ "$VMM" = kiln ] && WORDS="$WORDS kiln.disk_order=nested-raw,nested-ext4,nested-ro"
# loglevel=5: warnings and worse still reach the console (the kernel-log check reads them),
# the boot's info lines do not (docs/nested.md: a boot that prints its whole log on the
# 16550 under load in L1 sometimes dies).
# nowatchdog: on a busy host, TCG (the tier's L0) starves L2's vCPUs for tens of seconds and
# the guest's lockup detector then reports a "soft lockup" (seen with QEMU microvm in
# test_nested_peer at load 10); a guest that really stops is still caught by the time bound.
CMDLINE="console=ttyS0 loglevel=5 panic=-1 nowatchdog $WORDS"

# --- boot -------------------------------------------------------------------------------------
mkfifo "$DIR/hvc0.in"
exec 3<>"$DIR/hvc0.in" # held open: the VMM's hvc0 input stays open until we are done
if [ "$VMM" = kiln ]; then
    set -- kiln run --kernel "$KERNEL" --initrd "$INITRD" --cpus 2 --memory 512M \
        --device-discovery "$DISCOVERY" --cmdline "$CMDLINE" \
        --disk "$DIR/raw.img,serial=nested-raw" --disk "$DIR/ext4-rw.img,serial=nested-ext4" \
        --disk "$DIR/ext4-ro.img,readonly,serial=nested-ro" --net "tap=tap0,mac=$MAC" --rng \
        --console "file:$DIR/ttyS0.log" --vconsole stdio --log-level info
else
    MICROVM=microvm,acpi=on
    [ "$DISCOVERY" = cmdline ] && MICROVM=microvm,acpi=off
    set -- qemu-system-x86_64 -M "$MICROVM" -enable-kvm -cpu host -smp 2 -m 512M -nodefaults \
        -no-reboot -display none -L /nested/qemu -kernel "$KERNEL" -initrd "$INITRD" \
        -append "$CMDLINE" -serial "file:$DIR/ttyS0.log" \
        -drive "id=raw,file=$DIR/raw.img,format=raw,if=none" \
        -device virtio-blk-device,drive=raw,serial=nested-raw \
        -drive "id=rw,file=$DIR/ext4-rw.img,format=raw,if=none" \
        -device virtio-blk-device,drive=rw,serial=nested-ext4 \
        -drive "id=ro,file=$DIR/ext4-ro.img,format=raw,if=none,readonly=on" \
        -device virtio-blk-device,drive=ro,serial=nested-ro \
        -netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
        -device "virtio-net-device,netdev=n0,mac=$MAC" -device virtio-rng-device \
        -device virtio-serial-device -chardev stdio,id=hvc,signal=off \
        -device virtconsole,chardev=hvc -device isa-debug-exit,iobase=0xf4,iosize=4
fi
start_vmm "$DIR/hvc0.in" "$@"

# --- the host's half ----------------------------------------------------------------------------
if wait_console "kiln-check: WAIT host-steps" "$TIMEOUT"; then
    if ping -c 3 -W 5 10.0.2.2 >"$DIR/ping.out" 2>&1; then
        host_result PASS net-ping-in "ping 10.0.2.2 from L1: $(grep -o '[0-9]* packets received' "$DIR/ping.out")"
    else
        host_result FAIL net-ping-in "ping 10.0.2.2 from L1: $(tail -n 2 "$DIR/ping.out" | tr '\n' ' ')"
    fi
    WANT=$(sed -n 's/.*kiln-check: INFO guest-blob-sha256 \([0-9a-f]*\).*/\1/p' "$DIR/ttyS0.log" | head -n 1)
    if timeout 120 wget -q -O "$DIR/from-guest" http://10.0.2.2:8080/blob; then
        GOT=$(sha256sum "$DIR/from-guest" | cut -d' ' -f1)
        if [ -n "$WANT" ] && [ "$GOT" = "$WANT" ]; then
            host_result PASS net-tcp-out "fetched $(wc -c <"$DIR/from-guest") bytes from the guest over TCP, sha256 matches"
        else
            host_result FAIL net-tcp-out "fetched sha256 $GOT, the guest announced '$WANT'"
        fi
    else
        host_result FAIL net-tcp-out "wget http://10.0.2.2:8080/blob from L1 failed"
    fi
    echo "kiln-hvc0-in $TOKEN" >&3
    wait_vmm "$TIMEOUT"
elif vmm_running; then
    # The guest never got to its checks and the VMM still runs: no point waiting longer.
    mark_hung "no 'kiln-check: WAIT host-steps' within $TIMEOUT s"
    wait_vmm 0
else
    wait_vmm 0
fi
exec 3>&-
kill "$(pidof httpd)" 2>/dev/null

# --- after the VM ---------------------------------------------------------------------------------
if [ "$VMM_STATUS" = "$WANT_STATUS" ]; then
    host_result PASS vmm-exit "$VMM exited $VMM_STATUS ($END)"
else
    host_result FAIL vmm-exit "$VMM exited $VMM_STATUS, expected $WANT_STATUS ($END)"
fi
if grep -q "kiln-hvc0-out $TOKEN" "$DIR/hvc0.log"; then
    host_result PASS hvc0-out-host "the guest's hvc0 line reached the VMM's stdout"
else
    host_result FAIL hvc0-out-host "no 'kiln-hvc0-out $TOKEN' in hvc0.log"
fi
GOT=$(dd if="$DIR/raw.img" bs=512 skip=$WRITE_SECTOR count=1 2>/dev/null | head -n 1)
if [ "$GOT" = "kiln-nested-write $TOKEN" ]; then
    host_result PASS blk-write-host "the guest's write at sector $WRITE_SECTOR is in the image file"
else
    host_result FAIL blk-write-host "sector $WRITE_SECTOR of the image holds '$GOT'"
fi
if [ "$(sha256sum "$DIR/ext4-ro.img" | cut -d' ' -f1)" = "$RO_SHA" ]; then
    host_result PASS blk-ro-host "the read-only image is unchanged"
else
    host_result FAIL blk-ro-host "the read-only image changed"
fi
# The host checks the file system itself (e2fsck, debugfs): L1 has neither.
gzip -c "$DIR/ext4-rw.img" >"$OUT/ext4-rw.img.gz"
echo "$TOKEN" >"$OUT/token"

REQUIRED="cpus memory blk blk-ro ext4 rng net hvc0-out hvc0-in net-ping-in net-tcp-out vmm-exit"
REQUIRED="$REQUIRED hvc0-out-host blk-write-host blk-ro-host"
finish_case "$REQUIRED"
