#!/usr/bin/env bash
# The dirty guest (live migration's test guest): it writes memory at the rate asked, two runs
# print the same sum for the same pages written, rate=0 writes nothing, its kvmclock sees a
# pause and the time a snapshot lay on disk, a page changed or lost behind its back is named in
# one BAD line, bad keys are one line with status 1, and it runs on QEMU microvm too.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest dirty.elf

KEYS="rate=20 span=16 tick=100"
PAGES_PER_SECOND=$((20 * 256)) # 20 MiB/s of 4 KiB pages
GAP_SEEN_US=900000             # a 1 s stop, less the timer's and the host's slack

dirty_run() { # dirty_run NAME CMDLINE [kiln flags...]: kiln's output in $TEST_TMP/NAME.out
    local name=$1 cmdline=$2
    shift 2
    run_kiln "$TEST_TMP/$name.out" "$TEST_TMP/$name.err" run --kernel "$GUEST_DIR/dirty.elf" \
        --memory 128M --cmdline "$cmdline" --api-socket none "$@"
}

field() { # field FILE PATTERN KEY: KEY's value in the last line of FILE matching PATTERN
    grep -E "$2" "$1" | tail -n 1 | awk -v key="$3" '{ for (i = 1; i < NF; i++) if ($i == key) print $(i + 1) }'
}

sums_by_written() { # sums_by_written FILE: "N SUM" for every tick and done line, as join sorts
    awk '/^dirty: (tick|done) / {
        for (i = 1; i < NF; i++) { if ($i == "written") n = $(i + 1); if ($i == "sum") s = $(i + 1) }
        print n, s }' "$1" | LC_ALL=C sort -u
}

# same_sums A B WHAT: every N both runs print has the same sum in both, and there are at least
# 3 such N (the lines land on N = ticks * 512 whenever the writer keeps up with the rate).
same_sums() {
    local a=$TEST_TMP/sums.a b=$TEST_TMP/sums.b
    sums_by_written "$1" >"$a"
    sums_by_written "$2" >"$b"
    [ "$(cut -d' ' -f1 "$a" | uniq -d | wc -l)" -eq 0 ] || fail "$3: one N with two sums in $1: $(cat "$a")"
    local common mismatched
    common=$(LC_ALL=C join "$a" "$b" | wc -l)
    mismatched=$(LC_ALL=C join "$a" "$b" | awk '$2 != $3')
    [ -z "$mismatched" ] || fail "$3: the sums differ for the same pages written (N SUM SUM): $mismatched"
    [ "$common" -ge 3 ] || fail "$3: only $common N in common with the undisturbed run: $(cat "$a") / $(cat "$b")"
    echo "$3: same sums as the undisturbed run for $common values of N"
}

wait_for_written() { # wait_for_written FILE N: until a tick line of FILE shows at least N pages
    for ((i = 0; i < 600; i++)); do
        [ "$(field "$1" '^dirty: tick ' written)" -ge "$2" ] 2>/dev/null && return 0
        sleep 0.05
    done
    fail "no tick line with written >= $2 in 30 s: $(tail -5 "$1")"
}

# --- the rate, the ticks, the gaps --------------------------------------------------------------
dirty_run plain "$KEYS seconds=2"
expect_status 0 "dirty $KEYS seconds=2: $(cat "$TEST_TMP/plain.err")"
expect_contains "$TEST_TMP/plain.out" "dirty: start rate 20 span 16 tick 100"
ticks=$(grep -c '^dirty: tick ' "$TEST_TMP/plain.out")
written=$(field "$TEST_TMP/plain.out" '^dirty: done ' written)
maxgap=$(field "$TEST_TMP/plain.out" '^dirty: done ' maxgap_us)
echo "2 s at 20 MiB/s: $ticks tick lines, $written pages written (rate: $((2 * PAGES_PER_SECOND))), maxgap_us $maxgap"
((ticks >= 10 && ticks <= 20)) || fail "expected 10-20 tick lines in 2 s: $(cat "$TEST_TMP/plain.out")"
[ "$(field "$TEST_TMP/plain.out" '^dirty: tick ' tick)" -eq 20 ] || fail "the last tick line is not tick 20"
[[ $written =~ ^[0-9]+$ ]] || fail "no done line: $(tail -3 "$TEST_TMP/plain.out")"
((written >= 2 * PAGES_PER_SECOND * 40 / 100 && written <= 2 * PAGES_PER_SECOND * 160 / 100)) ||
    fail "expected about $((2 * PAGES_PER_SECOND)) pages written: $(tail -3 "$TEST_TMP/plain.out")"
