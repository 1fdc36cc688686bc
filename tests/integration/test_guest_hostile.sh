#!/usr/bin/env bash
# The hostile-guest kit guest (hostile.elf) attacks kiln's virtio devices from inside a VM, one
# attack per run: re-offered busy heads, a reset with reads in flight, giant discards, descriptor
# loops, rings at and across the end of RAM, a console flood. kiln must give the expected
# reaction, still answer afterwards, stop on SIGTERM, and keep its peak RSS within a margin of a
# benign run's. Then the same guest on QEMU microvm, whose reactions are recorded, not judged.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"

require_kvm
require_guest hostile.elf
require_guest blk.elf

MEMORY=64M
# A benign guest already makes kiln map its libraries and touch some guest pages; the hostile
# guest touches little more guest RAM (320 KiB of read buffers, the last page of RAM, a 4 KiB
# console buffer). 16 MiB is far above that and above run-to-run noise, and far below what an
# unbounded queue costs: about 1 KiB of kiln memory per request, hundreds of thousands of them.
MARGIN_KIB=$((16 * 1024))
LIMIT=15 # seconds a run may take before it counts as hung; each takes 1-3 s
IMG=$TEST_TMP/disk.img
truncate -s 1M "$IMG"

# run_sampled NAME UNTIL -- COMMAND...: runs COMMAND in the background (stdout NAME.out, stderr
# NAME.err), sampling VmHWM from /proc every 50 ms, until it exits, or until NAME.out contains
# UNTIL (when not empty), when it gets SIGTERM. Sets status, PEAK_KIB (the highest VmHWM seen),
# HUNG (1 if it was still running after LIMIT s, or 5 s after the SIGTERM) and STOP_S (seconds
# from the SIGTERM to its exit).
run_sampled() {
    local name=$1 until=$2 pid start hwm stop_start
    shift 3
    "$@" </dev/null >"$TEST_TMP/$name.out" 2>"$TEST_TMP/$name.err" &
    pid=$!
    track_pid "$pid"
    start=$(now_us)
    PEAK_KIB=0 HUNG=0 STOP_S=
    while kill -0 "$pid" 2>/dev/null; do
        hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
        [ -z "$hwm" ] || [ "$hwm" -le "$PEAK_KIB" ] || PEAK_KIB=$hwm
        [ -z "$until" ] || ! grep -qaF -- "$until" "$TEST_TMP/$name.out" || break
        [ $(($(now_us) - start)) -lt $((LIMIT * 1000000)) ] || {
            HUNG=1
            break
        }
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        stop_start=$(now_us)
        kill -TERM "$pid"
        while kill -0 "$pid" 2>/dev/null && [ $(($(now_us) - stop_start)) -lt 5000000 ]; do
            hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
            [ -z "$hwm" ] || [ "$hwm" -le "$PEAK_KIB" ] || PEAK_KIB=$hwm
            sleep 0.05
        done
        STOP_S=$(seconds_since "$stop_start")
        kill -0 "$pid" 2>/dev/null && HUNG=1 && kill -KILL "$pid"
    fi
    status=0
    wait "$pid" || status=$?
}

# reaction NAME ATTACK: the guest's "hostile: ATTACK: REACTION; then: ..." line's REACTION.
reaction() {
    sed -n "s/^hostile: $2: \(.*\); then: .*/\1/p" "$TEST_TMP/$1.out" | head -n 1 | tr -d '\r'
}

KILN_ARGS=(run --disk "$IMG" --device-discovery cmdline --memory "$MEMORY" --shutdown-grace 1)

run_sampled kiln-benign "" -- "$KILN" "${KILN_ARGS[@]}" --kernel "$GUEST_DIR/blk.elf"
expect_status 0 "$(cat "$TEST_TMP/kiln-benign.out" "$TEST_TMP/kiln-benign.err")"
BASE_KIB=$PEAK_KIB
[ "$BASE_KIB" -gt 0 ] || fail "could not read kiln's VmHWM in /proc"
BOUND_KIB=$((BASE_KIB + MARGIN_KIB))
echo "kiln benign run (blk.elf): peak RSS $BASE_KIB KiB; bound for the attacks $BOUND_KIB KiB"

# kiln_attack ATTACK EXPECTED-LINE LOG-LINE: the attack, then the guest spins (ignoring the
# power button): the result line must appear, SIGTERM must stop kiln within the grace period
# plus slack, and the peak RSS must stay within the bound.
declare -A KILN_REACTION KILN_PEAK
kiln_attack() {
    local attack=$1 expected=$2 log=$3
    run_sampled "kiln-$attack" "hostile: the VMM" -- "$KILN" "${KILN_ARGS[@]}" \
        --kernel "$GUEST_DIR/hostile.elf" --cmdline "hostile.attack=$attack hostile.then=spin"
    local out=$TEST_TMP/kiln-$attack.out err=$TEST_TMP/kiln-$attack.err
    [ "$HUNG" -eq 0 ] || fail "$attack: kiln hung (no result within $LIMIT s, or no exit 5 s after SIGTERM): $(tail -5 "$out") $(tail -3 "$err")"
    expect_status 143 "$attack: $(tail -5 "$out") $(tail -3 "$err")"
    awk -v t="$STOP_S" 'BEGIN { exit !(t < 4) }' || fail "$attack: kiln took $STOP_S s to stop after SIGTERM"
    expect_contains "$out" "$expected"
    expect_contains "$out" "hostile: the VMM still answers"
    [ -z "$log" ] || expect_contains "$err" "$log"
    [ "$PEAK_KIB" -le "$BOUND_KIB" ] || fail "$attack: kiln's peak RSS $PEAK_KIB KiB is above $BOUND_KIB KiB (benign $BASE_KIB KiB + $MARGIN_KIB KiB)"
    KILN_REACTION[$attack]=$(reaction "kiln-$attack" "$attack")
    KILN_PEAK[$attack]=$PEAK_KIB
    echo "kiln $attack: ${KILN_REACTION[$attack]}; peak RSS $PEAK_KIB KiB; stopped $STOP_S s after SIGTERM"
}

