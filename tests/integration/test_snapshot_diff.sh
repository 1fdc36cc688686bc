#!/usr/bin/env bash
# Diff snapshots, as a user takes them: the counter guest gets a full snapshot S0, then a diff
# S1 against S0 and a diff S2 against S1. Restored lazily and by copy, S2 must go on with
# exactly the original's lines; merged into S0, S1 must make S0 restore to S1's point. A guest
# that reads its disk into pages only the device writes checks that a diff holds those too.
# Bad inputs: a diff against a snapshot that is not the VM's last (409), a base that is gone,
# loops, or is of another memory size, and merging a full snapshot.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest counter.elf
require_guest blk.elf

SOCK=$TEST_TMP/api.sock
ORIG=$TEST_TMP/orig.txt
S0=$TEST_TMP/s0
S1=$TEST_TMP/s1
S2=$TEST_TMP/s2
ctl() { timeout 60 "$KILN" ctl "$@"; }
wait_for() { # wait_for PATTERN FILE [SECONDS]
    local i
    for ((i = 0; i < ${3:-60} * 10; i++)); do
        grep -qE -- "$1" "$2" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "no '$1' in $2 within ${3:-60} s: $(tail -n 5 "$2")"
}
last_step() { sed -n "s/^$2: step \([0-9]*\) .*/\1/p" "$1" | tail -n 1; }
first_step() { sed -n "s/^$2: step \([0-9]*\) .*/\1/p" "$1" | head -n 1; }
# same_as ORIGINAL COPY WHAT PREFIX: every PREFIX line of COPY is ORIGINAL's line for its step.
same_as() {
    local line n=0
    while IFS= read -r line; do
        [[ $line == "$4: step "* ]] || continue
        grep -qxF -- "$line" "$1" || fail "$3: '$line' is not what the original printed for that step: $(grep -F "${line% sum*} " "$1")"
        n=$((n + 1))
    done <"$2"
    [ "$n" -gt 0 ] || fail "$3 printed no line: $(head -c 500 "$2")"
    echo "$3: $n lines, each the original's"
}
# restore_and_check NAME DIR BEFORE AFTER [restore flags]: the snapshot was taken between the
# original's lines for steps BEFORE and AFTER; the restored VM must go on from there (not boot
# afresh) and print the original's lines.
restore_and_check() {
    local name=$1 dir=$2 before=$3 from=$4 out=$TEST_TMP/$1.txt
    shift 4
    "$KILN" restore "$dir" --api-socket "$TEST_TMP/$name.sock" "$@" >"$out" 2>"$TEST_TMP/$name.err" </dev/null &
    local pid=$!
    track_pid "$pid"
    wait_for "^counter: step $((from + 2000)) " "$out" 120
    grep -q "counter: start" "$out" && fail "$name booted afresh instead of going on"
    local first
    first=$(first_step "$out" counter)
    { [ "$first" -gt "$before" ] && [ "$first" -le $((from + 1000)) ]; } ||
        fail "$name's first line is step $first; the snapshot was between steps $before and $from"
    wait_for "^counter: step $((from + 2000)) " "$ORIG" 120
    same_as "$ORIG" "$out" "$name" counter
    ctl "$TEST_TMP/$name.sock" shutdown >/dev/null || fail "$name: kiln ctl shutdown"
    wait "$pid" 2>/dev/null
}

# touch=1: 1 MiB written once before the first line, which a full snapshot holds and no diff.
"$KILN" run --kernel "$GUEST_DIR/counter.elf" --cmdline "every=1000 touch=1" --api-socket "$SOCK" \
    --shutdown-grace 0 >"$ORIG" 2>"$TEST_TMP/orig.err" </dev/null &
VM=$!
track_pid "$VM"
wait_for "^counter: step 3000 " "$ORIG"

# --- a diff before any snapshot is refused: there is nothing to diff against -------------------
status=0
ctl "$SOCK" snapshot "$TEST_TMP/early" --diff "$TEST_TMP" >"$TEST_TMP/early.txt" 2>&1 || status=$?
expect_status 1 "a diff before any snapshot"
expect_contains "$TEST_TMP/early.txt" "no snapshot yet"