[ "$maxgap" -lt 500000 ] || fail "an undisturbed run stopped for $maxgap us: $(cat "$TEST_TMP/plain.out")"
# Before each line the guest writes every page the rate allowed before that tick: N = T * 512.
off_rate=$(awk '/^dirty: tick / && $5 != $3 * 512' "$TEST_TMP/plain.out")
[ -z "$off_rate" ] || fail "tick lines whose N is not T * 512 pages: $off_rate"
# The guest's 2 s are 2 s of the host's time: kvmclock neither runs fast nor stands still.
start_us=$(now_us)
dirty_run timed "$KEYS seconds=2"
wall_ms=$((($(now_us) - start_us) / 1000))
expect_status 0 "dirty $KEYS seconds=2 (timed): $(cat "$TEST_TMP/timed.err")"
echo "2 s by kvmclock took $wall_ms ms on the host"
((wall_ms >= 1900 && wall_ms <= 10000)) || fail "2 s by kvmclock took $wall_ms ms on the host"

# seconds= only says when to stop: a longer run is the undisturbed reference for the rest.
dirty_run reference "$KEYS seconds=4"
expect_status 0 "dirty $KEYS seconds=4: $(cat "$TEST_TMP/reference.err")"
same_sums "$TEST_TMP/plain.out" "$TEST_TMP/timed.out" "a second run"
same_sums "$TEST_TMP/plain.out" "$TEST_TMP/reference.out" "a longer run"

# --- rate=0: ticks, writes nothing --------------------------------------------------------------
dirty_run idle "rate=0 span=16 tick=100 seconds=1"
expect_status 0 "dirty rate=0: $(cat "$TEST_TMP/idle.err")"
idle_ticks=$(grep -c '^dirty: tick ' "$TEST_TMP/idle.out")
idle_zero=$(grep -c '^dirty: tick [0-9]* written 0 ' "$TEST_TMP/idle.out")
((idle_ticks >= 5 && idle_zero == idle_ticks)) ||
    fail "rate=0: expected at least 5 ticks, all with written 0: $(cat "$TEST_TMP/idle.out")"
expect_contains "$TEST_TMP/idle.out" "dirty: done written 0 sum 9e3779b97f4a7c15"

# --- a pause: the guest's clock sees it, no page is lost ----------------------------------------
SOCK=$TEST_TMP/api.sock
"$KILN" run --kernel "$GUEST_DIR/dirty.elf" --memory 128M --cmdline "$KEYS seconds=4" \
    --api-socket "$SOCK" >"$TEST_TMP/paused.out" 2>"$TEST_TMP/paused.err" </dev/null &
VM=$!
track_pid "$VM"
wait_for_written "$TEST_TMP/paused.out" 1536
timeout 30 "$KILN" ctl "$SOCK" pause >/dev/null || fail "kiln ctl pause"
sleep 1
timeout 30 "$KILN" ctl "$SOCK" resume >/dev/null || fail "kiln ctl resume"
status=0
timeout 60 tail --pid="$VM" -f /dev/null || fail "the paused guest did not finish"
wait "$VM" || status=$?
expect_status 0 "the paused and resumed guest: $(cat "$TEST_TMP/paused.err")"
gap=$(awk '/^dirty: tick / { for (i = 1; i < NF; i++) if ($i == "gap_us" && $(i + 1) > g) g = $(i + 1) } END { print g + 0 }' "$TEST_TMP/paused.out")
maxgap=$(field "$TEST_TMP/paused.out" '^dirty: done ' maxgap_us)
echo "paused 1 s: longest tick gap_us $gap, done maxgap_us $maxgap"
((gap >= GAP_SEEN_US && maxgap >= GAP_SEEN_US)) ||
    fail "a 1 s pause was not seen: $(cat "$TEST_TMP/paused.out")"
same_sums "$TEST_TMP/paused.out" "$TEST_TMP/reference.out" "paused and resumed"

# --- a snapshot: kvmclock counts the time it lay on disk (with hardware virtualisation the TSC,
# which the restore puts back, does not) -----------------------------------------------------
"$KILN" run --kernel "$GUEST_DIR/dirty.elf" --memory 128M --cmdline "$KEYS seconds=4" \
    --api-socket "$SOCK.2" >"$TEST_TMP/original.out" 2>"$TEST_TMP/original.err" </dev/null &
VM=$!
track_pid "$VM"
wait_for_written "$TEST_TMP/original.out" 1536
timeout 60 "$KILN" ctl "$SOCK.2" snapshot "$TEST_TMP/original" --stop >"$TEST_TMP/original.txt" 2>&1 ||
    fail "kiln ctl snapshot: $(cat "$TEST_TMP/original.txt")"
