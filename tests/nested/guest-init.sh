#!/bin/sh
# /init of the nested tier's L2 Linux test guest (scripts/nested.sh builds its initramfs): runs
# the user-space checks that the kiln.* words of the command line ask for, one
# "kiln-check: PASS|FAIL NAME: detail" line each on the console, then ends the VM.
#
# Command-line words (all optional):
#   kiln.mode=checks|reboot|shell|snapshot
#                                  checks (default): the checks in kiln.checks; reboot: the first
#                                  boot marks the disk with serial kiln.mark_serial and reboots,
#                                  the second finds the mark and powers off; shell: a root shell
#                                  on the console, or hvc0 with kiln.shell=hvc0 (prompt
#                                  "kiln-guest# "), then power-off; snapshot: a user-space
#                                  counter to kiln.count, one line a second, kept on the ext4
#                                  disk kiln.ext4_serial, with the network up (kiln.mac,
#                                  kiln.ip), then unmount, report the vmgenid driver's CRNG
#                                  reseeds and power off; with kiln.tcp=IP:PORT each line also
#                                  goes to IP:PORT over one TCP connection, kept open throughout
#   kiln.mode=idle                 print "kiln-idle: ready MemTotal N kB", then idle; every change
#                                  of MemTotal is printed ("kiln-idle: MemTotal N kB"), so a
#                                  balloon is seen; with kiln.fill_mib=M the guest first writes
#                                  M MiB into a tmpfs file and deletes it ("kiln-idle: freed M
#                                  MiB"), pages that free page reporting can hand back; with
#                                  kiln.idle_s=S it powers off after S seconds
#   kiln.checks=a,b,...            cpus memory blk blk-ro ext4 rng net hvc0 (see each check_*)
#   kiln.end=poweroff|exit:N       how the checks end the VM: power off, or kiln-exit N
#   kiln.cpus=N kiln.memory_mib=M  what cpus/memory expect
#   kiln.raw_serial kiln.raw_sha256 kiln.raw_bytes kiln.write_sector  the raw disk (blk)
#   kiln.ext4_serial kiln.ro_serial                                   the ext4 disks (ext4, blk-ro)
#   kiln.disk_order=S1,S2,...      blk also checks that vda, vdb, ... have these serials
#   kiln.mac kiln.ip kiln.peer kiln.blob_sha256                       net
#   kiln.token                     the word the host and the guest exchange (blk, ext4, hvc0)
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null # the minimal kernel mounts it itself
mkdir -p /tmp /mnt/rw /mnt/ro /srv
echo "kiln-linux-guest: init running"

# kiln.KEY=VALUE -> K_KEY=VALUE (keys of letters, digits and _ only).
for word in $(cat /proc/cmdline); do
    case $word in
    kiln.*=*)
        key=${word%%=*}
        key=${key#kiln.}
        case $key in *[!a-z0-9_]* | '') continue ;; esac
        eval "K_$key=\${word#*=}"
        ;;
    esac
done
: "${K_mode:=checks}" "${K_checks:=}" "${K_end:=poweroff}" "${K_token:=none}"

PASSED=0
FAILED=0
report() { # report PASS|FAIL NAME DETAIL
    echo "kiln-check: $1 $2: $3"
    if [ "$1" = PASS ]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); fi
}
# Progress on the console as it happens (a check's own output comes at its end): a hang shows
# where it stopped.
trace() { echo "kiln-guest: $*" >/dev/console; }
# run_check NAME FUNCTION: the function prints its detail and returns 0 for a pass.
run_check() {
    if detail=$("$2" 2>&1); then
        report PASS "$1" "$(echo "$detail" | tr '\n' ' ')"
    else
        report FAIL "$1" "$(echo "$detail" | tr '\n' ' ')"
    fi
}

