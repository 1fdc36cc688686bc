#!/usr/bin/env bash
# --seccomp: by default every thread of a running VM (event loop, vCPUs, I/O pool) is under a
# seccomp filter; with off none is; log runs the guest kit naming no forbidden call; a bad
# value is one error line, from the flag and from the YAML key alike.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest serial-echo.elf
require_guest blk.elf
require_guest balloon.elf

# Bad values: one line each, before anything starts.
run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$GUEST_DIR/serial-echo.elf" --seccomp bogus
expect_status 125
expect_lines "$TEST_TMP/err" 1
expect_contains "$TEST_TMP/err" "kiln: error: --seccomp: 'bogus' is not valid (expected off, log or kill)"
printf 'kernel:\n  path: %s\nseccomp: strict\n' "$GUEST_DIR/serial-echo.elf" >"$TEST_TMP/bad.yaml"
run_kiln "$TEST_TMP/out" "$TEST_TMP/err" validate "$TEST_TMP/bad.yaml"
expect_status 1
expect_lines "$TEST_TMP/err" 1
expect_contains "$TEST_TMP/err" "bad.yaml:3:10: seccomp: 'strict' is not valid (expected off, log or kill)"

# The YAML key and `kiln config` agree with the flag.
printf 'kernel:\n  path: %s\nseccomp: log\n' "$GUEST_DIR/serial-echo.elf" >"$TEST_TMP/log.yaml"
run_kiln "$TEST_TMP/out" "$TEST_TMP/err" config "$TEST_TMP/log.yaml"
expect_status 0 "$(cat "$TEST_TMP/err")"
expect_contains "$TEST_TMP/out" "seccomp: log"
run_kiln "$TEST_TMP/out" "$TEST_TMP/err" config --kernel "$GUEST_DIR/serial-echo.elf"
expect_contains "$TEST_TMP/out" "seccomp: kill"

# seccomp_states MODE: runs serial-echo with 2 vCPUs and a disk (so the I/O pool exists) and
# prints each thread's name and seccomp state (0 none, 2 filter) while the guest runs.
seccomp_states() {
    local mode=$1
    truncate -s 1M "$TEST_TMP/disk.img"
    rm -f "$TEST_TMP/in"
    mkfifo "$TEST_TMP/in"
    sleep 300 >"$TEST_TMP/in" &
    local holder=$!
    track_pid "$holder"
    "$KILN" run --kernel "$GUEST_DIR/serial-echo.elf" --cpus 2 --disk "$TEST_TMP/disk.img" \
        --seccomp "$mode" --shutdown-grace 0 <"$TEST_TMP/in" >"$TEST_TMP/$mode.out" 2>"$TEST_TMP/$mode.err" &
    local pid=$!
    track_pid "$pid"
    wait_for_text "$TEST_TMP/$mode.out" "serial-echo: ready" "$pid"
    # KVM's own kernel workers (kvm-nx-lpage-recovery) show up among the tasks: not kiln's.
    for task in /proc/"$pid"/task/*; do
        echo "$(cat "$task/comm") $(awk '$1 == "Seccomp:" { print $2 }' "$task/status")"
    done | grep -v '^kvm-'

    kill -TERM "$pid"
    status=0
    wait "$pid" || status=$?
    kill "$holder" 2>/dev/null || true
    expect_status 143 "$(cat "$TEST_TMP/$mode.err")"
}

seccomp_states kill >"$TEST_TMP/kill.states"
# The loop, 2 vCPUs, libuv's 4 pool threads, the snapshot writer and the migration sender (the
# control API's), all filtered.
[ "$(wc -l <"$TEST_TMP/kill.states")" -eq 9 ] || fail "expected 9 threads: $(tr '\n' ',' <"$TEST_TMP/kill.states")"
grep -q '^kiln-snapshot 2$' "$TEST_TMP/kill.states" ||
    fail "the snapshot writer is not filtered: $(tr '\n' ',' <"$TEST_TMP/kill.states")"
grep -q '^kiln-migrate 2$' "$TEST_TMP/kill.states" ||
    fail "the migration sender is not filtered: $(tr '\n' ',' <"$TEST_TMP/kill.states")"
[ "$(grep -c ' 2$' "$TEST_TMP/kill.states")" -eq 9 ] ||
    fail "a thread without its filter: $(tr '\n' ',' <"$TEST_TMP/kill.states")"
[ "$(grep -c '^kiln-vcpu[01] ' "$TEST_TMP/kill.states")" -eq 2 ] ||
    fail "expected 2 vCPU threads: $(tr '\n' ',' <"$TEST_TMP/kill.states")"

seccomp_states off >"$TEST_TMP/off.states"
# (The pool is started by the guest's first disk request then, so not there yet.)
[ "$(grep -c '^kiln-vcpu[01] 0$' "$TEST_TMP/off.states")" -eq 2 ] && ! grep -qv ' 0$' "$TEST_TMP/off.states" ||
    fail "--seccomp off left a filter: $(tr '\n' ',' <"$TEST_TMP/off.states")"

# log: the guest kit's block test makes no call outside the lists.
truncate -s 8M "$TEST_TMP/blk.img"
run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$GUEST_DIR/blk.elf" --device-discovery cmdline \
    --disk "$TEST_TMP/blk.img,serial=kiln-disk-1" --cmdline "blk.serial=kiln-disk-1" --seccomp log
expect_status 0 "$(cat "$TEST_TMP/out" "$TEST_TMP/err")"
expect_contains "$TEST_TMP/out" "blk: all checks passed"
expect_not_contains "$TEST_TMP/err" "seccomp"
# ... nor does a balloon's: pages punched out of RAM by inflates and free page reports.
run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$GUEST_DIR/balloon.elf" --memory 64M \
    --device-discovery cmdline --cmdline "balloon.mode=hostile" \
    --balloon 0,free-page-reporting=on --seccomp log --api-socket none
expect_status 0 "$(cat "$TEST_TMP/out" "$TEST_TMP/err")"
expect_contains "$TEST_TMP/out" "balloon: hostile: PASS"
expect_not_contains "$TEST_TMP/err" "seccomp"
echo "PASS"
