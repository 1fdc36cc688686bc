#!/usr/bin/env bash
# Live migration between two kiln processes on this host (docs/migration.md): the counter guest
# moves over a Unix socket and its lines go on, none lost or repeated; the dirty guest moves
# while writing 50 MiB/s, with no stale page and a stop under the limit; then each failure (the
# receiver killed mid-round, a cancel, the connection closed, garbage in the stream, nobody
# listening) leaves the source running and counting, and the receiver ends in one line, 125.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest counter.elf

COUNTER="$GUEST_DIR/counter.elf"
STEPS=150000

wait_for_line() { # wait_for_line FILE REGEX [TENTHS]
    for ((i = 0; i < ${3:-600}; i++)); do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "no '$2' in $1: $(tail -c 1000 "$1" 2>/dev/null)"
}

# wait_for_more_ticks FILE WHAT: the dirty guest in FILE prints three more tick lines (a guest
# behind its rate skips tick numbers, so lines are counted).
wait_for_more_ticks() {
    local ticks
    ticks=$(grep -c '^dirty: tick' "$1")
    for ((i = 0; i < 600; i++)); do
        [ "$(grep -c '^dirty: tick' "$1")" -ge $((ticks + 3)) ] && return 0
        sleep 0.1
    done
    fail "$2 does not tick: $(tail -3 "$1")"
}