wait "$VM" || fail "the VM did not end with status 0 after snapshot --stop"
sleep 1
run_kiln "$TEST_TMP/restored.out" "$TEST_TMP/restored.err" restore "$TEST_TMP/original" --api-socket none
expect_status 0 "the restored guest: $(cat "$TEST_TMP/restored.err")"
maxgap=$(field "$TEST_TMP/restored.out" '^dirty: done ' maxgap_us)
echo "restored after 1 s on disk: maxgap_us $maxgap"
[ "$maxgap" -ge "$GAP_SEEN_US" ] || fail "the time on disk was not seen: $(cat "$TEST_TMP/restored.out")"
cat "$TEST_TMP/original.out" "$TEST_TMP/restored.out" >"$TEST_TMP/both.out"
same_sums "$TEST_TMP/both.out" "$TEST_TMP/reference.out" "snapshot and restore"

# A page restored stale (an older generation: what a migration that missed a dirty page
# leaves), a word changed and a page lost (read back as zeros) while the snapshot was on disk:
# the guest names each in one line when it comes to check that page, and fails. Byte N of
# memory.kiln is guest-physical byte N; the span starts at 16 MiB. seconds=600 leaves the
# restores time to get there however long the snapshots take; the stale page comes from an
# earlier snapshot of the same run, taken before the writer went once more round the span.
"$KILN" run --kernel "$GUEST_DIR/dirty.elf" --memory 128M --cmdline "$KEYS seconds=600" \
    --api-socket "$SOCK.3" >"$TEST_TMP/damaged.out" 2>"$TEST_TMP/damaged.err" </dev/null &
VM=$!
track_pid "$VM"
wait_for_written "$TEST_TMP/damaged.out" 4608
timeout 60 "$KILN" ctl "$SOCK.3" snapshot "$TEST_TMP/early" >"$TEST_TMP/early.txt" 2>&1 ||
    fail "kiln ctl snapshot (early): $(cat "$TEST_TMP/early.txt")"
# The last tick line may predate the snapshot by more than a tick on a loaded host: count from
# the first one printed after it, so that the writer surely went once round the span between.
lines=$(grep -c '^dirty: tick ' "$TEST_TMP/damaged.out")
for ((i = 0; i < 600; i++)); do
    [ "$(grep -c '^dirty: tick ' "$TEST_TMP/damaged.out")" -gt "$lines" ] && break
    sleep 0.05
done
wait_for_written "$TEST_TMP/damaged.out" $(($(field "$TEST_TMP/damaged.out" '^dirty: tick ' written) + 4608))
timeout 60 "$KILN" ctl "$SOCK.3" snapshot "$TEST_TMP/late" --stop >"$TEST_TMP/late.txt" 2>&1 ||
    fail "kiln ctl snapshot (late): $(cat "$TEST_TMP/late.txt")"
wait "$VM" || fail "the VM did not end with status 0 after snapshot --stop"

PAGE=100
PAGE_OFFSET=$(((16 << 20) + PAGE * 4096))
word_at() { od -An -tx8 -j "$2" -N8 "$1" | tr -d ' '; } # word_at FILE OFFSET: 16 hex digits
# damaged NAME EXPECTED-BAD-LINE-REGEX: restores a copy of late/ that the caller damaged
# (within 30 s: the page comes up for its check within a second or two of the restore).
damaged() {
    KILN_TEST_TIMEOUT=30 run_kiln "$TEST_TMP/$1.out" "$TEST_TMP/$1.err" restore "$TEST_TMP/$1" --api-socket none
    expect_status 1 "a restore with a $1 page: $(cat "$TEST_TMP/$1.err")"
    expect_lines <(grep '^dirty: BAD' "$TEST_TMP/$1.out") 1
    grep -qE "$2" "$TEST_TMP/$1.out" || fail "no BAD line like '$2' for the $1 page: $(tail -3 "$TEST_TMP/$1.out")"
    echo "$1 page: $(grep '^dirty: BAD' "$TEST_TMP/$1.out")"
}
copy_late() { cp -r --sparse=always "$TEST_TMP/late" "$TEST_TMP/$1"; }

copy_late stale
dd if="$TEST_TMP/early/memory.kiln" of="$TEST_TMP/stale/memory.kiln" bs=4096 count=1 \
    skip=$((PAGE_OFFSET / 4096)) seek=$((PAGE_OFFSET / 4096)) conv=notrunc status=none
old=$(word_at "$TEST_TMP/early/memory.kiln" "$PAGE_OFFSET")
new=$(word_at "$TEST_TMP/late/memory.kiln" "$PAGE_OFFSET")
[ "$old" != "$new" ] || fail "page $PAGE was not rewritten between the two snapshots"
damaged stale "^dirty: BAD page $PAGE gen [0-9]+ word 0 holds $old expected $new\$"

