#!/usr/bin/env bash
# The counter guest's touch=MiB (bench/snapshot's way to give a snapshot something to save):
# it fills that much RAM, its counter lines stay those of an untouched run, a snapshot of it
# holds the touched MiB, and a touch= that is not a number or does not fit is one line, status 1.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest counter.elf

# touch= changes what is in RAM, not what the counter prints.
run_kiln "$TEST_TMP/plain.out" "$TEST_TMP/plain.err" run --kernel "$GUEST_DIR/counter.elf" \
    --memory 128M --cmdline "every=10 steps=100" --api-socket none
expect_status 0 "counter without touch=: $(cat "$TEST_TMP/plain.err")"
run_kiln "$TEST_TMP/touch.out" "$TEST_TMP/touch.err" run --kernel "$GUEST_DIR/counter.elf" \
    --memory 128M --cmdline "every=10 steps=100 touch=48" --api-socket none
expect_status 0 "counter touch=48: $(cat "$TEST_TMP/touch.err")"
expect_contains "$TEST_TMP/touch.out" "counter: touched 48 MiB from 0x1000000"
diff <(grep '^counter: step' "$TEST_TMP/plain.out") <(grep '^counter: step' "$TEST_TMP/touch.out") ||
    fail "touch=48 changed the counter's lines"
[ "$(grep -c '^counter: step' "$TEST_TMP/touch.out")" -eq 10 ] || fail "expected 10 counter lines: $(cat "$TEST_TMP/touch.out")"

# A snapshot of a touched guest holds at least the touched MiB (untouched RAM stays holes).
SOCK=$TEST_TMP/api.sock
"$KILN" run --kernel "$GUEST_DIR/counter.elf" --memory 128M --cmdline "every=1000 touch=48" \
    --api-socket "$SOCK" >"$TEST_TMP/vm.out" 2>"$TEST_TMP/vm.err" </dev/null &
VM=$!
track_pid "$VM"
for ((i = 0; i < 600; i++)); do
    grep -q '^counter: start' "$TEST_TMP/vm.out" && break
    sleep 0.1
done
expect_contains "$TEST_TMP/vm.out" "counter: start"
timeout 60 "$KILN" ctl "$SOCK" snapshot "$TEST_TMP/snap" --stop >"$TEST_TMP/snap.txt" 2>&1 ||
    fail "kiln ctl snapshot: $(cat "$TEST_TMP/snap.txt")"
wait "$VM" || fail "the VM did not end with status 0 after snapshot --stop"
used_kib=$(du -k "$TEST_TMP/snap/memory.kiln" | cut -f1)
if [ "$used_kib" -lt $((48 * 1024)) ] || [ "$used_kib" -ge $((64 * 1024)) ]; then
    fail "memory.kiln of a guest that touched 48 MiB uses $used_kib KiB on disk"
fi
echo "snapshot of touch=48: $used_kib KiB on disk"

# Bad values: one line naming the key, status 1.
bad() { # bad MEMORY CMDLINE EXPECTED-TEXT
    run_kiln "$TEST_TMP/bad.out" "$TEST_TMP/bad.err" run --kernel "$GUEST_DIR/counter.elf" \
        --memory "$1" --cmdline "$2" --api-socket none
    expect_status 1 "counter $2 with $1"
    expect_lines "$TEST_TMP/bad.out" 1
    expect_contains "$TEST_TMP/bad.out" "$3"
    echo "refused ($2, $1): $(cat "$TEST_TMP/bad.out")"
}
bad 128M "touch=12x" "counter: touch= must be a number of MiB"
bad 128M "touch=113" "counter: touch=113 MiB does not fit"
bad 128M "touch=0x100000" "does not fit"
echo "PASS: touch= fills RAM without changing the counter, a snapshot holds it, bad values refused"