# --- S0 full, S1 diff of S0, S2 diff of S1 -------------------------------------------------------
ctl "$SOCK" snapshot "$S0" >/dev/null || fail "the full snapshot S0"
AT0=$(last_step "$ORIG" counter)
wait_for "^counter: step $((AT0 + 2000)) " "$ORIG"
# Relative paths, as a user types them: kiln ctl makes both absolute.
BEFORE1=$(last_step "$ORIG" counter)
(cd "$TEST_TMP" && ctl "$SOCK" snapshot s1 --diff s0) >"$TEST_TMP/s1.txt" || fail "diff S1: $(cat "$TEST_TMP/s1.txt")"
cat "$TEST_TMP/s1.txt"
expect_contains "$TEST_TMP/s1.txt" "diff snapshot written"
AT1=$(last_step "$ORIG" counter)
wait_for "^counter: step $((AT1 + 2000)) " "$ORIG"
BEFORE2=$(last_step "$ORIG" counter)
ctl "$SOCK" snapshot "$S2" --diff "$S1/" --json >"$TEST_TMP/s2.json" || fail "diff S2: $(cat "$TEST_TMP/s2.json")"
AT2=$(last_step "$ORIG" counter)
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["diff"] is True and 0 < r["dirty_pages"] < 65536 // 8, r' "$TEST_TMP/s2.json" ||
    fail "the reply of a diff does not say diff and a dirty page count: $(cat "$TEST_TMP/s2.json")"
for s in "$S1" "$S2"; do
    for f in state.kiln memory.diff memory.dirty base config.yaml; do
        [ -s "$s/$f" ] || fail "the diff $s has no $f: $(ls -la "$s")"
    done
    [ ! -e "$s/memory.kiln" ] || fail "the diff $s holds a full memory.kiln"
done
[ "$(cat "$S2/base")" = "$S1" ] || fail "S2's base file says '$(cat "$S2/base")', expected $S1"
full_kib=$(du -k "$S0/memory.kiln" | cut -f1)
diff_kib=$(du -k "$S2/memory.diff" | cut -f1)
# The table it rewrites all the time is in every diff; the 1 MiB it wrote once is not.
[ $((diff_kib * 2)) -lt "$full_kib" ] ||
    fail "S2's memory.diff uses $diff_kib KiB on disk, not much less than memory.kiln's $full_kib KiB"
echo "disk use: memory.kiln $full_kib KiB, S2's memory.diff $diff_kib KiB (of 256 MiB of RAM)"

