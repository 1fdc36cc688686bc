#!/usr/bin/env bash
# --memory's backings as a user sees them (docs/placement.md): the counter guest boots on each
# (memfd, anon, anon shared, hugetlb with huge pages reserved here, as root), a snapshot of it
# restored lazily and by copy goes on with exactly an undisturbed run's lines, and /proc shows
# what each asked for: the memfd, prealloc's resident RAM, merge=on's "mg" and THP's "hg" in
# smaps. Bad values each end in one line and status 125.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest counter.elf
COUNTER=$GUEST_DIR/counter.elf
ctl() { timeout 60 "$KILN" ctl "$@"; }
wait_for() { # wait_for PATTERN FILE [SECONDS]
    local i
    for ((i = 0; i < ${3:-60} * 10; i++)); do
        grep -qE -- "$1" "$2" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "no '$1' in $2 within ${3:-60} s: $(tail -n 5 "$2")"
}
wait_for_socket() {
    local i
    for ((i = 0; i < 300; i++)); do [ -S "$1" ] && return 0; sleep 0.1; done
    fail "no socket $1"
}
# SIGTERM, then at most 30 s for kiln to end; a kiln that does not is a failure, never a hung
# test.
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
    wait "$1" 2>/dev/null
}
last_step() { sed -n 's/^counter: step \([0-9]*\) .*/\1/p' "$1" | tail -n 1; }
# The guest RAM's mapping in PID's smaps (the one of exactly SIZE_KIB kB): its VmFlags line.
ram_flags() { # ram_flags PID SIZE_KIB
    awk -v size="$2" '/^[0-9a-f]+-[0-9a-f]+ / { block = $0 } $1 == "Size:" { mine = ($2 == size) }
        mine && $1 == "VmFlags:" { print block " |" substr($0, 9); exit }' "/proc/$1/smaps"
}

# The lines every copy is compared with: a run nobody disturbed.
run_kiln "$TEST_TMP/ref.out" "$TEST_TMP/ref.err" run --kernel "$COUNTER" --memory 64M \
    --cmdline "every=1000 steps=30000 touch=16" --api-socket none
expect_status 0 "the undisturbed run: $(cat "$TEST_TMP/ref.err")"
REF_LAST=$(last_step "$TEST_TMP/ref.out")
# Every counter line of FILE up to the reference's last step is the reference's line.
same_as_reference() { # same_as_reference FILE WHAT
    local line step n=0
    while IFS= read -r line; do
        [[ $line == "counter: step "* ]] || continue
        step=${line#counter: step }
        [ "${step%% *}" -le "$REF_LAST" ] || continue
        grep -qxF -- "$line" "$TEST_TMP/ref.out" || fail "$2: '$line' is not the undisturbed run's line"
        n=$((n + 1))
    done <"$1"
    [ "$n" -gt 0 ] || fail "$2 printed no counter line: $(head -c 500 "$1")"
    echo "$2: $n lines, each the undisturbed run's"
}

# Huge pages for the hugetlb case: reserved here, the host's old value put back at exit.
HUGE_OLD=""
restore_huge_pages() {
    [ -z "$HUGE_OLD" ] || echo "$HUGE_OLD" >/proc/sys/vm/nr_hugepages
    cleanup
}
trap restore_huge_pages EXIT
BACKINGS=(memfd anon "anon,shared")
if [ "$(id -u)" -eq 0 ] && [ -w /proc/sys/vm/nr_hugepages ]; then
    HUGE_OLD=$(cat /proc/sys/vm/nr_hugepages)
    free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages)
    [ "$free" -ge 32 ] || echo $((HUGE_OLD + 32 - free)) >/proc/sys/vm/nr_hugepages 2>/dev/null
    if [ "$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages)" -ge 32 ]; then
        BACKINGS+=(hugetlb)
    else
        echo "SKIP (hugetlb case only): the host gave no 32 free 2 MiB pages"
    fi
else
    echo "SKIP (hugetlb case only): not root, cannot reserve huge pages"
fi

