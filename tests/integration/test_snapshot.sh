#!/usr/bin/env bash
# Snapshot and restore of a running guest-kit VM, as a user does it: the counter guest keeps a
# running checksum of a table in its RAM; a snapshot taken mid-run through `kiln ctl` is
# restored twice at once, and each copy must go on printing exactly the lines the original
# prints for the same steps (not start again). Also: --paused, --stop, --memory-restore copy,
# the memory file being sparse, and every bad snapshot refused with one line and status 125.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest counter.elf

SOCK=$TEST_TMP/api.sock
SNAP=$TEST_TMP/snap
ORIG=$TEST_TMP/orig.txt
DISK=$TEST_TMP/disk.img
truncate -s 4M "$DISK"
ctl() { timeout 60 "$KILN" ctl "$@"; }
wait_for() { # wait_for PATTERN FILE [SECONDS]
    local i
    for ((i = 0; i < ${3:-60} * 10; i++)); do
        grep -qE -- "$1" "$2" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "no '$1' in $2 within ${3:-60} s: $(tail -n 5 "$2")"
}
last_step() { sed -n 's/^counter: step \([0-9]*\) .*/\1/p' "$1" | tail -n 1; }
# Every counter line of $1 must be the original's line for that step.
same_as_original() {
    local line n=0
    while IFS= read -r line; do
        [[ $line == "counter: step "* ]] || continue
        grep -qxF -- "$line" "$ORIG" || fail "$2: '$line' is not what the original printed for that step: $(grep -F "${line% sum*} " "$ORIG")"
        n=$((n + 1))
    done <"$1"
    [ "$n" -gt 0 ] || fail "$2 printed no counter line: $(head -c 500 "$1")"
    echo "$2: $n lines, each the original's"
}

# The kernel's path is relative, as a user types it: the snapshot writer makes it absolute
# in config.yaml (under its seccomp filter, which must allow what that takes).
(cd "$GUEST_DIR" && exec "$KILN" run --kernel counter.elf --cmdline every=1000 --name snap-test \
    --api-socket "$SOCK" --shutdown-grace 0 >"$ORIG" 2>"$TEST_TMP/orig.err" </dev/null) &
VM=$!
track_pid "$VM"
wait_for "^counter: step 3000 " "$ORIG"

# --- the snapshot ------------------------------------------------------------------------------
ctl "$SOCK" snapshot "$SNAP" >"$TEST_TMP/snap.txt" || fail "kiln ctl snapshot failed: $(cat "$TEST_TMP/snap.txt")"
cat "$TEST_TMP/snap.txt"
AT=$(last_step "$ORIG")
for f in state.kiln memory.kiln config.yaml; do
    [ -s "$SNAP/$f" ] || fail "the snapshot has no $f: $(ls -la "$SNAP")"
done
grep -qxF "  path: \"$(realpath "$GUEST_DIR/counter.elf")\"" "$SNAP/config.yaml" ||
    fail "config.yaml does not give the kernel's absolute path: $(cat "$SNAP/config.yaml")"
[ "$(stat -c %s "$SNAP/memory.kiln")" -eq $((256 << 20)) ] || fail "memory.kiln is $(stat -c %s "$SNAP/memory.kiln") bytes, expected 256 MiB"
used_kib=$(du -k "$SNAP/memory.kiln" | cut -f1)
[ "$used_kib" -lt 16384 ] || fail "memory.kiln uses $used_kib KiB on disk: zero pages were written"
echo "memory.kiln: 256 MiB, $used_kib KiB on disk"
# The original goes on after its snapshot.
wait_for "^counter: step $((AT + 2000)) " "$ORIG"
ctl "$SOCK" snapshot "$SNAP" >"$TEST_TMP/again.txt" 2>&1 && fail "a second snapshot into the same folder was not refused"
grep -q "$SNAP" "$TEST_TMP/again.txt" || fail "the refusal does not name the folder: $(cat "$TEST_TMP/again.txt")"

# --- two restores at once: both go on from the snapshot ----------------------------------------
for i in 1 2; do
    "$KILN" restore "$SNAP" --api-socket "$TEST_TMP/clone$i.sock" >"$TEST_TMP/clone$i.txt" \
        2>"$TEST_TMP/clone$i.err" </dev/null &
    CLONES[i]=$!
    track_pid "${CLONES[i]}"
done
for i in 1 2; do
    wait_for "^counter: step $((AT + 3000)) " "$TEST_TMP/clone$i.txt" 120
    grep -q "counter: start" "$TEST_TMP/clone$i.txt" && fail "clone $i booted afresh instead of going on"
    first=$(sed -n 's/^counter: step \([0-9]*\) .*/\1/p' "$TEST_TMP/clone$i.txt" | head -n 1)
    [ "$first" -le $((AT + 1000)) ] || fail "clone $i's first line is step $first; the snapshot was after step $AT"
done
# The original must have printed as far, to compare with.
wait_for "^counter: step $((AT + 3000)) " "$ORIG" 120
same_as_original "$TEST_TMP/clone1.txt" "clone 1"
same_as_original "$TEST_TMP/clone2.txt" "clone 2"
for i in 1 2; do
    ctl "$TEST_TMP/clone$i.sock" shutdown >/dev/null || fail "clone $i: kiln ctl shutdown"
    wait "${CLONES[i]}" 2>/dev/null
done

