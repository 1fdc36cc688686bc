#!/bin/sh
# Runs in the nested tier's L1 for bench/density --linux: idle Linux guests of 128 MiB started one
# after another, first on kiln, then on QEMU microvm, each once the one before is up. Every
# guest (Debian's cloud kernel, kiln.mode=idle) writes and frees FILL MiB, then idles. Then each
# kiln guest's balloon is inflated to BALLOON MiB and the resident guest RAM given back measured.
#
# Usage: density.sh [--count N]   (default 4 of each)
# Writes /out/density/samples.txt, one line per event:
#   start VMM I seconds=S rss_kib=R pss_kib=P guest_kib=G   (the VMM's memory once I guests run)
#   balloon I before_kib=B after_kib=A                      (kiln guest I's resident RAM)
#   failed VMM I REASON
# shellcheck shell=sh
. /nested/repo/tests/nested/l1/lib.sh

COUNT=4
[ "${1:-}" = --count ] && COUNT=$2
start_case density
KERNEL=/nested/cache/linux-guest/vmlinux
INITRD=/nested/cache/nested-guest/initrd.cpio
FILL=48 BALLOON=64 BOUND=240
CMDLINE="console=ttyS0 loglevel=5 panic=-1 nowatchdog kiln.mode=idle kiln.fill_mib=$FILL"
SAMPLES=$OUT/samples.txt
: >"$SAMPLES"

field() { awk -v f="$1:" '$1 == f { print $2 }' "$2" 2>/dev/null; }
# guest_kib PID: resident guest RAM, the same way for both VMMs: the Rss of the mappings of
# 128 MiB or more (the guest's RAM; nothing else either VMM maps is that big). Not RssShmem or
# RssAnon: in L1 every binary lives in the initramfs, so kiln's own code counts as shmem there,
# and QEMU's heap as anonymous memory.
guest_kib() {
    awk '$1 == "Size:" { size = $2 } $1 == "Rss:" && size >= 131072 { sum += $2 } END { print sum + 0 }' \
        "/proc/$1/smaps" 2>/dev/null
}

boot() { # boot VMM I: starts guest I and waits for its ready line
    log=$DIR/$1.$2.log
    : >"$log"
    t0=$(uptime_s)
    if [ "$1" = kiln ]; then
        kiln run --kernel "$KERNEL" --initrd "$INITRD" --memory 128M --cmdline "$CMDLINE" \
            --balloon 0 --console "file:$log" --api-socket "$DIR/kiln.$2.sock" \
            </dev/null >/dev/null 2>"$DIR/$1.$2.err" &
    else
        qemu-system-x86_64 -M microvm,acpi=on -enable-kvm -cpu host -m 128M -nodefaults \
            -no-reboot -display none -L /nested/qemu -kernel "$KERNEL" -initrd "$INITRD" \
            -append "$CMDLINE" -serial "file:$log" </dev/null >/dev/null 2>"$DIR/$1.$2.err" &
    fi
    pid=$!
    echo "$pid" >>"$DIR/$1.pids"
    while ! grep -q 'kiln-idle: ready' "$log"; do
        if ! kill -0 "$pid" 2>/dev/null || [ "$(seconds_since "$t0" | cut -d. -f1)" -ge "$BOUND" ]; then
            echo "failed $1 $2 $(tr -d '\r' <"$log" | grep -v '^$' | tail -n 1)" | tee -a "$SAMPLES"
            return 1
        fi
        sleep 0.2
    done
    seconds=$(seconds_since "$t0")
    sleep 2 # the guest's last writes settle
    echo "start $1 $2 seconds=$seconds rss_kib=$(field Rss "/proc/$pid/smaps_rollup") pss_kib=$(field Pss "/proc/$pid/smaps_rollup") guest_kib=$(guest_kib "$pid")" |
        tee -a "$SAMPLES"
}

stop_all() {
    for pid in $(cat "$DIR/$1.pids" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    for pid in $(cat "$DIR/$1.pids" 2>/dev/null); do wait "$pid" 2>/dev/null; done
}

status=0
for vmm in kiln qemu; do
    i=1
    while [ "$i" -le "$COUNT" ]; do
        boot "$vmm" "$i" || {
            status=1
            break
        }
        i=$((i + 1))
    done
    if [ "$vmm" = kiln ]; then
        # Each guest's balloon to BALLOON MiB, then the resident RAM it gave back.
        i=1
        while [ "$i" -le "$COUNT" ] && [ -S "$DIR/kiln.$i.sock" ]; do
            pid=$(sed -n "${i}p" "$DIR/kiln.pids")
            before=$(guest_kib "$pid")
            kiln ctl "$DIR/kiln.$i.sock" balloon "${BALLOON}M" >/dev/null 2>&1
            n=0
            until kiln ctl "$DIR/kiln.$i.sock" balloon --json 2>/dev/null | tr -d ' \n' |
                grep -q "\"actual_mib\":$BALLOON[,}]" || [ "$n" -ge 120 ]; do
                sleep 0.5
                n=$((n + 1))
            done
            sleep 1
            echo "balloon $i before_kib=$before after_kib=$(guest_kib "$pid") target_mib=$BALLOON" | tee -a "$SAMPLES"
            i=$((i + 1))
        done
    fi
    stop_all "$vmm"
done
cp "$DIR"/*.log "$DIR"/*.err "$OUT/" 2>/dev/null
exit "$status"