for backing in "${BACKINGS[@]}"; do
    name=${backing/,/-}
    SOCK=$TEST_TMP/$name.sock SNAP=$TEST_TMP/$name.snap OUT=$TEST_TMP/$name.out
    "$KILN" run --kernel "$COUNTER" --memory "64M,backing=$backing" --cmdline every=1000 \
        --api-socket "$SOCK" --shutdown-grace 0 >"$OUT" 2>"$TEST_TMP/$name.err" </dev/null &
    VM=$!
    track_pid "$VM"
    wait_for "^counter: step 2000 " "$OUT"
    # The RAM is what was asked for: a memfd (hugetlb: the huge one) or no file at all.
    flags=$(ram_flags "$VM" 65536)
    [ -n "$flags" ] || fail "$backing: no 64 MiB mapping in /proc/$VM/smaps"
    case $backing in
    memfd) [[ $flags == *"memfd:kiln-guest-ram "* ]] || fail "$backing: RAM is not the memfd: $flags" ;;
    hugetlb) [[ $flags == *"memfd:kiln-guest-ram-huge"*" ht"* ]] || fail "$backing: RAM is not a hugetlb memfd: $flags" ;;
    anon) [[ $flags != *memfd* && $flags != *" sh"* ]] || fail "$backing: RAM is not private anonymous: $flags" ;;
    anon,shared) [[ $flags != *memfd:kiln* && $flags == *" sh"* ]] || fail "$backing: RAM is not shared anonymous: $flags" ;;
    esac
    ctl "$SOCK" snapshot "$SNAP" --stop >"$TEST_TMP/$name.snap.txt" || fail "$backing: snapshot: $(cat "$TEST_TMP/$name.snap.txt")"
    wait "$VM" || fail "$backing: the VM did not end with 0 after snapshot --stop"
    AT=$(last_step "$OUT")
    used_kib=$(du -k "$SNAP/memory.kiln" | cut -f1)
    [ "$used_kib" -lt 16384 ] || fail "$backing: memory.kiln uses $used_kib KiB on disk: zero pages were written"
    grep -qF "backing=$backing" "$SNAP/config.yaml" || [ "$backing" = memfd ] ||
        fail "$backing: the snapshot's config.yaml lost the backing: $(grep memory "$SNAP/config.yaml")"
    for how in lazy copy; do
        R=$TEST_TMP/$name.$how
        "$KILN" restore "$SNAP" --memory-restore "$how" --api-socket "$R.sock" >"$R.out" 2>"$R.err" </dev/null &
        RVM=$!
        track_pid "$RVM"
        wait_for "^counter: step $((AT + 2000)) " "$R.out" 120
        grep -q "counter: start" "$R.out" && fail "$backing, $how restore: booted afresh"
        same_as_reference "$R.out" "$backing, restored ($how)"
        ctl "$R.sock" shutdown >/dev/null || fail "$backing, $how restore: kiln ctl shutdown"
        wait "$RVM" 2>/dev/null
    done
    echo "$backing: ran, snapshot ($used_kib KiB on disk), restored lazily and by copy"
done

# A live migration of anonymous RAM: no memfd to find written pages in, so round 0 reads it
# all; the receiver (RAM as the source's config says) gives ZERO records' pages back.
"$KILN" run --kernel "$COUNTER" --memory 64M,backing=anon --cmdline "every=1000 touch=16" \
    --api-socket "$TEST_TMP/src.sock" >"$TEST_TMP/src.out" 2>"$TEST_TMP/src.err" </dev/null &
SRC=$!
track_pid "$SRC"
"$KILN" receive --listen "unix:$TEST_TMP/dst.mig" --api-socket "$TEST_TMP/dst.sock" \
    >"$TEST_TMP/dst.out" 2>"$TEST_TMP/dst.err" </dev/null &
DST=$!
track_pid "$DST"
wait_for_socket "$TEST_TMP/dst.mig"
wait_for "^counter: step 2000 " "$TEST_TMP/src.out"
ctl "$TEST_TMP/src.sock" migrate "unix:$TEST_TMP/dst.mig" >"$TEST_TMP/mig.txt" 2>&1 ||
    fail "migrating anon RAM: $(cat "$TEST_TMP/mig.txt")"