load_modules() {
    dir=/lib/modules/$(uname -r)
    [ -f "$dir/order" ] || return 0 # the minimal kernel: every driver built in
    # The kernel applies NAME.PARAM=VALUE words of its command line only to built-in code;
    # for a module, modprobe passes them on (virtio_mmio.device=... with cmdline discovery),
    # and busybox insmod does not, so do it here.
    for module in $(cat "$dir/order"); do
        name=$(echo "${module%.ko}" | tr - _)
        params=$(tr ' ' '\n' </proc/cmdline | sed -n "s/^$name\.//p" | tr '\n' ' ')
        # shellcheck disable=SC2086 # one word per parameter
        insmod "$dir/$module" $params || echo "kiln-guest: insmod $module $params failed"
    done
}

# disk_by_serial SERIAL: prints vdX, the virtio disk with this serial (waits up to 10 s).
disk_by_serial() {
    tries=0
    while [ $tries -lt 50 ]; do
        for d in /sys/block/vd*; do
            [ -e "$d/serial" ] && [ "$(cat "$d/serial")" = "$1" ] && {
                echo "${d##*/}"
                return 0
            }
        done
        tries=$((tries + 1))
        sleep 0.2
    done
    return 1
}

check_cpus() {
    n=$(nproc)
    echo "$n CPUs online ($(cat /sys/devices/system/cpu/online)), expected ${K_cpus:-?}"
    [ "$n" = "${K_cpus:-}" ]
}

check_memory() {
    total=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
    want=$((${K_memory_mib:-0} * 1024))
    echo "MemTotal $total KiB of the VM's $want KiB (expected 80-100%)"
    [ "$total" -le "$want" ] && [ $((total * 100)) -ge $((want * 80)) ]
}

# The raw disk: size, serial, the bytes read equal the host image's, a write + fsync succeeds
# (the host then finds it in the image file); kiln.disk_order checks vda, vdb, ... in turn.
check_blk() {
    dev=$(disk_by_serial "${K_raw_serial:-}") || {
        echo "no virtio disk with serial '${K_raw_serial:-}' ($(ls /sys/block))"
        return 1
    }
    bytes=$(blockdev --getsize64 "/dev/$dev")
    sum=$(sha256sum "/dev/$dev" | cut -d' ' -f1)
    echo "/dev/$dev serial ${K_raw_serial:-}: $bytes bytes, sha256 $sum;"
    [ "$bytes" = "${K_raw_bytes:-}" ] || { echo "expected ${K_raw_bytes:-?} bytes"; return 1; }
    [ "$sum" = "${K_raw_sha256:-}" ] || { echo "expected sha256 ${K_raw_sha256:-?}"; return 1; }
    printf 'kiln-nested-write %s\n' "$K_token" >/tmp/block
    dd if=/tmp/block of="/dev/$dev" bs=512 seek="${K_write_sector:-0}" conv=notrunc,fsync \
        2>/tmp/dd.err || { echo "write at sector ${K_write_sector:-0} failed: $(cat /tmp/dd.err)"; return 1; }
    echo "wrote the token at sector ${K_write_sector:-0} with fsync;"
    if [ -n "${K_disk_order:-}" ]; then
        i=0
        for serial in $(echo "$K_disk_order" | tr ',' ' '); do
            name=vd$(echo abcdefghijklmnop | cut -c$((i + 1)))
            got=$(cat "/sys/block/$name/serial" 2>/dev/null)
            [ "$got" = "$serial" ] || { echo "$name has serial '$got', expected '$serial'"; return 1; }
            i=$((i + 1))
        done
        echo "disks in order: $K_disk_order"
    fi
}

# The read-only disk: the kernel sees it read-only and a write to it fails.
check_blk_ro() {
    dev=$(disk_by_serial "${K_ro_serial:-}") || { echo "no disk with serial '${K_ro_serial:-}'"; return 1; }
    ro=$(cat "/sys/block/$dev/ro")
    echo "/dev/$dev serial ${K_ro_serial:-}: ro=$ro;"
    [ "$ro" = 1 ] || return 1
    if dd if=/dev/zero of="/dev/$dev" bs=512 count=1 conv=fsync 2>/tmp/dd.err; then
        echo "a write to it succeeded"
        return 1
    fi
    echo "a write fails: $(grep -v records /tmp/dd.err | head -n 1)"
}

