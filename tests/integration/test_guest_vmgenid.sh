#!/usr/bin/env bash
# The ACPI VM generation ID as a guest sees it: the vmgenid guest finds the ID through the
# DSDT's ADDR method and prints it, and again at each VM generation interrupt from the GED.
# Two boots get different IDs; a snapshot restored twice gives each clone its own new ID and
# one notify, neither the original's; a clone of a clone is notified again; the original keeps
# its ID. The host's debug line names the ID it wrote, which must be what the guest read.
# --vmgenid off leaves the device out, at boot and at restore.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest vmgenid.elf
require_guest counter.elf

SNAP=$TEST_TMP/snap
ctl() { timeout 60 "$KILN" ctl "$@"; }
wait_for() { # wait_for PATTERN FILE [SECONDS]
    local i
    for ((i = 0; i < ${3:-60} * 10; i++)); do
        grep -qE -- "$1" "$2" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "no '$1' in $2 within ${3:-60} s: $(tail -n 5 "$2")"
}
# id_of FILE NOTIFIES: the ID the guest printed with that many notifies.
id_of() { sed -n "s/^vmgenid: id \([0-9a-f]\{32\}\) notifies $2\$/\1/p" "$1" | tail -n 1; }
# start NAME ARGS...: a VM in the background writing NAME.txt and NAME.err, its pid in $PID.
start() {
    local name=$1
    shift
    "$KILN" "$@" --log-level debug >"$TEST_TMP/$name.txt" 2>"$TEST_TMP/$name.err" </dev/null &
    PID=$!
    track_pid "$PID"
}
# stop NAME PID: the power button (the guest exits 0 on it), then the VM must have ended 0.
stop() {
    kill -TERM "$2"
    status=0
    wait "$2" || status=$?
    expect_status 0 "$1 after the power button"
    expect_contains "$TEST_TMP/$1.txt" "vmgenid: power button"
}
# host_id NAME WHAT: the ID kiln's debug line says it wrote.
host_id() { sed -n "s/^kiln: debug: $2 \([0-9a-f]\{32\}\)\$/\1/p" "$TEST_TMP/$1.err" | tail -n 1; }

# --- two boots: each its own random ID, the one the host wrote --------------------------------
for i in 1 2; do
    start "boot$i" run --kernel "$GUEST_DIR/vmgenid.elf" --shutdown-grace 5
    wait_for "^vmgenid: id [0-9a-f]{32} notifies 0$" "$TEST_TMP/boot$i.txt"
    expect_contains "$TEST_TMP/boot$i.txt" "vmgenid: ADDR gives 0xef000"
    stop "boot$i" "$PID"
    BOOT[i]=$(id_of "$TEST_TMP/boot$i.txt" 0)
    [ "${BOOT[i]}" = "$(host_id "boot$i" "VM generation ID")" ] ||
        fail "boot $i: the guest read ${BOOT[i]}, kiln wrote '$(host_id "boot$i" "VM generation ID")'"
    [ "${BOOT[i]}" != 00000000000000000000000000000000 ] || fail "boot $i: the ID is all zero"
done
[ "${BOOT[1]}" != "${BOOT[2]}" ] || fail "two boots got the same ID ${BOOT[1]}"
echo "two boots: ${BOOT[1]}, ${BOOT[2]}"

# --- a snapshot restored twice: two new IDs, one notify each ------------------------------------
start orig run --kernel "$GUEST_DIR/vmgenid.elf" --shutdown-grace 5 --api-socket "$TEST_TMP/orig.sock"
ORIG_PID=$PID
wait_for "^vmgenid: id [0-9a-f]{32} notifies 0$" "$TEST_TMP/orig.txt"
ORIG=$(id_of "$TEST_TMP/orig.txt" 0)
ctl "$TEST_TMP/orig.sock" snapshot "$SNAP" >"$TEST_TMP/snap.txt" || fail "kiln ctl snapshot: $(cat "$TEST_TMP/snap.txt")"
for i in 1 2; do
    start "clone$i" restore "$SNAP" --api-socket "$TEST_TMP/clone$i.sock"
    CLONE_PID[i]=$PID
done
for i in 1 2; do
    wait_for "^vmgenid: id [0-9a-f]{32} notifies 1$" "$TEST_TMP/clone$i.txt"
    grep -q "ADDR gives" "$TEST_TMP/clone$i.txt" && fail "clone $i booted afresh instead of going on"
    CLONE[i]=$(id_of "$TEST_TMP/clone$i.txt" 1)
    [ "${CLONE[i]}" = "$(host_id "clone$i" "restored: new VM generation ID")" ] ||
        fail "clone $i: the guest read ${CLONE[i]}, kiln wrote '$(host_id "clone$i" "restored: new VM generation ID")'"
    expect_contains "$TEST_TMP/clone$i.err" "restored: the guest was notified on GSI 10"
    [ "${CLONE[i]}" != "$ORIG" ] || fail "clone $i kept the original's ID $ORIG"