kiln_attack reoffer "hostile: reoffer: NEEDS_RESET; then: a fresh request after reset works" \
    "available ring offers a head the device has not given back yet; the device needs a reset"
kiln_attack reset "hostile: reset: no stale completion; then: the new queue answers a fresh request" ""
kiln_attack discard "hostile: discard: IOERR for all four; then: a fresh request after reset works" \
    "discard/write-zeroes segment larger than advertised"
kiln_attack loop "hostile: loop: used length 0 for both; then: a fresh request after reset works" \
    "bad descriptor chain in queue 0: descriptor loop"
kiln_attack ring-top "hostile: ring-top: top table answered, top used ring answered, straddling table refused (NEEDS_RESET), straddling used ring refused (NEEDS_RESET); then: a fresh request after reset works" \
    "a ring lies outside guest RAM; the device needs a reset"

# The console flood ends through the exit port (status 0): kiln's stdout is a file taking
# ttyS0, hvc0 goes to another file, and every byte the guest counted as taken must be there.
run_sampled kiln-console "" -- "$KILN" "${KILN_ARGS[@]}" --kernel "$GUEST_DIR/hostile.elf" \
    --vconsole "file:$TEST_TMP/hvc0.txt" --cmdline "hostile.attack=console"
[ "$HUNG" -eq 0 ] || fail "console: kiln hung: $(tail -c 300 "$TEST_TMP/kiln-console.err")"
expect_status 0 "$(tail -3 "$TEST_TMP/kiln-console.err")"
expect_contains "$TEST_TMP/kiln-console.out" "hostile: console: all taken; then: the serial console still prints"
[ "$(stat -c %s "$TEST_TMP/hvc0.txt")" -ge $((16 << 20)) ] || fail "console: hvc0's file has $(stat -c %s "$TEST_TMP/hvc0.txt") bytes, expected at least 16 MiB"
[ "$PEAK_KIB" -le "$BOUND_KIB" ] || fail "console: kiln's peak RSS $PEAK_KIB KiB is above $BOUND_KIB KiB"
KILN_REACTION[console]=$(reaction kiln-console console)
KILN_PEAK[console]=$PEAK_KIB
echo "kiln console: ${KILN_REACTION[console]}; peak RSS $PEAK_KIB KiB"

ATTACKS=(reoffer reset discard loop ring-top console)
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
    echo "SKIP (QEMU half): qemu-system-x86_64 not installed; kiln half passed"
    echo "PASS"
    exit 0
fi

# The same guest on QEMU microvm (as test_qemu_blk.sh runs it); no spin, so it ends through
# isa-debug-exit: guest status S -> QEMU status (S << 1) | 1.
# shellcheck disable=SC2054 # commas inside QEMU's option values, not between elements
QEMU_ARGS=(-M microvm,acpi=off -enable-kvm -cpu host,-arch-capabilities -nodefaults -no-reboot
    -display none -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=4
    -global virtio-mmio.force-legacy=false -m "$MEMORY"
    -drive "id=d0,file=$IMG,format=raw,if=none" -device virtio-blk-device,drive=d0)
run_sampled qemu-benign "" -- qemu-system-x86_64 "${QEMU_ARGS[@]}" -kernel "$GUEST_DIR/blk.elf"
QEMU_BASE_KIB=$PEAK_KIB
declare -A QEMU_REACTION QEMU_PEAK
for attack in "${ATTACKS[@]}"; do
    extra=()
    # shellcheck disable=SC2054
    [ "$attack" != console ] || extra=(-chardev "file,id=hvc,path=$TEST_TMP/qemu-hvc0.txt"
        -device virtio-serial-device -device virtconsole,chardev=hvc)
    run_sampled "qemu-$attack" "" -- qemu-system-x86_64 "${QEMU_ARGS[@]}" "${extra[@]}" \
        -kernel "$GUEST_DIR/hostile.elf" -append "hostile.attack=$attack"
    QEMU_REACTION[$attack]=$(reaction "qemu-$attack" "$attack")
    if [ "$HUNG" -eq 1 ]; then
        QEMU_REACTION[$attack]="hung (stopped after $LIMIT s) ${QEMU_REACTION[$attack]}"
    elif ! grep -qF "hostile: the VMM still answers" "$TEST_TMP/qemu-$attack.out"; then
        QEMU_REACTION[$attack]="${QEMU_REACTION[$attack]:-no result}, then no answer (status $status)"
    fi
    QEMU_PEAK[$attack]=$PEAK_KIB
done

echo
echo "Reactions and peak RSS (benign run: kiln $BASE_KIB KiB, QEMU $QEMU_BASE_KIB KiB):"
for attack in "${ATTACKS[@]}"; do
    printf '%-8s kiln (%6s KiB): %s\n' "$attack" "${KILN_PEAK[$attack]}" "${KILN_REACTION[$attack]}"
    printf '%-8s QEMU (%6s KiB): %s\n' "" "${QEMU_PEAK[$attack]}" "${QEMU_REACTION[$attack]}"
done
echo "PASS"