# ext4 read-write (mount, read the host's file, write one, remount, read it back) and
# read-only (mount -o ro on the read-only disk, read the host's file, a write fails).
check_ext4() {
    rw=$(disk_by_serial "${K_ext4_serial:-}") || { echo "no disk with serial '${K_ext4_serial:-}'"; return 1; }
    ro=$(disk_by_serial "${K_ro_serial:-}") || { echo "no disk with serial '${K_ro_serial:-}'"; return 1; }
    mount -t ext4 "/dev/$rw" /mnt/rw || { echo "mount /dev/$rw failed"; return 1; }
    host=$(cat /mnt/rw/from-host.txt)
    echo "rw /dev/$rw: from-host.txt says '$host';"
    [ "$host" = "written by the host" ] || return 1
    echo "$K_token" >/mnt/rw/from-guest.txt && sync && umount /mnt/rw || { echo "write failed"; return 1; }
    mount -t ext4 "/dev/$rw" /mnt/rw || { echo "remount failed"; return 1; }
    back=$(cat /mnt/rw/from-guest.txt)
    umount /mnt/rw
    [ "$back" = "$K_token" ] || { echo "read back '$back' after remount"; return 1; }
    echo "wrote from-guest.txt, remounted, read it back;"
    mount -t ext4 -o ro "/dev/$ro" /mnt/ro || { echo "mount -o ro /dev/$ro failed"; return 1; }
    host=$(cat /mnt/ro/from-host.txt)
    if touch /mnt/ro/nope 2>/dev/null; then
        echo "ro /dev/$ro: a file could be created"
        umount /mnt/ro
        return 1
    fi
    umount /mnt/ro
    echo "ro /dev/$ro: from-host.txt says '$host', creating a file fails"
    [ "$host" = "written by the host" ]
}

check_rng() {
    current=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)
    a=$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')
    b=$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')
    echo "rng_current '$current'; /dev/hwrng gave $a then $b"
    case $current in virtio_rng*) ;; *) return 1 ;; esac
    [ ${#a} -eq 64 ] && [ ${#b} -eq 64 ] && [ "$a" != "$b" ] &&
        [ "$a" != 0000000000000000000000000000000000000000000000000000000000000000 ]
}

NET_IF=
net_up() {
    for i in /sys/class/net/*; do
        [ "$(cat "$i/address")" = "${K_mac:-}" ] && NET_IF=${i##*/}
    done
    [ -n "$NET_IF" ] || { echo "no interface with MAC ${K_mac:-} ($(ls /sys/class/net))"; return 1; }
    ip addr add "${K_ip:-}/24" dev "$NET_IF" && ip link set "$NET_IF" up || return 1
    echo "$NET_IF (${K_mac:-}) is ${K_ip:-}/24;"
}

# Ping the host and fetch its blob over TCP (wget), then serve a blob of our own for the host.
check_net() {
    net_up || return 1
    trace "net: $NET_IF up; ping ${K_peer:-}"
    ping -c 3 -W 5 "${K_peer:-}" >/tmp/ping.out 2>&1 || { echo "ping ${K_peer:-}: $(tail -n 2 /tmp/ping.out)"; return 1; }
    echo "ping ${K_peer:-}: $(grep -o '[0-9]* packets received' /tmp/ping.out);"
    trace "net: wget http://${K_peer:-}:8080/blob"
    # Bounded by timeout(1): busybox 1.35 wget -T crashes (a segfault seen on two kernels).
    timeout 120 wget -q -O /tmp/from-host "http://${K_peer:-}:8080/blob" || { echo "wget from the host failed"; return 1; }
    got=$(sha256sum /tmp/from-host | cut -d' ' -f1)
    echo "fetched $(wc -c </tmp/from-host) bytes over TCP, sha256 $got;"
    [ "$got" = "${K_blob_sha256:-}" ] || { echo "expected ${K_blob_sha256:-?}"; return 1; }
    dd if=/dev/urandom of=/srv/blob bs=1M count=4 2>/dev/null
    # Not holding this subshell's output pipe open, or the check would never end.
    httpd -p 8080 -h /srv </dev/null >/dev/null 2>&1 || { echo "httpd failed"; return 1; }
    echo "serving /srv/blob"
}