copy_late changed
printf '\xef\xbe\xad\xde\0\0\0\0' |
    dd of="$TEST_TMP/changed/memory.kiln" bs=1 seek=$((PAGE_OFFSET + 5 * 8)) conv=notrunc status=none
damaged changed "^dirty: BAD page $PAGE gen [0-9]+ word 5 holds 00000000deadbeef expected [0-9a-f]{16}\$"

copy_late lost
fallocate --punch-hole --offset "$PAGE_OFFSET" --length 4096 "$TEST_TMP/lost/memory.kiln" ||
    fail "fallocate --punch-hole"
damaged lost "^dirty: BAD page $PAGE gen [0-9]+ word 0 holds 0000000000000000 expected $new\$"

# --- bad keys: one line naming the key, status 1 ------------------------------------------------
bad() { # bad CMDLINE EXPECTED-TEXT
    dirty_run bad "$1"
    expect_status 1 "dirty $1"
    expect_lines "$TEST_TMP/bad.out" 1
    expect_contains "$TEST_TMP/bad.out" "$2"
    echo "refused ($1): $(cat "$TEST_TMP/bad.out")"
}
bad "rate=fast" "dirty: rate= must be a number of MiB/s from 0 to 1048576"
bad "rate=1048577" "dirty: rate= must be a number"
bad "span=16M" "dirty: span= must be a number of MiB from 1"
bad "span=0" "dirty: span= must be a number of MiB from 1"
bad "span=113" "dirty: span=113 MiB does not fit"
bad "span=0x100000" "dirty: span=1048576 MiB does not fit"
bad "tick=0" "dirty: tick= must be a number of milliseconds from 1"
bad "tick=" "dirty: tick= must be a number of milliseconds from 1"
bad "seconds=0" "dirty: seconds= must be a number of seconds from 1"
bad "seconds=-1" "dirty: seconds= must be a number of seconds from 1"

# --- QEMU microvm: the same guest on the peer's kvmclock ----------------------------------------
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
    echo "SKIP (part): qemu-system-x86_64 not installed, dirty.elf not run on QEMU"
else
    qemu_dirty() { # qemu_dirty NAME CPU CMDLINE: serial output in $TEST_TMP/NAME.out
        status=0
        timeout --kill-after=10 60 qemu-system-x86_64 -M microvm -enable-kvm -cpu "$2" -m 128M \
            -nodefaults -no-reboot -display none -serial stdio \
            -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel "$GUEST_DIR/dirty.elf" \
            -append "$3" </dev/null >"$TEST_TMP/$1.out" 2>"$TEST_TMP/$1.err" || status=$?
        [ "$status" -ne 124 ] || fail "qemu timed out: $(tail -3 "$TEST_TMP/$1.out")"
    }
    # isa-debug-exit: the guest's status S becomes QEMU's (S << 1) | 1.
    qemu_dirty qemu host,-arch-capabilities "$KEYS seconds=1"
    expect_status 1 "dirty.elf on QEMU exits 0; stderr: $(tail -3 "$TEST_TMP/qemu.err")"
    expect_contains "$TEST_TMP/qemu.out" "dirty: start rate 20 span 16 tick 100"
    grep -qE '^dirty: tick [0-9]+ written [0-9]+ sum [0-9a-f]{16} gap_us [0-9]+ maxgap_us [0-9]+$' \
        "$TEST_TMP/qemu.out" || fail "no tick line on QEMU: $(cat "$TEST_TMP/qemu.out")"
    same_sums "$TEST_TMP/qemu.out" "$TEST_TMP/reference.out" "QEMU"
    # Without kvmclock (or without KVM's CPUID signature) the guest cannot time a stop: one
    # line, status 1.
    qemu_dirty noclock host,-arch-capabilities,-kvmclock "$KEYS seconds=1"
    expect_status 3 "dirty.elf on QEMU without kvmclock exits 1"
    expect_lines "$TEST_TMP/noclock.out" 1
    expect_contains "$TEST_TMP/noclock.out" "dirty: no kvmclock: CPUID 0x40000001 lacks the clocksource2 feature"
    qemu_dirty nokvm host,-arch-capabilities,kvm=off "$KEYS seconds=1"
    expect_status 3 "dirty.elf on QEMU with the KVM signature hidden exits 1"
    expect_lines "$TEST_TMP/nokvm.out" 1
    expect_contains "$TEST_TMP/nokvm.out" "dirty: no kvmclock: CPUID 0x40000000 does not name KVM"
fi
echo "PASS: rate, ticks and sums; rate=0; a pause and a snapshot's time on disk seen; changed and lost pages named; bad keys refused"