done
[ "${CLONE[1]}" != "${CLONE[2]}" ] || fail "both clones got the same ID ${CLONE[1]}"
echo "original $ORIG; clone 1 ${CLONE[1]}; clone 2 ${CLONE[2]}"

# --- a clone of a clone: a second notify and a third ID -----------------------------------------
ctl "$TEST_TMP/clone1.sock" snapshot "$TEST_TMP/snap2" --stop >/dev/null || fail "snapshot --stop of clone 1"
wait "${CLONE_PID[1]}" || fail "clone 1 did not end with status 0 after snapshot --stop"
start clone3 restore "$TEST_TMP/snap2"
CLONE3_PID=$PID
wait_for "^vmgenid: id [0-9a-f]{32} notifies 2$" "$TEST_TMP/clone3.txt"
CLONE3=$(id_of "$TEST_TMP/clone3.txt" 2)
for other in "$ORIG" "${CLONE[1]}" "${CLONE[2]}"; do
    [ "$CLONE3" != "$other" ] || fail "the clone of a clone reused ID $other"
done
echo "clone of clone 1: $CLONE3, notifies 2"
stop clone3 "$CLONE3_PID"
stop clone2 "${CLONE_PID[2]}"

# --- --paused: the notify waits for resume, and arrives then -----------------------------------
start paused restore "$SNAP" --paused --api-socket "$TEST_TMP/p.sock"
P=$PID
for ((i = 0; i < 100; i++)); do [ -S "$TEST_TMP/p.sock" ] && break; sleep 0.1; done
sleep 0.5
grep -q "notifies 1" "$TEST_TMP/paused.txt" && fail "a --paused restore ran before resume"
ctl "$TEST_TMP/p.sock" resume >/dev/null || fail "resume of a paused restore"
wait_for "^vmgenid: id [0-9a-f]{32} notifies 1$" "$TEST_TMP/paused.txt"
stop paused "$P"

# The original never saw a notify and keeps its ID.
stop orig "$ORIG_PID"
grep -q "notifies [1-9]" "$TEST_TMP/orig.txt" && fail "the original was notified: $(cat "$TEST_TMP/orig.txt")"
# --vmgenid off: no device in the DSDT (the guest finds no ADDR), no ID written, and a restore
# of such a VM neither writes one nor raises the event.
run_kiln "$TEST_TMP/off.out" "$TEST_TMP/off.err" run --kernel "$GUEST_DIR/vmgenid.elf" --vmgenid off --log-level debug
expect_status 1 "the vmgenid guest with --vmgenid off"
expect_contains "$TEST_TMP/off.out" "vmgenid: the DSDT has no ADDR method"
expect_not_contains "$TEST_TMP/off.err" "VM generation ID"
start off run --kernel "$GUEST_DIR/counter.elf" --vmgenid off --shutdown-grace 0 --api-socket "$TEST_TMP/off.sock"
wait_for "^counter: step 1000 " "$TEST_TMP/off.txt"
ctl "$TEST_TMP/off.sock" snapshot "$TEST_TMP/off-snap" --stop >/dev/null || fail "snapshot --stop of the --vmgenid off VM"
wait "$PID" || fail "the --vmgenid off VM did not end with status 0 after snapshot --stop"
expect_contains "$TEST_TMP/off-snap/config.yaml" "vmgenid: off"
start off-restored restore "$TEST_TMP/off-snap" --api-socket "$TEST_TMP/off2.sock"
# Counting on from wherever the original stopped (under TSan it may be far past step 1000).
last=$(grep -E '^counter: step [0-9]+ sum [0-9a-f]{16}$' "$TEST_TMP/off.txt" | tail -n 1 | cut -d' ' -f3)
wait_for "^counter: step $((last + 2000)) " "$TEST_TMP/off-restored.txt"
ctl "$TEST_TMP/off2.sock" shutdown >/dev/null
wait "$PID" 2>/dev/null
expect_not_contains "$TEST_TMP/off-restored.err" "generation"

# --clone is a switch: a value is one line naming what a restore takes, and nothing runs.
run_kiln "$TEST_TMP/bad.out" "$TEST_TMP/bad.err" restore "$SNAP" --clone=yes
expect_status 125 "kiln restore --clone=yes"
expect_lines "$TEST_TMP/bad.err" 1
expect_contains "$TEST_TMP/bad.err" "kiln restore: --clone=yes cannot be given: the VM is the snapshot's (a restore takes --paused, --clone,"
[ ! -s "$TEST_TMP/bad.out" ] || fail "kiln restore --clone=yes ran the VM"
echo "PASS: VM generation ID: random per boot, new and notified at each restore, the original's kept"