# hvc0 stays open on fd 4 in init itself (the checks run in subshells), without echo, so
# that the host's line waits in the tty until check_hvc0_in reads it.
HVC_OPEN=0
open_hvc0() {
    tries=0
    while [ ! -c /dev/hvc0 ] && [ $tries -lt 50 ]; do
        tries=$((tries + 1))
        sleep 0.2
    done
    [ -c /dev/hvc0 ] && exec 4<>/dev/hvc0 && stty -echo <&4 && HVC_OPEN=1
}

check_hvc0_out() {
    [ "$HVC_OPEN" = 1 ] || { echo "cannot open /dev/hvc0"; return 1; }
    echo "kiln-hvc0-out $K_token" >&4 || return 1
    echo "wrote 'kiln-hvc0-out $K_token' to /dev/hvc0"
}

check_hvc0_in() {
    [ "$HVC_OPEN" = 1 ] || { echo "hvc0 is not open"; return 1; }
    line=$(timeout 300 head -n 1 <&4 | tr -d '\r')
    echo "read '$line' from /dev/hvc0"
    [ "$line" = "kiln-hvc0-in $K_token" ]
}

# The host's half of the exchange: the guest announces its blob and waits on hvc0 while the
# host pings it and fetches the blob; the host then writes its line to hvc0.
host_steps() {
    if [ -f /srv/blob ]; then
        echo "kiln-check: INFO guest-blob-sha256 $(sha256sum /srv/blob | cut -d' ' -f1)"
    fi
    echo "kiln-check: WAIT host-steps"
}

has() { case ",$K_checks," in *",$1,"*) return 0 ;; *) return 1 ;; esac }

run_checks() {
    echo "kiln-check: INFO discovery: $(tr ' ' '\n' </proc/cmdline | grep -c '^virtio_mmio.device=') virtio_mmio.device words; $(grep -q -w 'acpi=off' /proc/cmdline && echo acpi=off || echo ACPI on)"
    has cpus && run_check cpus check_cpus
    has memory && run_check memory check_memory
    has blk && run_check blk check_blk
    has blk-ro && run_check blk-ro check_blk_ro
    has ext4 && run_check ext4 check_ext4
    has rng && run_check rng check_rng
    has net && run_check net check_net
    if has hvc0; then
        open_hvc0
        run_check hvc0-out check_hvc0_out
    fi
    if has net || has hvc0; then
        host_steps
        has hvc0 && run_check hvc0-in check_hvc0_in
    fi
    echo "kiln-check: done passed=$PASSED failed=$FAILED"
}

end_vm() {
    sync
    case $K_end in
    exit:*)
        echo "kiln-guest: kiln-exit ${K_end#exit:}"
        kiln-exit "${K_end#exit:}"
        echo "kiln-check: FAIL exit-port: kiln-exit ${K_end#exit:} returned $?"
        ;;
    esac
    poweroff -f
    reboot -f
}

# The reboot test: the disk survives the reset, so it tells the second boot from the first.
reboot_mode() {
    dev=$(disk_by_serial "${K_mark_serial:-}") || {
        echo "kiln-check: FAIL reboot: no disk with serial '${K_mark_serial:-}'"
        poweroff -f
    }
    mark=$(dd if="/dev/$dev" bs=32 count=1 2>/dev/null | tr -d '\0')
    if [ "$mark" = "kiln-boot-1 $K_token" ]; then
        echo "kiln-check: PASS reboot: the second boot found the first boot's mark on /dev/$dev"
        end_vm
    fi
    printf 'kiln-boot-1 %s' "$K_token" | dd of="/dev/$dev" bs=32 conv=sync,fsync 2>/dev/null
    echo "kiln-guest: first boot: marked /dev/$dev, rebooting"
    reboot -f
}

# kiln.shell=hvc0 puts the shell on the virtio console (its own controlling tty) instead of
# /dev/console.
shell_mode() {
    tty=/dev/console
    if [ "${K_shell:-}" = hvc0 ]; then
        open_hvc0 || echo "kiln-guest: no /dev/hvc0 for the shell"
        exec 4>&-
        tty=/dev/hvc0
    fi
    echo "kiln-guest: shell on $tty; 'poweroff -f' or 'kiln-exit N' ends the VM" >"$tty"
    PS1='kiln-guest# ' setsid -c sh -i <>"$tty" >&0 2>&0
    poweroff -f
}

