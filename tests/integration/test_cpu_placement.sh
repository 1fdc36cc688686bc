#!/usr/bin/env bash
# CPU placement as a user sees it (docs/placement.md): --cpus N,pin=LIST puts each vCPU
# thread (kiln-vcpuI) on its host CPU, round-robin over the list; --nice shows in
# /proc/PID/stat for the process and every thread; --cpu-quota and --cpu-weight put the VM in
# a cgroup of its own whose cpu.max and cpu.weight hold them while it runs and which is gone
# afterwards (or, on a host without cgroup v2's cpu controller, end in one clear line). Bad
# values end in one line and status 125.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest smp.elf
require_guest counter.elf
COUNTER=$GUEST_DIR/counter.elf
wait_for() { # wait_for PATTERN FILE [SECONDS]
    local i
    for ((i = 0; i < ${3:-60} * 10; i++)); do
        grep -qE -- "$1" "$2" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "no '$1' in $2 within ${3:-60} s: $(tail -n 5 "$2")"
}
# The task id of PID's thread named NAME.
thread_of() { # thread_of PID NAME
    local task
    for task in /proc/"$1"/task/*; do
        [ "$(cat "$task/comm" 2>/dev/null)" = "$2" ] && { basename "$task"; return 0; }
    done
    return 1
}
start_counter() { # start_counter FLAGS...: VM is the pid, once the guest prints
    "$KILN" run --kernel "$COUNTER" --cmdline every=100000 --api-socket none --shutdown-grace 0 "$@" \
        >"$TEST_TMP/vm.out" 2>"$TEST_TMP/vm.err" </dev/null &
    VM=$!
    track_pid "$VM"
    wait_for "^counter: start" "$TEST_TMP/vm.out"
}
# SIGTERM, then at most 30 s for kiln to end (status in $status); a kiln that does not is a
# failure, never a hung test.
stop_vm() { # stop_vm PID
    kill -TERM "$1" 2>/dev/null
    local i
    for ((i = 0; i < 300; i++)); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$1" 2>/dev/null; then
        kill -KILL "$1"
        fail "kiln (pid $1) did not end within 30 s of SIGTERM"
    fi
    status=0
    wait "$1" || status=$?
}
stop_counter() {
    stop_vm "$VM"
}

# --- pinning: vCPU i on the i-th CPU of the list, round-robin ----------------------------------
mapfile -t allowed < <(taskset -pc $$ | sed 's/.*: //' | tr ',' '\n' |
    awk -F- '{ for (c = $1; c <= ($2 == "" ? $1 : $2); c++) print c }')
last=${allowed[${#allowed[@]} - 1]} first=${allowed[0]}
# Three vCPUs on a list of two (reversed, so the order shows): last, first, last.
start_counter --cpus "3,pin=$last,$first"
want=("$last" "$first" "$last")
for i in 0 1 2; do
    # vCPUs 1 and 2 start only when the guest wakes them; their threads exist from the start.
    tid=$(thread_of "$VM" "kiln-vcpu$i") || fail "no thread kiln-vcpu$i in $(cat /proc/"$VM"/task/*/comm | tr '\n' ' ')"
    got=$(awk '$1 == "Cpus_allowed_list:" { print $2 }' "/proc/$VM/task/$tid/status")
    [ "$got" = "${want[i]}" ] || fail "kiln-vcpu$i may run on '$got', expected CPU ${want[i]}"
done
loop_cpus=$(awk '$1 == "Cpus_allowed_list:" { print $2 }' "/proc/$VM/status")
stop_counter
echo "pin=$last,$first: vCPUs 0-2 on CPUs ${want[*]}; the loop thread stays on $loop_cpus"

# A CPU this process may not use: one line at start, nothing run.
run_kiln "$TEST_TMP/bad.out" "$TEST_TMP/bad.err" run --kernel "$COUNTER" --cpus 2,pin=1000 --api-socket none
expect_status 125 "pin=1000"
expect_lines "$TEST_TMP/bad.err" 1
expect_contains "$TEST_TMP/bad.err" "--cpus: pin=: CPU 1000 is not one this process may run on (expected one of"

# An SMP guest still boots and runs all its CPUs when they are pinned.
run_kiln "$TEST_TMP/smp.out" "$TEST_TMP/smp.err" run --kernel "$GUEST_DIR/smp.elf" --cpus "2,pin=$first" --api-socket none
expect_status 0 "the smp guest pinned to one CPU: $(cat "$TEST_TMP/smp.err")"

