#!/bin/sh
# Runs in the nested tier's L1: kiln's own cgroup (--cpu-quota, --cpu-weight; docs/placement.md)
# on a real cgroup v2 with the cpu controller, which our hosts' hybrid cgroups lack. L1's init
# mounts cgroup2 at /sys/fs/cgroup, and this script runs in its root.
#
# The guest-kit counter spins its one vCPU forever. First alone under --cpu-quota 20
# --cpu-weight 50: kiln's folder HOME/kiln/NAME-PID holds cpu.max "20000 100000", cpu.weight 50
# and every thread of kiln, and over SECONDS its cpu.stat shows throttling and at most about
# 20% of one CPU used. Then, beside it, a reference VM with --cpu-weight 50 only (its own cgroup
# too, cpu.max "max 100000", so its cpu.stat measures the same way): unthrottled, it uses about
# a whole CPU, which shows the first one's limit is the quota's doing. A third VM of weight 150
# on the reference's CPU gets about 3 times its time. Each folder is gone after its VM, and
# HOME/kiln stays while another VM still uses it and goes with the last. Then below the root:
# kiln started alone in a delegated folder (as systemd-run --scope -p Delegate=yes would) runs
# in DELEG/kiln/NAME-PID and leaves nothing behind, and beside another process there it
# refuses in one line. Results in /out/NAME/results.txt.
#
# Usage: cpu-quota.sh --name NAME --kernel PATH [--run-seconds S]
# shellcheck shell=sh
. /nested/repo/tests/nested/l1/lib.sh

NAME='' KERNEL='' RUN_SECONDS=10
QUOTA=20 WEIGHT=50
# The quota's share of one CPU may come out above QUOTA% by this factor, 1.5 (30% for 20), and
# no more. CFS bandwidth control notices a spent quota only at a tick or when a 5 ms slice
# runs out (L1's Debian kernel ticks at 250 Hz), so each 100 ms period may run a few ms
# over; under TCG, L1's timer interrupts also come late when the host is busy. An unapplied
# quota lands near 1.0, far above 0.30 either way.
MAX_RATIO_X100=$((QUOTA * 150 / 100))
# The reference must use at least this much of a CPU (x100) for the comparison to mean anything.
MIN_FREE_X100=70
case_args "name kernel run-seconds" "cpu-quota.sh --name NAME --kernel PATH" "$@"

start_case "$NAME"
# shellcheck disable=SC2034 # read by lib.sh's finish_case
GUEST_UP_LINE='counter: start'
MOUNT=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
[ -n "$MOUNT" ] || die "no cgroup2 file system in L1 (scripts/nested-l1-init.sh mounts it)"
HOME_CG=$MOUNT$(sed -n 's/^0:://p' /proc/self/cgroup)
HOME_CG=${HOME_CG%/} # the root cgroup is "/"
echo "kiln-check: INFO cgroup: HOME $HOME_CG offers '$(cat "$HOME_CG/cgroup.controllers")'" >>"$RESULTS"