# The snapshot test: a process whose state lives in RAM (the shell's counter), a file system
# being written, the network up and the clock read, so that the host can snapshot the VM
# mid-count and check that each restored copy goes on from the same point. Each line:
# "kiln-counter: N time SECONDS.MICROSECONDS rng HEX" (16 bytes of /dev/hwrng).
# The wall clock to the microsecond (busybox's date has no %N; its adjtimex prints the time).
wall_time() { adjtimex | awk '/tv_sec/ { s = $2 } /tv_usec/ { u = $2 } END { printf "%d.%06d", s, u }'; }
snapshot_mode() {
    dev=$(disk_by_serial "${K_ext4_serial:-}") || {
        echo "kiln-check: FAIL counter: no disk with serial '${K_ext4_serial:-}'"
        poweroff -f
    }
    mount -t ext4 "/dev/$dev" /mnt/rw || {
        echo "kiln-check: FAIL counter: mount /dev/$dev failed"
        poweroff -f
    }
    up=$(net_up) || echo "kiln-check: FAIL net-up: $up"
    # One TCP connection for the whole count (a migration test checks it survives the move):
    # nc reads a fifo the loop writes to; if the connection dies, the writes fail and say so.
    if [ -n "${K_tcp:-}" ]; then
        mkfifo /tmp/tcp.fifo
        nc "${K_tcp%:*}" "${K_tcp##*:}" </tmp/tcp.fifo >/dev/null 2>&1 &
        exec 4>/tmp/tcp.fifo
        trap '' PIPE
    fi
    i=0 tcp_failed=0
    while [ "$i" -lt "${K_count:-30}" ]; do
        i=$((i + 1))
        echo "$i" >>/mnt/rw/counter.txt
        sync
        rng=$(dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')
        echo "kiln-counter: $i time $(wall_time) rng $rng"
        if [ -n "${K_tcp:-}" ]; then
            echo "kiln-counter-tcp: $i" >&4 2>/dev/null || tcp_failed=$((tcp_failed + 1))
        fi
        sleep 1
    done
    if [ -n "${K_tcp:-}" ]; then
        exec 4>&-
        echo "kiln-check: INFO tcp: $i lines written to ${K_tcp}, $tcp_failed failed"
    fi
    umount /mnt/rw && echo "kiln-check: PASS counter: counted to $i, /dev/$dev unmounted"
    # Linux's vmgenid driver (CONFIG_VMGENID) reseeds the CRNG when the VM generation ID changes.
    echo "kiln-check: INFO vmgenid: bound $(ls /sys/bus/acpi/drivers/vmgenid 2>/dev/null | grep -c ':'), reseeds $(dmesg | grep -c 'crng reseeded due to virtual machine fork')"
    poweroff -f
}

memtotal_kb() { awk '/^MemTotal:/ { print $2 }' /proc/meminfo; }
idle_mode() {
    if [ -n "${K_fill_mib:-}" ]; then
        mkdir -p /tmp/fill
        mount -t tmpfs -o size=$((K_fill_mib + 16))m tmpfs /tmp/fill
        dd if=/dev/zero of=/tmp/fill/blob bs=1M count="$K_fill_mib" 2>/dev/null
        rm -f /tmp/fill/blob
        umount /tmp/fill
        echo "kiln-idle: freed $K_fill_mib MiB"
    fi
    last=$(memtotal_kb)
    echo "kiln-idle: ready MemTotal $last kB"
    waited=0
    while [ -z "${K_idle_s:-}" ] || [ "$waited" -lt "$K_idle_s" ]; do
        sleep 1
        waited=$((waited + 1))
        now=$(memtotal_kb)
        [ "$now" = "$last" ] || echo "kiln-idle: MemTotal $now kB"
        last=$now
    done
    poweroff -f
}

load_modules
case $K_mode in
idle) idle_mode ;;
reboot) reboot_mode ;;
snapshot) snapshot_mode ;;
shell) shell_mode ;;
*)
    run_checks
    end_vm
    ;;
esac