# --- nice: the process and every thread it makes -----------------------------------------------
# Above the test's own nice value (ctest may run under nice), so no privilege is needed.
want_nice=$(($(nice) + 3 > 19 ? 19 : $(nice) + 3))
start_counter --nice "$want_nice" --cpus 2
nice_of() { awk '{ sub(/.*\) /, ""); print $17 }' "$1"; } # field 19 of stat, after "(comm) "
[ "$(nice_of "/proc/$VM/stat")" = "$want_nice" ] || fail "the process's nice value is $(nice_of "/proc/$VM/stat"), expected $want_nice"
for task in /proc/"$VM"/task/*; do
    [ "$(nice_of "$task/stat")" = "$want_nice" ] || fail "thread $(cat "$task/comm") has nice $(nice_of "$task/stat"), expected $want_nice"
done
threads=$(find /proc/"$VM"/task -mindepth 1 -maxdepth 1 | wc -l)
stop_counter
echo "--nice $want_nice: the process and its $threads threads"

# --- --on-reset restart: each rebuilt VM pins its new vCPU threads and sets the nice value
#     again, under the loop's seccomp filter (a forbidden call would end kiln with 159).
require_guest misbehave.elf
"$KILN" run --kernel "$GUEST_DIR/misbehave.elf" --cmdline mode=i8042-reset --on-reset restart \
    --shutdown-grace 0 --console "file:$TEST_TMP/reset.log" --cpus "2,pin=$last" \
    --nice "$want_nice" --api-socket none </dev/null >"$TEST_TMP/reset.out" 2>"$TEST_TMP/reset.err" &
VM=$!
track_pid "$VM"
for _ in $(seq 1 300); do
    n=$(grep -c 'resetting through the i8042' "$TEST_TMP/reset.log" 2>/dev/null)
    [ "${n:-0}" -ge 3 ] && break
    kill -0 "$VM" 2>/dev/null || break
    sleep 0.1
done
stop_vm "$VM"
expect_status 143 "the restarting VM with pin= and --nice: $(tail -n 3 "$TEST_TMP/reset.err")"
boots=$(grep -c 'resetting through the i8042' "$TEST_TMP/reset.log")
[ "$boots" -ge 3 ] || fail "expected at least 3 boots with pin= and --nice, got $boots"
echo "--on-reset restart with pin= and --nice: $boots boots, ended by SIGTERM"

# --- cgroup: cpu.max and cpu.weight while it runs, gone afterwards ------------------------------
cgroup_dir() { # the cgroup v2 folder of PID
    local mount
    mount=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
    echo "$mount$(sed -n 's/^0:://p' "/proc/$1/cgroup")"
}
home=$(cgroup_dir $$)
home=${home%/} # the root cgroup is "/"
if grep -qw cpu "$home/cgroup.controllers" 2>/dev/null && [ -w "$home/cgroup.subtree_control" ]; then
    start_counter --cpu-quota 150 --cpu-weight 250 --name quota
    dir=$(cgroup_dir "$VM")
    [ "$dir" = "$home/kiln/quota-$VM" ] || fail "the VM is in $dir, expected $home/kiln/quota-$VM"
    [ "$(cat "$dir/cpu.max")" = "150000 100000" ] || fail "cpu.max is '$(cat "$dir/cpu.max")'"
    [ "$(cat "$dir/cpu.weight")" = 250 ] || fail "cpu.weight is '$(cat "$dir/cpu.weight")'"
    stop_vm "$VM"
    [ ! -e "$dir" ] || fail "$dir is still there after the VM ended"
    grep -q "stays behind" "$TEST_TMP/vm.err" && fail "kiln could not remove its cgroup: $(cat "$TEST_TMP/vm.err")"
    echo "--cpu-quota 150 --cpu-weight 250: cpu.max and cpu.weight in $dir, gone afterwards"
else
    # Without the cpu controller in cgroup v2 (a hybrid host has it on v1): one clear line.
    run_kiln "$TEST_TMP/cg.out" "$TEST_TMP/cg.err" run --kernel "$COUNTER" --cpu-quota 150 --api-socket none
    expect_status 125 "--cpu-quota without cgroup v2's cpu controller"
    expect_lines "$TEST_TMP/cg.err" 1
    expect_contains "$TEST_TMP/cg.err" "a CPU quota or weight needs cgroup v2's cpu controller"
    echo "SKIP (cgroup part only): $home has no cpu controller to give; the refusal is one line: $(cat "$TEST_TMP/cg.err")"
fi

# --- bad values: one line each, status 125 -------------------------------------------------------
bad() { # bad EXPECTED FLAGS...
    local expected=$1
    shift
    run_kiln "$TEST_TMP/bad.out" "$TEST_TMP/bad.err" run --kernel "$COUNTER" --api-socket none "$@"
    expect_status 125 "$*"
    expect_lines "$TEST_TMP/bad.err" 1
    expect_contains "$TEST_TMP/bad.err" "$expected"
}
bad "--cpus: pin list '3-1' has a range that runs backwards" --cpus 2,pin=3-1
bad "--cpus: pin list '0,x' is not a CPU list" --cpus 2,pin=0,x
bad "--cpus: pin list '' is empty" --cpus 2,pin=
bad "--cpus: pin list '0-5000' names a CPU past 1023" --cpus 2,pin=0-5000
bad "--cpus: '2,pim=0' has an unknown option" --cpus 2,pim=0
bad "--cpu-quota: '0' is out of range (expected a percentage of one host CPU from 1 to 100000" --cpu-quota 0
bad "--cpu-quota: '1.5' is not a number" --cpu-quota 1.5
bad "--cpu-weight: '10001' is out of range (expected a cgroup cpu.weight from 1 to 10000)" --cpu-weight 10001
bad "--nice: '20' is out of range (expected a nice value from -20 to 19)" --nice 20
bad "--nice: 'low' is not a number" --nice low
echo "bad placement values refused in one line each"