# ratio_x100 USEC SECONDS: USEC of CPU time over SECONDS (two decimals) of wall time, in % of
# one CPU.
ratio_x100() { awk -v u="$1" -v s="$2" 'BEGIN { printf "%d", u / (s * 10000) + 0.5 }'; }
stat_of() { sed -n "s/^$2 //p" "$1/cpu.stat"; } # stat_of DIR FIELD
# vcpu_ticks PID: the clock ticks (1/100 s) PID's vCPU thread has run, user and system.
vcpu_ticks() {
    for task in /proc/"$1"/task/*; do
        [ "$(cat "$task/comm")" = kiln-vcpu0 ] && awk '{ print $14 + $15 }' "$task/stat"
    done
}
# measure DIR PID: CPU time and throttling in DIR over RUN_SECONDS; sets USAGE, THROTTLED
# (deltas), WALL, RATIO (x100) and VCPU_RATIO (x100: kiln PID's vCPU thread alone).
measure() {
    u0=$(stat_of "$1" usage_usec) n0=$(stat_of "$1" nr_throttled) v0=$(vcpu_ticks "$2") t0=$(uptime_s)
    sleep "$RUN_SECONDS"
    u1=$(stat_of "$1" usage_usec) n1=$(stat_of "$1" nr_throttled) v1=$(vcpu_ticks "$2")
    WALL=$(seconds_since "$t0")
    USAGE=$((u1 - u0)) THROTTLED=$((n1 - n0))
    RATIO=$(ratio_x100 "$USAGE" "$WALL")
    VCPU_RATIO=$(ratio_x100 $(((v1 - v0) * 10000)) "$WALL")
}
# The counter's step number on CONSOLE's last line: how far the guest got.
last_step() { sed -n 's/^counter: step \([0-9]*\) .*/\1/p' "$1" | tail -n 1; }
# A few lines a second: every byte on the serial console is a vCPU exit and wakes kiln's loop,
# which cost that thread 20-30% of an L1 CPU at 100-165 lines a second (every=20000 or 200000),
# CPU time that counts against the quota beside the spinning vCPU.
counter_cmdline=every=2000000

# --- the quota VM: its folder, its files, its threads -------------------------------------------
start_vmm /dev/null kiln run --kernel "$KERNEL" --memory 64M --cmdline "$counter_cmdline" \
    --name quota --cpus 1,pin=0 --cpu-quota "$QUOTA" --cpu-weight "$WEIGHT" --api-socket none \
    --shutdown-grace 0 --console "file:$DIR/ttyS0.log"
if ! wait_console '^counter: start' 120; then
    vmm_running && mark_hung "no 'counter: start' within 120 s"
    wait_vmm 0
    finish_case "folder throttled"
fi
QDIR=$HOME_CG/kiln/quota-$VMM_PID
got_dir=$MOUNT$(sed -n 's/^0:://p' "/proc/$VMM_PID/cgroup")
max=$(cat "$QDIR/cpu.max" 2>&1) weight=$(cat "$QDIR/cpu.weight" 2>&1)
threads=$(ls "/proc/$VMM_PID/task" | tr '\n' ' ')
missing=''
for tid in $threads; do
    grep -qx "$tid" "$QDIR/cgroup.threads" 2>/dev/null || missing="$missing $tid($(cat "/proc/$VMM_PID/task/$tid/comm"))"
done
if [ "$got_dir" = "$QDIR" ] && [ "$max" = "$((QUOTA * 1000)) 100000" ] && [ "$weight" = "$WEIGHT" ] &&
    grep -qx "$VMM_PID" "$QDIR/cgroup.procs" && [ -z "$missing" ]; then
    host_result PASS folder "kiln $VMM_PID is in $QDIR (cgroup.procs), with all its threads ($threads); cpu.max '$max', cpu.weight '$weight'"
else
    host_result FAIL folder "kiln $VMM_PID is in '$got_dir', expected $QDIR; cpu.max '$max' (expected '$((QUOTA * 1000)) 100000'), cpu.weight '$weight' (expected $WEIGHT); cgroup.procs '$(tr '\n' ' ' <"$QDIR/cgroup.procs" 2>&1)'; threads not in cgroup.threads:${missing:- none}"
fi

# --- the quota VM alone: throttled, at most about QUOTA% of a CPU -------------------------------
step0=$(last_step "$DIR/ttyS0.log")
measure "$QDIR" "$VMM_PID"
QSTEPS=$(($(last_step "$DIR/ttyS0.log") - ${step0:-0}))
detail="used ${USAGE} us of CPU in $WALL s: $RATIO% of one CPU (quota $QUOTA%, allowed up to $MAX_RATIO_X100%; the vCPU thread $VCPU_RATIO%); nr_throttled +$THROTTLED; the guest counted $QSTEPS steps"
if [ "$THROTTLED" -gt 0 ] && [ "$RATIO" -le "$MAX_RATIO_X100" ] && [ "$RATIO" -ge $((QUOTA / 2)) ]; then
    host_result PASS throttled "$detail"
else
    host_result FAIL throttled "$detail (expected nr_throttled to grow and from $((QUOTA / 2))% to $MAX_RATIO_X100%)"
fi
QRATIO=$RATIO

# Two more VMs, started by hand (lib.sh's start_vmm and wait_vmm follow one VMM, the quota VM):
# start_extra NAME FLAGS... sets EXTRA_PID; its console is DIR/NAME.ttyS0.log. With START_IN
# set, kiln starts in that cgroup folder (moved there just before the exec, as systemd-run
# --scope starts a command).
start_extra() {
    name=$1
    shift
    echo "l1: $CASE: ${START_IN:+in $START_IN: }kiln run --kernel $KERNEL ... --name $name $*" >>"$DIR/vmm.command"
    : >"$DIR/$name.ttyS0.log"
    # shellcheck disable=SC2016 # $0, $$ and $@ are the inner shell's
    sh -c '[ "$0" = - ] || echo $$ >"$0/cgroup.procs" || exit 99; exec "$@"' "${START_IN:--}" \
        kiln run --kernel "$KERNEL" --memory 64M --cmdline "$counter_cmdline" --name "$name" \
        --api-socket none --shutdown-grace 0 --console "file:$DIR/$name.ttyS0.log" "$@" \
        </dev/null >/dev/null 2>"$DIR/$name.stderr" &
    EXTRA_PID=$!
}
# started NAME PID: waits (120 s at most) for the counter's first line on NAME's console; 1 if
# kiln PID ends or the time runs out first. (lib.sh's wait_console follows the quota VM.)
started() {
    i=0
    until grep -q '^counter: start' "$DIR/$1.ttyS0.log"; do
        kill -0 "$2" 2>/dev/null && [ $i -lt 600 ] || return 1
        sleep 0.2
        i=$((i + 1))
    done
}
# end_extra PID SECONDS: waits SECONDS at most for kiln PID to end, then kills it; sets
# EXTRA_STATUS.
end_extra() {
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt $(($2 * 5)) ]; do
        sleep 0.2
        i=$((i + 1))
    done
    kill -KILL "$1" 2>/dev/null
    EXTRA_STATUS=0
    wait "$1" || EXTRA_STATUS=$?
}
# stop_extra PID: SIGTERM, then at most 30 s; sets EXTRA_STATUS.
stop_extra() {
    kill -TERM "$1" 2>/dev/null
    end_extra "$1" 30
}