wait "$SRC" || fail "the source did not end with 0 after the migration: $(cat "$TEST_TMP/src.err")"
AT=$(last_step "$TEST_TMP/src.out")
wait_for "^counter: step $((AT + 2000)) " "$TEST_TMP/dst.out"
grep -q "counter: start" "$TEST_TMP/dst.out" && fail "the migrated VM booted afresh"
flags=$(ram_flags "$DST" 65536)
[[ -n $flags && $flags != *memfd* ]] || fail "the receiver's RAM is not anonymous as the source's config says: $flags"
ctl "$TEST_TMP/dst.sock" shutdown >/dev/null || fail "kiln ctl shutdown of the migrated VM"
wait "$DST" 2>/dev/null
same_as_reference "$TEST_TMP/src.out" "anon, before the migration"
same_as_reference "$TEST_TMP/dst.out" "anon, migrated"

# prealloc: the whole RAM is resident before the guest has touched it; without, it is not.
for opts in "" ",prealloc"; do
    "$KILN" run --kernel "$COUNTER" --memory "128M,backing=anon$opts" --cmdline every=100000 \
        --api-socket none >"$TEST_TMP/pre.out" 2>"$TEST_TMP/pre.err" </dev/null &
    VM=$!
    track_pid "$VM"
    wait_for "^counter: start" "$TEST_TMP/pre.out"
    rss=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$VM/status")
    stop_vm "$VM"
    if [ -n "$opts" ]; then
        [ "$rss" -ge $((128 * 1024)) ] || fail "prealloc: RSS is $rss KiB at start, below the 128 MiB of RAM"
    else
        [ "$rss" -lt $((100 * 1024)) ] || fail "without prealloc: RSS is already $rss KiB at start"
    fi
    echo "128M,backing=anon$opts: RSS $rss KiB at start"
done

# merge=on: KSM may merge the RAM ("mg"); THP advised by default ("hg"), not with thp=off.
check_flags() { # check_flags MEMORY WANT_FLAG NOT_FLAG
    "$KILN" run --kernel "$COUNTER" --memory "$1" --cmdline every=100000 --api-socket none \
        >"$TEST_TMP/flags.out" 2>"$TEST_TMP/flags.err" </dev/null &
    VM=$!
    track_pid "$VM"
    wait_for "^counter: start" "$TEST_TMP/flags.out"
    flags=" $(ram_flags "$VM" 65536 | cut -d'|' -f2) "
    stop_vm "$VM"
    [ -z "$2" ] || [[ $flags == *" $2 "* ]] || fail "--memory $1: no '$2' in the RAM's VmFlags:$flags"
    [ -z "$3" ] || [[ $flags != *" $3 "* ]] || fail "--memory $1: '$3' in the RAM's VmFlags:$flags"
    echo "--memory $1: VmFlags$flags"
}
check_flags 64M,backing=anon,merge=on mg ""
check_flags 64M,backing=anon hg mg
check_flags 64M,backing=anon,thp=off "" hg
check_flags 64M hg ""

# Bad values: one line each, status 125.
bad() { # bad MEMORY EXPECTED_TEXT
    run_kiln "$TEST_TMP/bad.out" "$TEST_TMP/bad.err" run --kernel "$COUNTER" --memory "$1" --api-socket none
    expect_status 125 "--memory $1"
    expect_lines "$TEST_TMP/bad.err" 1
    expect_contains "$TEST_TMP/bad.err" "$2"
}
bad 64M,backing=bogus "'bogus' in '64M,backing=bogus' is not a backing (expected memfd, anon or hugetlb)"
bad 64M,turbo "'turbo' in '64M,turbo' is not an option"
bad 64M,shared "shared is for backing=anon"
bad 64M,merge=on "merge=on needs backing=anon without shared"
bad 64M,backing=anon,merge=yes "'yes' in '64M,backing=anon,merge=yes' is not on or off"
bad 5M,backing=hugetlb "'5M,backing=hugetlb' is not a multiple of 2 MiB"
if [ -n "$HUGE_OLD" ]; then
    # More huge pages than are free: one line at start saying how to reserve them.
    free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages)
    bad "$(((free + 8) * 2))M,backing=hugetlb" "reserve them as root: echo"
    expect_contains "$TEST_TMP/bad.err" "/proc/sys/vm/nr_hugepages"
fi
echo "bad --memory values refused in one line each"