# --- a diff against a snapshot that is not the last: 409, nothing written ------------------------
status=0
ctl "$SOCK" snapshot "$TEST_TMP/stale" --diff "$S1" >"$TEST_TMP/stale.txt" 2>&1 || status=$?
expect_status 1 "a diff against S1 after S2"
expect_contains "$TEST_TMP/stale.txt" "not this VM's last snapshot"
expect_lines "$TEST_TMP/stale.txt" 1
[ ! -e "$TEST_TMP/stale/state.kiln" ] || fail "a refused diff left a state.kiln"
python3 - "$SOCK" "$TEST_TMP/stale2" "$S0" <<'PY' || fail "a stale base over the raw API"
import json, socket, sys
body = json.dumps({"dir": sys.argv[2], "base": sys.argv[3]}).encode()
s = socket.socket(socket.AF_UNIX)
s.settimeout(30)
s.connect(sys.argv[1])
s.sendall(b"PUT /vm/snapshot HTTP/1.1\r\nHost: kiln\r\nContent-Type: application/json\r\n"
          b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
reply = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    reply += chunk
head, _, rest = reply.partition(b"\r\n\r\n")
assert head.startswith(b"HTTP/1.1 409"), head
assert "last snapshot" in json.loads(rest)["error"], rest
PY
ctl "$SOCK" status >/dev/null || fail "the VM stopped after a refused diff"

# --- restore S2: lazily and by copy, each goes on from S2's point --------------------------------
restore_and_check lazy "$S2" "$BEFORE2" "$AT2"
restore_and_check copy "$S2" "$BEFORE2" "$AT2" --memory-restore copy

# --- bad chains: one line, status 125, nothing runs ------------------------------------------------
bad_chain() { # bad_chain NAME SETUP EXPECTED-TEXT: SETUP runs in a copy of S2
    local dir=$TEST_TMP/bad-$1
    cp -r "$S2" "$dir"
    (cd "$dir" && eval "$2")
    run_kiln "$TEST_TMP/bad.out" "$TEST_TMP/bad.err" restore "$dir" --api-socket none
    expect_status 125 "restore of a diff with $1"
    expect_lines "$TEST_TMP/bad.err" 1
    expect_contains "$TEST_TMP/bad.err" "$3"
    [ ! -s "$TEST_TMP/bad.out" ] || fail "a refused diff ($1) ran: $(head -c 300 "$TEST_TMP/bad.out")"
    echo "refused ($1): $(cat "$TEST_TMP/bad.err")"
}
bad_chain base-missing "echo $TEST_TMP/gone >base" "$TEST_TMP/gone"
bad_chain base-loop 'pwd >base' "loops back"
bad_chain base-not-one-line "printf 'relative/path\n' >base" "absolute path"
bad_chain diff-missing "rm memory.diff" "memory.diff"
# A full snapshot of a 128 MiB VM as the base.
"$KILN" run --kernel "$GUEST_DIR/counter.elf" --memory 128M --api-socket "$TEST_TMP/small.sock" \
    >"$TEST_TMP/small.txt" 2>"$TEST_TMP/small.err" </dev/null &
SMALL=$!
track_pid "$SMALL"
wait_for "^counter: step 1000 " "$TEST_TMP/small.txt"
ctl "$TEST_TMP/small.sock" snapshot "$TEST_TMP/small-snap" --stop >/dev/null || fail "the 128 MiB snapshot"
wait "$SMALL"
bad_chain base-other-size "echo $TEST_TMP/small-snap >base" "128 MiB of RAM"

# --- merge S1 into S0: S0 restores to S1's point; S2 still restores; a full one is refused ---------
"$KILN" snapshot merge "$S1" >"$TEST_TMP/merge.txt" 2>&1 || fail "kiln snapshot merge S1: $(cat "$TEST_TMP/merge.txt")"
cat "$TEST_TMP/merge.txt"
restore_and_check merged "$S0" "$BEFORE1" "$AT1"
restore_and_check after-merge "$S2" "$BEFORE2" "$AT2"
run_kiln "$TEST_TMP/full.out" "$TEST_TMP/full.err" snapshot merge "$S0"
expect_status 125 "merging a full snapshot"
expect_lines "$TEST_TMP/full.err" 1
expect_contains "$TEST_TMP/full.err" "not a diff"
ctl "$SOCK" shutdown >/dev/null
wait "$VM" 2>/dev/null

# --- the device's writes are in the diff: a guest that reads its disk into pages only the
# device writes, restored from a diff taken after reads landed there ------------------------------
DISK=$TEST_TMP/disk.img
head -c 4M /dev/urandom >"$DISK"
READER=$TEST_TMP/reader.txt
"$KILN" run --kernel "$GUEST_DIR/blk.elf" --disk "$DISK" --device-discovery cmdline \
    --cmdline "blk.mode=reader every=1000" --api-socket "$TEST_TMP/r.sock" --shutdown-grace 0 \
    >"$READER" 2>"$TEST_TMP/reader.err" </dev/null &
R=$!
track_pid "$R"
wait_for "^reader: step 3000 " "$READER"
ctl "$TEST_TMP/r.sock" snapshot "$TEST_TMP/r0" >/dev/null || fail "the reader's full snapshot"
RAT0=$(last_step "$READER" reader)
# 30 more reads, each into a page the guest itself never writes.
wait_for "^reader: step $((RAT0 + 30000)) " "$READER" 120
RBEFORE1=$(last_step "$READER" reader)
ctl "$TEST_TMP/r.sock" snapshot "$TEST_TMP/r1" --diff "$TEST_TMP/r0" >/dev/null || fail "the reader's diff"
RAT1=$(last_step "$READER" reader)
# Further than the copy will be compared, so every line it prints has the original's to match.
wait_for "^reader: step $((RAT1 + 10000)) " "$READER" 120
ctl "$TEST_TMP/r.sock" shutdown >/dev/null
wait "$R" 2>/dev/null
"$KILN" restore "$TEST_TMP/r1" --api-socket "$TEST_TMP/r1.sock" >"$TEST_TMP/r1.txt" \
    2>"$TEST_TMP/r1.err" </dev/null &
R=$!
track_pid "$R"
wait_for "^reader: step $((RAT1 + 5000)) " "$TEST_TMP/r1.txt" 120
first=$(first_step "$TEST_TMP/r1.txt" reader)
{ [ "$first" -gt "$RBEFORE1" ] && [ "$first" -le $((RAT1 + 1000)) ]; } ||
    fail "the restored reader's first line is step $first; the diff was between steps $RBEFORE1 and $RAT1"
same_as "$READER" "$TEST_TMP/r1.txt" "the reader restored from a diff" reader
ctl "$TEST_TMP/r1.sock" shutdown >/dev/null
wait "$R" 2>/dev/null
echo "PASS: diffs of diffs restore (lazy and copy), merge, device writes in a diff, bad chains refused"