end_pid() { # kills a VM or receiver and reaps it quietly
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

wait_for_socket() {
    for ((i = 0; i < 300; i++)); do
        [ -S "$1" ] && return 0
        sleep 0.1
    done
    fail "no socket $1"
}

# start_source NAME CMDLINE [FLAGS]: a counter VM with an API socket at $TEST_TMP/NAME.api.
start_source() {
    local name=$1 cmdline=$2
    shift 2
    "$KILN" run --kernel "$COUNTER" --memory 128M --cmdline "$cmdline" \
        --api-socket "$TEST_TMP/$name.api" "$@" >"$TEST_TMP/$name.out" 2>"$TEST_TMP/$name.err" </dev/null &
    SRC=$!
    track_pid "$SRC"
    wait_for_line "$TEST_TMP/$name.out" '^counter: step'
}

# start_receiver NAME [FLAGS]: kiln receive on $TEST_TMP/NAME.mig.
start_receiver() {
    local name=$1
    shift
    "$KILN" receive --listen "unix:$TEST_TMP/$name.mig" "$@" >"$TEST_TMP/$name.out" \
        2>"$TEST_TMP/$name.err" </dev/null &
    DST=$!
    track_pid "$DST"
    wait_for_socket "$TEST_TMP/$name.mig"
}

# The source counts on after a failed migration: a step it had not reached before shows up.
expect_source_runs() { # expect_source_runs NAME
    "$KILN" ctl "$TEST_TMP/$1.api" status >"$TEST_TMP/$1.status" 2>&1 ||
        fail "the source's API does not answer: $(cat "$TEST_TMP/$1.status")"
    expect_contains "$TEST_TMP/$1.status" ": running"
    local last
    last=$(grep -o '^counter: step [0-9]*' "$TEST_TMP/$1.out" | tail -1 | cut -d' ' -f3)
    wait_for_line "$TEST_TMP/$1.out" "^counter: step $((last + 2000)) " 300
}

# 1. A migration that works: every line the two processes print together is the undisturbed
#    run's, in order. The VM has a disk: the destination opens it while the source holds its
#    lock, and holds the lock once it runs.
truncate -s 1M "$TEST_TMP/disk.img"
start_source ok "every=2000 steps=$STEPS touch=32" --disk "$TEST_TMP/disk.img"
start_receiver okdst --api-socket "$TEST_TMP/okdst.api"
timeout 120 "$KILN" ctl "$TEST_TMP/ok.api" migrate "unix:$TEST_TMP/okdst.mig" \
    >"$TEST_TMP/ok.ctl" 2>&1 || fail "kiln ctl migrate: $(cat "$TEST_TMP/ok.ctl")"
cat "$TEST_TMP/ok.ctl"
expect_contains "$TEST_TMP/ok.ctl" "migrated:"
wait "$SRC" || fail "the source did not end with status 0 after the migration: $(cat "$TEST_TMP/ok.err")"
expect_contains "$TEST_TMP/ok.err" "migrated to unix:$TEST_TMP/okdst.mig"
run_kiln "$TEST_TMP/other.out" "$TEST_TMP/other.err" run --kernel "$COUNTER" --cmdline "steps=1" \
    --disk "$TEST_TMP/disk.img" --api-socket none
expect_status 125 "a second VM on the migrated VM's disk"
expect_contains "$TEST_TMP/other.err" "is in use by another VM"
"$KILN" ctl "$TEST_TMP/okdst.api" status >"$TEST_TMP/okdst.status" 2>&1 ||
    fail "the destination's API does not answer: $(cat "$TEST_TMP/okdst.status")"
wait "$DST" || fail "the destination did not end with the guest's status 0: $(cat "$TEST_TMP/okdst.err")"
run_kiln "$TEST_TMP/ref.out" "$TEST_TMP/ref.err" run --kernel "$COUNTER" --memory 128M \
    --cmdline "every=2000 steps=$STEPS" --api-socket none
expect_status 0 "the undisturbed run: $(cat "$TEST_TMP/ref.err")"
cat "$TEST_TMP/ok.out" "$TEST_TMP/okdst.out" | grep '^counter: step' >"$TEST_TMP/moved.lines"
grep '^counter: step' "$TEST_TMP/ref.out" >"$TEST_TMP/ref.lines"
diff "$TEST_TMP/ref.lines" "$TEST_TMP/moved.lines" >"$TEST_TMP/diff" ||
    fail "the migrated counter's lines differ from an undisturbed run's: $(head -20 "$TEST_TMP/diff")"
grep -q '^counter: step' "$TEST_TMP/okdst.out" || fail "the destination printed no counter line"
echo "migrated: the source printed $(grep -c '^counter: step' "$TEST_TMP/ok.out") lines, the destination $(grep -c '^counter: step' "$TEST_TMP/okdst.out"), all the undisturbed run's"

# 1b. A guest that writes 50 MiB/s over 64 MiB while it moves: every page it rewrites on the
#     destination still holds what it wrote on the source (else it prints a BAD line and fails),
#     its sums are an undisturbed run's for the same pages written, and the longest stop it saw
#     stays under the 300 ms downtime limit.
#     Under ThreadSanitizer the sender copies at a few MiB/s, so the TSan tier sets a slower
#     guest in KILN_MIGRATE_TEST_DIRTY (scripts/dev.sh).
require_guest dirty.elf
DIRTY_KEYS=${KILN_MIGRATE_TEST_DIRTY:-rate=50 span=64 tick=100 seconds=8}
"$KILN" run --kernel "$GUEST_DIR/dirty.elf" --memory 256M --cmdline "$DIRTY_KEYS" \
    --api-socket "$TEST_TMP/dirty.api" >"$TEST_TMP/dirty.out" 2>"$TEST_TMP/dirty.err" </dev/null &
SRC=$!
track_pid "$SRC"
wait_for_line "$TEST_TMP/dirty.out" '^dirty: tick 10 '
start_receiver dirtydst
timeout 120 "$KILN" ctl "$TEST_TMP/dirty.api" migrate "unix:$TEST_TMP/dirtydst.mig" \
    >"$TEST_TMP/dirty.ctl" 2>&1 || fail "kiln ctl migrate (dirty guest): $(cat "$TEST_TMP/dirty.ctl")"
cat "$TEST_TMP/dirty.ctl"
wait "$SRC" || fail "the dirty guest's source did not end with status 0: $(cat "$TEST_TMP/dirty.err")"
status=0
wait "$DST" || status=$?
expect_status 0 "the migrated dirty guest: $(tail -3 "$TEST_TMP/dirtydst.out")"
expect_not_contains "$TEST_TMP/dirtydst.out" "BAD"
expect_contains "$TEST_TMP/dirtydst.out" "dirty: done"
run_kiln "$TEST_TMP/dirtyref.out" "$TEST_TMP/dirtyref.err" run --kernel "$GUEST_DIR/dirty.elf" \
    --memory 256M --cmdline "$DIRTY_KEYS" --api-socket none
expect_status 0 "the undisturbed dirty guest: $(cat "$TEST_TMP/dirtyref.err")"
sums() { awk '/^dirty: (tick|done) / { for (i = 1; i < NF; i++) { if ($i == "written") n = $(i + 1); if ($i == "sum") s = $(i + 1) } print n, s }' "$@" | LC_ALL=C sort -u; }
sums "$TEST_TMP/dirtydst.out" >"$TEST_TMP/dirty.sums"
sums "$TEST_TMP/dirtyref.out" >"$TEST_TMP/dirtyref.sums"
common=$(LC_ALL=C join "$TEST_TMP/dirty.sums" "$TEST_TMP/dirtyref.sums" | wc -l)
mismatched=$(LC_ALL=C join "$TEST_TMP/dirty.sums" "$TEST_TMP/dirtyref.sums" | awk '$2 != $3')
[ -z "$mismatched" ] || fail "the migrated dirty guest's sums differ from an undisturbed run's: $mismatched"
[ "$common" -ge 5 ] || fail "only $common written counts in common with an undisturbed run"
guest_gap_us=$(awk '/^dirty: tick / { for (i = 1; i < NF; i++) if ($i == "gap_us" && $(i + 1) > g) g = $(i + 1) } END { print g + 0 }' "$TEST_TMP/dirtydst.out")
echo "dirty guest ($DIRTY_KEYS) moved: $common sums as undisturbed, longest stop the guest saw on the destination $((guest_gap_us / 1000)) ms"
[ "$guest_gap_us" -lt 300000 ] || fail "the guest saw a stop of $guest_gap_us us, over the 300 ms downtime limit"

# 2. The receiver dies mid-round (a slow, rate-limited copy of 96 touched MiB): the source runs on.
start_source kill "every=2000 touch=96"
start_receiver killdst
timeout 120 "$KILN" ctl "$TEST_TMP/kill.api" migrate "unix:$TEST_TMP/killdst.mig" --bandwidth 16 \
    >"$TEST_TMP/kill.ctl" 2>&1 &
CTL=$!
sleep 1.5
"$KILN" ctl "$TEST_TMP/kill.api" status >"$TEST_TMP/kill.progress" 2>&1
expect_contains "$TEST_TMP/kill.progress" "migration: copying, round 0"
end_pid "$DST"
wait "$CTL" && fail "kiln ctl migrate succeeded though the receiver was killed"
cat "$TEST_TMP/kill.ctl"
expect_contains "$TEST_TMP/kill.ctl" "kiln ctl: error: migrate:"
expect_source_runs kill
end_pid "$SRC"

# 3. A cancel: the source runs on, the receiver discards what it had and says so.
start_source cancel "every=2000 touch=96"
start_receiver canceldst
timeout 120 "$KILN" ctl "$TEST_TMP/cancel.api" migrate "unix:$TEST_TMP/canceldst.mig" \
    --bandwidth 16 >"$TEST_TMP/cancel.ctl" 2>&1 &
CTL=$!
sleep 1.5
"$KILN" ctl "$TEST_TMP/cancel.api" migrate-cancel >"$TEST_TMP/cancel.reply" 2>&1 ||
    fail "migrate-cancel: $(cat "$TEST_TMP/cancel.reply")"
wait "$CTL" && fail "kiln ctl migrate succeeded though it was cancelled"
expect_contains "$TEST_TMP/cancel.ctl" "cancelled"
status=0
wait "$DST" || status=$?
expect_status 125 "the receiver of a cancelled migration"
expect_contains "$TEST_TMP/canceldst.err" "the sender cancelled the migration"
expect_source_runs cancel
"$KILN" ctl "$TEST_TMP/cancel.api" migrate-cancel >"$TEST_TMP/cancel.again" 2>&1 &&
    fail "a second migrate-cancel succeeded"
expect_contains "$TEST_TMP/cancel.again" "no migration is under way"
end_pid "$SRC"

# 3b. A guest that dirties memory faster than an 8 MiB/s link carries it never converges: past
#     --timeout-s the source gives up, says why, and runs on; the receiver is told and ends.
"$KILN" run --kernel "$GUEST_DIR/dirty.elf" --memory 128M --cmdline "rate=400 span=32 tick=100" \
    --api-socket "$TEST_TMP/busy.api" >"$TEST_TMP/busy.out" 2>"$TEST_TMP/busy.err" </dev/null &
SRC=$!
track_pid "$SRC"
wait_for_line "$TEST_TMP/busy.out" '^dirty: tick [0-9]+ ' # a guest behind its rate skips ticks
start_receiver busydst
timeout 120 "$KILN" ctl "$TEST_TMP/busy.api" migrate "unix:$TEST_TMP/busydst.mig" --bandwidth 8 \
    --timeout-s 4 >"$TEST_TMP/busy.ctl" 2>&1 && fail "a migration that cannot converge succeeded"
cat "$TEST_TMP/busy.ctl"
expect_contains "$TEST_TMP/busy.ctl" "did not converge in 4 s"
status=0
wait "$DST" || status=$?
expect_status 125 "the receiver of a migration that did not converge"
expect_contains "$TEST_TMP/busydst.err" "the sender gave up: did not converge"
"$KILN" ctl "$TEST_TMP/busy.api" status >"$TEST_TMP/busy.status" 2>&1
expect_contains "$TEST_TMP/busy.status" ": running"
expect_contains "$TEST_TMP/busy.status" "migration: failed"
wait_for_more_ticks "$TEST_TMP/busy.out" "the guest after the failed migration"
expect_not_contains "$TEST_TMP/busy.out" "BAD"
end_pid "$SRC"

# 3c. The same kind of guest (all the CPU it gets, writing a 32 MiB span) over a 64 MiB/s link
#     does not converge either (each round finds the whole span dirty again), but with
#     --auto-converge the source holds its vCPUs a growing share of the time until it does: the
#     guest moves with no stale page.
if [ -n "${KILN_MIGRATE_TEST_SLOW:-}" ]; then
    # ThreadSanitizer's sender copies a few MiB/s: less than a guest held 99% of the time writes.
    echo "auto-converge case left out: KILN_MIGRATE_TEST_SLOW is set (the TSan tier)"
else
    "$KILN" run --kernel "$GUEST_DIR/dirty.elf" --memory 128M --cmdline "rate=3000 span=32 tick=100" \
        --api-socket "$TEST_TMP/conv.api" >"$TEST_TMP/conv.out" 2>"$TEST_TMP/conv.err" </dev/null &
    SRC=$!
    track_pid "$SRC"
    wait_for_line "$TEST_TMP/conv.out" '^dirty: tick [0-9]+ '
    start_receiver convdst
    timeout 120 "$KILN" ctl "$TEST_TMP/conv.api" migrate "unix:$TEST_TMP/convdst.mig" --bandwidth 64 \
        --timeout-s 60 --auto-converge >"$TEST_TMP/conv.ctl" 2>&1 &
    CTL=$!
    throttled=""
    for ((i = 0; i < 600; i++)); do
        "$KILN" ctl "$TEST_TMP/conv.api" status >"$TEST_TMP/conv.status" 2>&1 || break
        throttled=$(grep -o 'vCPUs throttled [1-9][0-9]*%' "$TEST_TMP/conv.status")
        [ -n "$throttled" ] && break
        sleep 0.1
    done
    [ -n "$throttled" ] || fail "the migration never throttled the vCPUs: $(cat "$TEST_TMP/conv.status")"
    wait "$CTL" || fail "an auto-converging migration failed: $(cat "$TEST_TMP/conv.ctl")"
    echo "auto-converge: $throttled at some point; $(cat "$TEST_TMP/conv.ctl")"
    wait "$SRC" || fail "the auto-converged source did not end with status 0"
    wait_for_more_ticks "$TEST_TMP/convdst.out" "the auto-converged guest on the destination"
    expect_not_contains "$TEST_TMP/convdst.out" "BAD"
    end_pid "$DST"
fi

# 4. The connection closes, then garbage arrives, part-way through the memory: the receiver
#    ends in one line (status 125) and runs nothing; the source runs on.
for mode in close corrupt; do
    start_source "$mode" "every=2000 touch=32"
    start_receiver "${mode}dst"
    python3 "$SOURCE_DIR/tests/integration/mig_proxy.py" "$TEST_TMP/$mode.proxy" \
        "$TEST_TMP/${mode}dst.mig" "$mode" $((5 * 1024 * 1024 + 123)) >"$TEST_TMP/$mode.proxy.out" 2>&1 &
    track_pid $!
    wait_for_socket "$TEST_TMP/$mode.proxy"
    timeout 120 "$KILN" ctl "$TEST_TMP/$mode.api" migrate "unix:$TEST_TMP/$mode.proxy" \
        >"$TEST_TMP/$mode.ctl" 2>&1 && fail "kiln ctl migrate through a proxy that ${mode}s succeeded"
    expect_contains "$TEST_TMP/$mode.ctl" "kiln ctl: error: migrate:"
    status=0
    wait "$DST" || status=$?
    expect_status 125 "the receiver of a stream that was ${mode}d"
    expect_lines "$TEST_TMP/${mode}dst.err" 2 # its waiting line, then one error
    expect_not_contains "$TEST_TMP/${mode}dst.out" "counter:"
    echo "$mode: $(tail -1 "$TEST_TMP/${mode}dst.err")"
    expect_source_runs "$mode"
    end_pid "$SRC"
done

# 4b. The same garbage on a keyed stream is caught as such: the receiver says the stream was
#     altered, not merely cut.
(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$TEST_TMP/key")
start_source keyed "every=2000 touch=32"
start_receiver keyeddst --psk-file "$TEST_TMP/key"
python3 "$SOURCE_DIR/tests/integration/mig_proxy.py" "$TEST_TMP/keyed.proxy" \
    "$TEST_TMP/keyeddst.mig" corrupt $((5 * 1024 * 1024 + 123)) >"$TEST_TMP/keyed.proxy.out" 2>&1 &
track_pid $!
wait_for_socket "$TEST_TMP/keyed.proxy"
timeout 120 "$KILN" ctl "$TEST_TMP/keyed.api" migrate "unix:$TEST_TMP/keyed.proxy" \
    --psk-file "$TEST_TMP/key" >"$TEST_TMP/keyed.ctl" 2>&1 && fail "a keyed migration through garbage succeeded"
status=0
wait "$DST" || status=$?
expect_status 125 "the receiver of an altered keyed stream"
expect_contains "$TEST_TMP/keyeddst.err" "the stream was altered or corrupted"
expect_not_contains "$TEST_TMP/keyeddst.out" "counter:"
expect_source_runs keyed
end_pid "$SRC"

# 4c. The link fails at the hand-over, after the source let go of its disk: the disk's lock
#     decides who runs the VM. drop-go: the receiver never hears GO, so it ends (125) without
#     taking the disk; the source takes its lock back and runs on. drop-running: the receiver
#     took the disk and runs, but the source never hears RUNNING; it cannot take the lock back,
#     so it knows the destination runs the VM and ends with status 0, as after a migration.
# migrate_dropping NAME MODE: migrates source NAME to a new receiver through mig_proxy.py in
# MODE (drop-go or drop-running), which must drop its record; sets ctl_status.
migrate_dropping() {
    local name=$1 mode=$2
    start_receiver "${name}dst"
    python3 "$SOURCE_DIR/tests/integration/mig_proxy.py" "$TEST_TMP/$name.proxy" \
        "$TEST_TMP/${name}dst.mig" "$mode" >"$TEST_TMP/$name.proxy.out" 2>&1 &
    track_pid $!
    wait_for_socket "$TEST_TMP/$name.proxy"
    ctl_status=0
    timeout 120 "$KILN" ctl "$TEST_TMP/$name.api" migrate "unix:$TEST_TMP/$name.proxy" \
        >"$TEST_TMP/$name.ctl" 2>&1 || ctl_status=$?
    expect_contains "$TEST_TMP/$name.proxy.out" "dropped it"
}
for mode in drop-go drop-running; do
    truncate -s 1M "$TEST_TMP/$mode.img"
    start_source "$mode" "every=2000 steps=$STEPS touch=32" --disk "$TEST_TMP/$mode.img"
    migrate_dropping "$mode" "$mode"
    if [ "$mode" = drop-go ]; then
        [ "$ctl_status" -eq 1 ] || fail "drop-go: kiln ctl migrate exited $ctl_status: $(cat "$TEST_TMP/$mode.ctl")"
        status=0
        wait "$DST" || status=$?
        expect_status 125 "drop-go: the receiver that never heard GO"
        expect_source_runs "$mode"
        run_kiln "$TEST_TMP/third.out" "$TEST_TMP/third.err" run --kernel "$COUNTER" \
            --cmdline "steps=1" --disk "$TEST_TMP/$mode.img" --api-socket none
        expect_status 125 "drop-go: a second VM on the disk the source took back"
        expect_contains "$TEST_TMP/third.err" "is in use by another VM"
        end_pid "$SRC"
    else
        [ "$ctl_status" -eq 0 ] || fail "drop-running: kiln ctl migrate exited $ctl_status: $(cat "$TEST_TMP/$mode.ctl")"
        wait "$SRC" || fail "drop-running: the source did not end with status 0: $(cat "$TEST_TMP/$mode.err")"
        expect_contains "$TEST_TMP/$mode.err" "the destination took over the disks"
        wait "$DST" || fail "drop-running: the destination did not end with the guest's status 0: $(cat "$TEST_TMP/${mode}dst.err")"
        cat "$TEST_TMP/$mode.out" "$TEST_TMP/${mode}dst.out" | grep '^counter: step' >"$TEST_TMP/$mode.lines"
        diff "$TEST_TMP/ref.lines" "$TEST_TMP/$mode.lines" >"$TEST_TMP/$mode.diff" ||
            fail "drop-running: the counter's lines differ from an undisturbed run's: $(head "$TEST_TMP/$mode.diff")"
    fi
    echo "$mode: $(tail -1 "$TEST_TMP/$mode.ctl")"
done

# 4d. The same without a disk: no lock tells whether the destination took over, so the source
#     stays paused either way (never two copies running) and says so; `kiln ctl resume` is the
#     user's call. drop-go: the receiver never ran it, so resuming the source is right.
#     drop-running: the receiver runs it, and the source must still be paused.
for mode in drop-go drop-running; do
    name=nodisk-$mode
    start_source "$name" "every=2000 steps=$STEPS touch=32"
    migrate_dropping "$name" "$mode"
    [ "$ctl_status" -eq 1 ] || fail "$name: kiln ctl migrate exited $ctl_status: $(cat "$TEST_TMP/$name.ctl")"
    expect_contains "$TEST_TMP/$name.ctl" "the VM stays paused here"
    "$KILN" ctl "$TEST_TMP/$name.api" status >"$TEST_TMP/$name.status" 2>&1
    expect_contains "$TEST_TMP/$name.status" ": paused"
    last=$(grep -c '^counter: step' "$TEST_TMP/$name.out")
    sleep 1
    [ "$(grep -c '^counter: step' "$TEST_TMP/$name.out")" -eq "$last" ] ||
        fail "$name: the source counted on while it should be paused"
    if [ "$mode" = drop-go ]; then
        status=0
        wait "$DST" || status=$?
        expect_status 125 "$name: the receiver that never heard GO"
        "$KILN" ctl "$TEST_TMP/$name.api" resume >/dev/null 2>&1 || fail "$name: resume failed"
        expect_source_runs "$name"
    else
        wait "$DST" || fail "$name: the destination did not end with the guest's status 0: $(cat "$TEST_TMP/${name}dst.err")"
    fi
    end_pid "$SRC"
    echo "$name: $(tail -1 "$TEST_TMP/$name.ctl")"
done

# 5. Nobody listens: one line, the source runs on.
start_source none "every=2000"
"$KILN" ctl "$TEST_TMP/none.api" migrate "unix:$TEST_TMP/nobody.mig" >"$TEST_TMP/none.ctl" 2>&1 &&
    fail "a migration to nobody succeeded"
expect_contains "$TEST_TMP/none.ctl" "nobody.mig"
expect_source_runs none
end_pid "$SRC"

# 6. Bad command lines, each one line and status 125.
run_kiln "$TEST_TMP/b1.out" "$TEST_TMP/b1.err" receive
expect_status 125
expect_contains "$TEST_TMP/b1.err" "no --listen"
run_kiln "$TEST_TMP/b2.out" "$TEST_TMP/b2.err" receive --listen "ftp:x"
expect_status 125
expect_contains "$TEST_TMP/b2.err" "migration address 'ftp:x'"
run_kiln "$TEST_TMP/b3.out" "$TEST_TMP/b3.err" receive --listen "unix:$TEST_TMP/t.mig" --timeout-s 1
expect_status 125
expect_lines "$TEST_TMP/b3.err" 2
run_kiln "$TEST_TMP/b4.out" "$TEST_TMP/b4.err" receive --listen "unix:$TEST_TMP/t.mig" --memory 1G
expect_status 125
expect_contains "$TEST_TMP/b4.err" "--memory cannot be given"
run_kiln "$TEST_TMP/b5.out" "$TEST_TMP/b5.err" ctl "$TEST_TMP/x.api" migrate "unix:/x" --downtime-ms 0
expect_status 125
expect_contains "$TEST_TMP/b5.err" "--downtime-ms: '0'"
echo "PASS: a migration moves the counter with no line lost; killed, cancelled, closed and corrupt migrations and bad flags leave the source running"