# --- --paused, then resume; --memory-restore copy -----------------------------------------------
"$KILN" restore "$SNAP" --paused --memory-restore copy --api-socket "$TEST_TMP/p.sock" \
    >"$TEST_TMP/paused.txt" 2>"$TEST_TMP/paused.err" </dev/null &
P=$!
track_pid "$P"
for ((i = 0; i < 100; i++)); do [ -S "$TEST_TMP/p.sock" ] && break; sleep 0.1; done
ctl "$TEST_TMP/p.sock" status >"$TEST_TMP/pstatus.txt" || fail "status of a paused restore"
expect_contains "$TEST_TMP/pstatus.txt" ": paused"
sleep 1.5
grep -q '^counter: step' "$TEST_TMP/paused.txt" && fail "a --paused restore ran before resume"
ctl "$TEST_TMP/p.sock" resume >/dev/null || fail "resume of a paused restore"
wait_for "^counter: step $((AT + 2000)) " "$TEST_TMP/paused.txt" 120
same_as_original "$TEST_TMP/paused.txt" "the paused copy-restored VM"
ctl "$TEST_TMP/p.sock" shutdown >/dev/null
wait "$P" 2>/dev/null

# --- snapshot --stop: the VM ends with status 0 once written ------------------------------------
ctl "$SOCK" snapshot "$TEST_TMP/final" --stop >"$TEST_TMP/stop.txt" || fail "snapshot --stop: $(cat "$TEST_TMP/stop.txt")"
status=0
wait "$VM" || status=$?
expect_status 0 "the VM after snapshot --stop"
[ -s "$TEST_TMP/final/state.kiln" ] || fail "snapshot --stop wrote no state"

# --- a VM with a disk: the snapshot names it, a restore checks it's unchanged ---------------------
# The disk's path is relative, as a user types it: the restore, run from elsewhere, must still
# find it the same.
DSNAP=$TEST_TMP/disk-snap
(cd "$TEST_TMP" && exec "$KILN" run --kernel "$GUEST_DIR/counter.elf" --cmdline every=1000 \
    --disk disk.img --api-socket d.sock >d.txt 2>d.err </dev/null) &
D=$!
track_pid "$D"
wait_for "^counter: step 1000 " "$TEST_TMP/d.txt"
ctl "$TEST_TMP/d.sock" snapshot "$DSNAP" --stop >/dev/null || fail "snapshot --stop of the VM with a disk"
wait "$D" || fail "the VM with a disk did not end with status 0 after snapshot --stop"
expect_contains "$DSNAP/config.yaml" "$DISK"
"$KILN" restore "$DSNAP" --api-socket "$TEST_TMP/d2.sock" >"$TEST_TMP/d2.txt" 2>"$TEST_TMP/d2.err" </dev/null &
D=$!
track_pid "$D"
# It goes on from where the original stopped, however far that was (a slow build counts on
# while kiln ctl connects).
wait_for "^counter: step $(($(last_step "$TEST_TMP/d.txt") + 2000)) " "$TEST_TMP/d2.txt" 120
ctl "$TEST_TMP/d2.sock" shutdown >/dev/null
wait "$D" 2>/dev/null

# --- bad snapshots: one line, status 125, nothing runs -------------------------------------------
bad() { # bad NAME SETUP EXPECTED-TEXT
    local dir=$TEST_TMP/bad-$1
    cp -r "$SNAP" "$dir"
    (cd "$dir" && eval "$2")
    run_kiln "$TEST_TMP/bad.out" "$TEST_TMP/bad.err" restore "$dir" --api-socket none
    expect_status 125 "restore of a snapshot with $1"
    expect_lines "$TEST_TMP/bad.err" 1
    expect_contains "$TEST_TMP/bad.err" "$3"
    [ ! -s "$TEST_TMP/bad.out" ] || fail "a refused snapshot ($1) ran: $(head -c 300 "$TEST_TMP/bad.out")"
    echo "refused ($1): $(cat "$TEST_TMP/bad.err")"
}
size=$(stat -c %s "$SNAP/state.kiln")
bad truncated "truncate -s $((size / 2)) state.kiln" "state.kiln"
bad crc "printf 'X' | dd of=state.kiln bs=1 seek=$((size - 100)) conv=notrunc status=none" "state.kiln"
bad version "printf '\\x63' | dd of=state.kiln bs=1 seek=8 conv=notrunc status=none" "version"
bad memory-size "truncate -s 100M memory.kiln" "memory.kiln"
# Taken on a CPU of the other vendor: the header's vendor (offset 72) swapped and the CRC (the
# file's last 4 bytes: zlib's crc32 of all before the trailer) made right again, so that only
# the CPU check can refuse it.
other_vendor() {
    python3 - state.kiln <<'PY'
import struct, sys, zlib
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
vendor = bytes(data[72:84])
data[72:84] = b"AuthenticAMD" if vendor == b"GenuineIntel" else b"GenuineIntel"
data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])) & 0xffffffff)
open(path, "wb").write(data)
PY
}
bad cpu-vendor other_vendor "snapshot was taken on a"
bad no-state "rm state.kiln" "not a snapshot folder"
SNAP=$DSNAP
bad missing-disk "mv $DISK $DISK.away" "disk 0"
mv "$DISK.away" "$DISK"
bad changed-disk "truncate -s 8M $DISK" "disk 0"
echo "PASS: snapshot, two restores going on from it, --paused, --stop, copy, bad snapshots refused"
