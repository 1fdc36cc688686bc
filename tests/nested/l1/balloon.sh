#!/bin/sh
# Runs in the nested tier's L1: Linux's own virtio_balloon driver on kiln's virtio-balloon. The
# L2 guest (kiln.mode=idle) writes FILL MiB into a tmpfs file and deletes it; free page
# reporting must hand those pages back, so the VMM's resident guest RAM falls. Then
# `kiln ctl balloon` inflates the balloon (the guest's MemTotal falls by about that much, the
# API's actual size follows, the guest's memory statistics arrive) and deflates it again (the
# guest gets its memory back). Results in /out/NAME/results.txt.
#
# Usage: balloon.sh --name NAME --kernel PATH [--timeout S]
# shellcheck shell=sh
. /nested/repo/tests/nested/l1/lib.sh

NAME='' KERNEL='' TIMEOUT=300
INITRD=/nested/cache/nested-guest/initrd.cpio
FILL_MIB=128 INFLATE_MIB=160
case_args "name kernel timeout" "balloon.sh --name NAME --kernel PATH" "$@"

start_case "$NAME"
API=$DIR/api.sock
CMDLINE="console=ttyS0 loglevel=5 panic=-1 nowatchdog kiln.mode=idle kiln.fill_mib=$FILL_MIB kiln.idle_s=$TIMEOUT"

# The VMM's resident guest RAM, KiB: guest RAM is a shared memfd, so RssShmem is the guest's.
guest_rss_kib() { awk '/^RssShmem:/ { print $2 }' "/proc/$VMM_PID/status" 2>/dev/null; }
# balloon_field NAME: a number from GET /vm/balloon.
balloon_field() {
    kiln ctl "$API" balloon --json 2>/dev/null | tr -d ' \n' | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"
}
# wait_for SECONDS COMMAND...: runs COMMAND every half second until it succeeds; 1 on time-out.
wait_for() {
    deadline=$(($(cut -d. -f1 /proc/uptime) + $1))
    shift
    until "$@"; do
        [ "$(cut -d. -f1 /proc/uptime)" -lt "$deadline" ] && vmm_running || return 1
        sleep 0.5
    done
}
memtotal_last() { sed -n 's/.*kiln-idle: \(ready \)\{0,1\}MemTotal \([0-9]*\) kB.*/\2/p' "$DIR/ttyS0.log" | tail -n 1; }

start_vmm /dev/null kiln run --kernel "$KERNEL" --initrd "$INITRD" --cpus 2 --memory 512M \
    --cmdline "$CMDLINE" --balloon 0,stats=1,free-page-reporting=on --rng \
    --console "file:$DIR/ttyS0.log" --api-socket "$API" --log-level info
# The guest's RAM at its highest while it fills the tmpfs file, sampled until it is ready.
peak=0
while vmm_running && ! grep -q 'kiln-idle: ready' "$DIR/ttyS0.log"; do
    now=$(guest_rss_kib)
    [ "${now:-0}" -gt "$peak" ] && peak=$now
    [ "$(seconds_since "$VMM_START" | cut -d. -f1)" -lt "$TIMEOUT" ] || break
    sleep 0.5
done
if ! wait_console "kiln-idle: ready" 5; then
    vmm_running && mark_hung "no 'kiln-idle: ready' within $TIMEOUT s of the boot"
    wait_vmm 0
    finish_case "reporting inflate deflate stats"
fi
before=$(memtotal_last)

# Free page reporting: the freed tmpfs pages go back to the host within a few seconds.
reported_enough() {
    now=$(guest_rss_kib)
    [ $((peak - ${now:-$peak})) -ge $((FILL_MIB * 1024 / 2)) ]
}
if wait_for 60 reported_enough; then
    host_result PASS reporting "free page reporting gave back $(((peak - $(guest_rss_kib)) / 1024)) MiB of resident guest RAM (peak $((peak / 1024)) MiB, now $(($(guest_rss_kib) / 1024)) MiB; $(balloon_field reported_pages) pages reported)"
else
    host_result FAIL reporting "resident guest RAM went from a peak of $((peak / 1024)) MiB to $(($(guest_rss_kib) / 1024)) MiB after the guest freed $FILL_MIB MiB, expected at least $((FILL_MIB / 2)) MiB back ($(balloon_field reported_pages) pages reported)"
fi

# Inflate: the guest hands INFLATE_MIB to the balloon and its MemTotal falls by as much.
kiln ctl "$API" balloon "${INFLATE_MIB}M" >"$DIR/ctl.out" 2>&1 ||
    host_result FAIL inflate "kiln ctl balloon ${INFLATE_MIB}M: $(cat "$DIR/ctl.out")"
inflated() { [ "$(balloon_field actual_mib)" = "$INFLATE_MIB" ] && [ $((before - $(memtotal_last))) -ge $((INFLATE_MIB * 1024 - 1024)) ]; }
if wait_for 90 inflated; then
    host_result PASS inflate "the balloon holds $(balloon_field actual_mib) MiB; the guest's MemTotal went from $before to $(memtotal_last) kB"
else
    host_result FAIL inflate "asked for $INFLATE_MIB MiB: the API says $(balloon_field actual_mib) MiB, the guest's MemTotal went from $before to $(memtotal_last) kB"
fi
stats=$(kiln ctl "$API" balloon --json 2>/dev/null | tr -d ' \n' | grep -o '"stats":{[^}]*}')
case $stats in
*'"total_memory":'* | *'"total":'*) host_result PASS stats "the guest's statistics: $stats" ;;
*) host_result FAIL stats "no memory statistics from the guest in GET /vm/balloon: '$stats'" ;;
esac

# Deflate: the guest gets it all back.
kiln ctl "$API" balloon 0 >"$DIR/ctl.out" 2>&1 ||
    host_result FAIL deflate "kiln ctl balloon 0: $(cat "$DIR/ctl.out")"
deflated() { [ "$(balloon_field actual_mib)" = 0 ] && [ "$(memtotal_last)" = "$before" ]; }
if wait_for 90 deflated; then
    host_result PASS deflate "the balloon is empty again and the guest's MemTotal is back to $before kB"
else
    host_result FAIL deflate "after kiln ctl balloon 0: the API says $(balloon_field actual_mib) MiB, the guest's MemTotal is $(memtotal_last) kB (was $before)"
fi
kiln ctl "$API" balloon --json >"$OUT/balloon.json" 2>&1
kill -TERM "$VMM_PID"
sleep 1
kill -TERM "$VMM_PID" 2>/dev/null # the second SIGTERM stops it at once (the guest has no acpid)
wait_vmm 30
finish_case "reporting inflate deflate stats kernel-log"