# --- a reference VM beside it: --cpu-weight only, no quota, about a whole CPU -------------------
# On L1's second CPU, as the quota VM's vCPU is on the first, so that the two do not meet.
start_extra free --cpus 1,pin=1 --cpu-weight "$WEIGHT"
FREE_PID=$EXTRA_PID
FDIR=$HOME_CG/kiln/free-$FREE_PID
if started free "$FREE_PID"; then
    fmax=$(cat "$FDIR/cpu.max" 2>&1)
    step0=$(last_step "$DIR/free.ttyS0.log")
    measure "$FDIR" "$FREE_PID"
    FSTEPS=$(($(last_step "$DIR/free.ttyS0.log") - ${step0:-0}))
    detail="the reference (cpu.max '$fmax', cpu.weight '$(cat "$FDIR/cpu.weight")') used ${USAGE} us in $WALL s: $RATIO% of one CPU (the vCPU thread $VCPU_RATIO%), nr_throttled +$THROTTLED, $FSTEPS steps; the quota VM $QRATIO%, $QSTEPS steps"
    if [ "$fmax" = "max 100000" ] && [ "$THROTTLED" -eq 0 ] && [ "$RATIO" -ge "$MIN_FREE_X100" ] &&
        [ $((QRATIO * 2)) -le "$RATIO" ]; then
        host_result PASS unlimited "$detail"
    else
        host_result FAIL unlimited "$detail (expected cpu.max 'max 100000', no throttling, at least $MIN_FREE_X100% and twice the quota VM's)"
    fi
else
    host_result FAIL unlimited "the reference VM printed no 'counter: start': $(tail -n 3 "$DIR/free.stderr")"
fi

# --- cpu.weight at work: a VM of weight 3*WEIGHT on the reference's CPU gets about 3 times its time
start_extra heavy --cpus 1,pin=1 --cpu-weight $((WEIGHT * 3))
HEAVY_PID=$EXTRA_PID
HDIR=$HOME_CG/kiln/heavy-$HEAVY_PID
if started heavy "$HEAVY_PID"; then
    f0=$(vcpu_ticks "$FREE_PID") h0=$(vcpu_ticks "$HEAVY_PID")
    sleep "$RUN_SECONDS"
    f1=$(vcpu_ticks "$FREE_PID") h1=$(vcpu_ticks "$HEAVY_PID")
    free_t=$((f1 - f0)) heavy_t=$((h1 - h0))
    detail="on one CPU for $RUN_SECONDS s, the vCPU of cpu.weight '$(cat "$HDIR/cpu.weight" 2>&1)' ran $heavy_t ticks, the one of cpu.weight '$(cat "$FDIR/cpu.weight" 2>&1)' $free_t"
    # 3:1 expected; 2:1 at least, as L1's own threads and kiln's loops share that CPU too.
    if [ "$heavy_t" -ge $((free_t * 2)) ] && [ "$free_t" -gt 0 ]; then
        host_result PASS weight "$detail"
    else
        host_result FAIL weight "$detail (expected about 3 times as many, at least twice)"
    fi
else
    host_result FAIL weight "the VM of weight $((WEIGHT * 3)) printed no 'counter: start': $(tail -n 3 "$DIR/heavy.stderr")"
fi

# --- after each VM: its folder gone, HOME/kiln only after the last ------------------------------
vm_folders() { find "$HOME_CG/kiln" -mindepth 1 -maxdepth 1 -type d 2>&1 | sed 's,.*/,,' | sort | tr '\n' ' '; }
kill -TERM "$VMM_PID"
wait_vmm 30
after_quota=$(vm_folders)
stop_extra "$HEAVY_PID"
HEAVY_STATUS=$EXTRA_STATUS
after_heavy=$(vm_folders)
stop_extra "$FREE_PID"
FREE_STATUS=$EXTRA_STATUS
warned=$(grep -h 'stays behind' "$DIR/vmm.stderr" "$DIR/free.stderr" "$DIR/heavy.stderr")
if [ "$VMM_STATUS $HEAVY_STATUS $FREE_STATUS" = "143 143 143" ] &&
    [ "$after_quota" = "free-$FREE_PID heavy-$HEAVY_PID " ] && [ "$after_heavy" = "free-$FREE_PID " ] &&
    [ ! -e "$HOME_CG/kiln" ] && [ -z "$warned" ]; then
    host_result PASS removed "after SIGTERM (status 143 each) each VM's folder went with it while HOME/kiln held the others ('$after_quota', then '$after_heavy'); after the last, HOME/kiln was gone too"
else
    host_result FAIL removed "statuses $VMM_STATUS $HEAVY_STATUS $FREE_STATUS (expected 143 each); HOME/kiln held '$after_quota' after the quota VM (expected 'free-$FREE_PID heavy-$HEAVY_PID'), '$after_heavy' after the heavy one (expected 'free-$FREE_PID'); after the last $HOME_CG/kiln $([ -e "$HOME_CG/kiln" ] && echo "exists, holding '$(vm_folders)'" || echo gone); warnings: '$warned'"
fi

# --- below the root: a delegated cgroup that holds only kiln, and one that holds more ----------
# kiln's HOME is then not the root, so cgroup v2's rule that only a folder without processes
# gives controllers to its children applies. DELEG stands in for a systemd-run --scope -p
# Delegate=yes scope: its parent offers it the cpu controller, as systemd does.
DELEG=$HOME_CG/deleg
mkdir "$DELEG" && echo +cpu >"$HOME_CG/cgroup.subtree_control" || die "cannot make $DELEG"
START_IN=$DELEG start_extra deleg --cpu-quota "$QUOTA"
DELEG_PID=$EXTRA_PID
if started deleg "$DELEG_PID"; then
    in=$(sed -n 's/^0:://p' "/proc/$DELEG_PID/cgroup") max=$(cat "$DELEG/kiln/deleg-$DELEG_PID/cpu.max" 2>&1)
    stop_extra "$DELEG_PID"
    left=$(find "$DELEG" -mindepth 1 -type d | tr '\n' ' ')
    if [ "$in" = "/deleg/kiln/deleg-$DELEG_PID" ] && [ "$max" = "$((QUOTA * 1000)) 100000" ] &&
        [ "$EXTRA_STATUS" = 143 ] && [ -z "$left" ] && ! grep -q 'stays behind' "$DIR/deleg.stderr"; then
        host_result PASS delegated "started in $DELEG, kiln ran in $in with cpu.max '$max'; after it (status 143) $DELEG held no folder"
    else
        host_result FAIL delegated "started in $DELEG: kiln ran in '$in' (expected /deleg/kiln/deleg-$DELEG_PID), cpu.max '$max'; status $EXTRA_STATUS (expected 143); left behind: '$left'; $(tail -n 2 "$DIR/deleg.stderr")"
    fi
else
    stop_extra "$DELEG_PID"
    host_result FAIL delegated "kiln started in $DELEG printed no 'counter: start' (status $EXTRA_STATUS): $(tail -n 3 "$DIR/deleg.stderr")"
fi
# Another process in DELEG: kiln must refuse in one line, with nothing left behind.
sleep 300 &
SLEEPER=$!
echo "$SLEEPER" >"$DELEG/cgroup.procs"
START_IN=$DELEG start_extra busy --cpu-quota "$QUOTA"
end_extra "$EXTRA_PID" 60 # it ends by itself at once
kill "$SLEEPER"
wait "$SLEEPER" 2>/dev/null
left=$(find "$DELEG" -mindepth 1 -type d | tr '\n' ' ')
if [ "$EXTRA_STATUS" = 125 ] && [ "$(wc -l <"$DIR/busy.stderr")" -eq 1 ] &&
    grep -q "^kiln: error: --cpu-quota: $DELEG holds other processes" "$DIR/busy.stderr" && [ -z "$left" ]; then
    host_result PASS refused "beside another process in $DELEG, kiln ended with status 125 and one line, leaving no folder: $(cat "$DIR/busy.stderr")"
else
    host_result FAIL refused "beside another process in $DELEG: status $EXTRA_STATUS (expected 125), left behind '$left', stderr: $(head -n 3 "$DIR/busy.stderr")"
fi
rmdir "$DELEG"

echo "kiln-check: INFO cgroup: HOME's cgroup.subtree_control after all: '$(cat "$HOME_CG/cgroup.subtree_control")'" >>"$RESULTS"
cp "$DIR"/free.* "$DIR"/heavy.* "$DIR"/deleg.* "$DIR"/busy.* "$OUT/" 2>/dev/null
finish_case "folder throttled unlimited weight removed delegated refused"
