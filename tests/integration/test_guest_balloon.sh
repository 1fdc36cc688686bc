#!/usr/bin/env bash
# virtio-balloon with the guest kit's balloon.elf, under the default --seccomp kill: kiln ctl
# balloon inflates 64 MiB the guest had written and kiln's RAM shrinks by at least 90% of it,
# the guest's statistics arrive, a deflate gives the pages back usable; a snapshot restores the
# balloon's target and the guest's answer and the restored guest still obeys; a hostile driver
# (PFNs outside RAM, repeated, too many, reports outside RAM) is ignored and logged while the
# guest's own checks pass; and every bad request is one clear line.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest balloon.elf
require_guest counter.elf

# wait_line FILE TEXT: up to 60 s for TEXT in FILE.
wait_line() {
    for ((i = 0; i < 600; i++)); do
        grep -qF -- "$2" "$1" && return 0
        sleep 0.1
    done
    fail "no '$2' in $1 after 60 s: $(tail -5 "$1")"
}

# The KiB of guest RAM kiln's process holds: its shared memory (the RAM's memfd) mapped in;
# for a restored VM (the snapshot's file mapped private) the copies the guest wrote, anonymous.
ram_kib() {
    awk '/^RssShmem:/ {print $2}' "/proc/$1/status"
}
written_kib() {
    awk '/^RssAnon:/ {print $2}' "/proc/$1/status"
}

ctl() {
    timeout 30 "$KILN" ctl "$@"
}

# --- inflate, statistics, deflate ------------------------------------------------------------
SOCK=$TEST_TMP/api.sock
"$KILN" run --kernel "$GUEST_DIR/balloon.elf" --memory 128M --device-discovery cmdline \
    --cmdline "touch=64" --balloon 0,stats=1,deflate-on-oom=on --api-socket "$SOCK" \
    >"$TEST_TMP/vm.out" 2>"$TEST_TMP/vm.err" </dev/null &
VM=$!
track_pid "$VM"
wait_line "$TEST_TMP/vm.out" "balloon: touched 64 MiB, obeying"
expect_contains "$TEST_TMP/vm.out" "balloon: features stats deflate-on-oom,"
before=$(ram_kib "$VM")
[ "$before" -ge $((64 * 1024)) ] || fail "the guest wrote 64 MiB but kiln holds only $before KiB"

ctl "$SOCK" balloon 64M >"$TEST_TMP/set.txt" 2>&1 || fail "kiln ctl balloon 64M: $(cat "$TEST_TMP/set.txt")"
expect_contains "$TEST_TMP/set.txt" "balloon target set to 64 MiB"
wait_line "$TEST_TMP/vm.out" "balloon: actual 16384 pages (target 16384)"
after=$(ram_kib "$VM")
echo "kiln's guest RAM: $before KiB before the 64 MiB inflate, $after KiB after"
[ $((before - after)) -ge $((64 * 1024 * 9 / 10)) ] ||
    fail "inflating 64 MiB gave back only $((before - after)) KiB (expected at least 90%)"

# The guest's statistics come every second: wait (at most 30 s) for a set sent after the
# inflate, which reports its pool less the balloon as free: 112 - 64 MiB.
for ((i = 0; i < 60; i++)); do
    ctl "$SOCK" balloon --json >"$TEST_TMP/get.json" || fail "kiln ctl balloon --json"
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1])).get("stats", {}); sys.exit(s.get("free_memory") != 48 << 20)' \
        "$TEST_TMP/get.json" && break
    sleep 0.5
done
python3 - "$TEST_TMP/get.json" <<'EOF' || fail "GET /vm/balloon: $(cat "$TEST_TMP/get.json")"
import json, sys
b = json.load(open(sys.argv[1]))
assert b["target_mib"] == 64 and b["actual_mib"] == 64 and b["actual_pages"] == 16384, b
assert b["pages_in_balloon"] == 16384 and b["discarded_pages"] >= 16384, b
assert b["bad_pfns"] == 0 and b["repeated_pfns"] == 0, b
s = b["stats"]
assert s["total_memory"] > 120 << 20 and s["updates"] >= 2, s
assert s["free_memory"] == 48 << 20, s
EOF
ctl "$SOCK" balloon >"$TEST_TMP/get.txt" || fail "kiln ctl balloon"
expect_contains "$TEST_TMP/get.txt" "balloon: target 64 MiB, the guest gave 64 MiB (16384 pages)"
expect_contains "$TEST_TMP/get.txt" "guest statistics: "
ctl "$SOCK" status >"$TEST_TMP/status.txt" || fail "kiln ctl status"
expect_contains "$TEST_TMP/status.txt" "balloon: target 64 MiB, the guest gave 64 MiB"

ctl "$SOCK" balloon 0 >/dev/null || fail "kiln ctl balloon 0"
wait_line "$TEST_TMP/vm.out" "balloon: re-touched 16384 pages OK"
expect_contains "$TEST_TMP/vm.out" "balloon: actual 0 pages (target 0)"

# Bad requests: one line each, the VM unharmed.
status=0
ctl "$SOCK" balloon 129M >"$TEST_TMP/big.txt" 2>&1 || status=$?
expect_status 1 "a target above RAM"
expect_contains "$TEST_TMP/big.txt" "kiln ctl: error: balloon: a balloon of 129 MiB is more than the VM's 128 MiB of memory"
status=0
ctl "$SOCK" balloon lots >"$TEST_TMP/word.txt" 2>&1 || status=$?
expect_status 125 "a target that is not a size"
expect_contains "$TEST_TMP/word.txt" "balloon: 'lots' is not a size"
curl_put() { # curl_put BODY: the raw API's answer to PUT /vm/balloon
    python3 - "$SOCK" "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
body = sys.argv[2].encode()
s.sendall(b"PUT /vm/balloon HTTP/1.1\r\nHost: kiln\r\nContent-Type: application/json\r\n"
          b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
print(s.makefile("rb").read().decode())
EOF
}
curl_put '{"amount_mib": 5}' >"$TEST_TMP/raw.txt"
expect_contains "$TEST_TMP/raw.txt" "400 "
expect_contains "$TEST_TMP/raw.txt" 'the body must be {\"target_mib\": N}'
curl_put '{"target_mib": -1}' >"$TEST_TMP/raw.txt"
expect_contains "$TEST_TMP/raw.txt" "target_mib -1 (expected 0 to the VM's memory)"

# --- a snapshot keeps the balloon -----------------------------------------------------------
ctl "$SOCK" balloon 32M >/dev/null || fail "kiln ctl balloon 32M"
wait_line "$TEST_TMP/vm.out" "balloon: actual 8192 pages (target 8192)"
ctl "$SOCK" snapshot "$TEST_TMP/snap" --stop >"$TEST_TMP/snap.txt" 2>&1 ||
    fail "kiln ctl snapshot: $(cat "$TEST_TMP/snap.txt")"
wait "$VM" || fail "the VM did not end with status 0 after snapshot --stop: $(cat "$TEST_TMP/vm.err")"
RSOCK=$TEST_TMP/restored.sock
"$KILN" restore "$TEST_TMP/snap" --api-socket "$RSOCK" >"$TEST_TMP/restored.out" \
    2>"$TEST_TMP/restored.err" </dev/null &
RVM=$!
track_pid "$RVM"
for ((i = 0; i < 300; i++)); do
    [ -S "$RSOCK" ] && break
    sleep 0.1
done
ctl "$RSOCK" balloon >"$TEST_TMP/rget.txt" || fail "kiln ctl balloon on the restored VM: $(cat "$TEST_TMP/restored.err")"
expect_contains "$TEST_TMP/rget.txt" "balloon: target 32 MiB, the guest gave 32 MiB (8192 pages)"
ctl "$RSOCK" balloon 0 >/dev/null || fail "kiln ctl balloon 0 on the restored VM"
wait_line "$TEST_TMP/restored.out" "balloon: re-touched 8192 pages OK"
# The 32 MiB the restored guest wrote are private copies of the snapshot's pages: inflating
# them again drops those copies (MADV_DONTNEED).
before=$(written_kib "$RVM")
ctl "$RSOCK" balloon 32M >/dev/null || fail "kiln ctl balloon 32M on the restored VM"
wait_line "$TEST_TMP/restored.out" "balloon: actual 8192 pages (target 8192)"
after=$(written_kib "$RVM")
echo "restored VM's written copies: $before KiB before the 32 MiB inflate, $after KiB after"
[ $((before - after)) -ge $((32 * 1024 * 9 / 10)) ] ||
    fail "inflating 32 MiB of a restored VM gave back only $((before - after)) KiB"
# The statistics buffer held at the snapshot was taken again: they keep coming, now with the
# pool less 32 MiB free.
for ((i = 0; i < 60; i++)); do
    ctl "$RSOCK" balloon --json >"$TEST_TMP/rget.json" || fail "kiln ctl balloon --json (restored)"
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1])).get("stats", {}); sys.exit(s.get("free_memory") != 80 << 20)' \
        "$TEST_TMP/rget.json" && break
    sleep 0.5
done
python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["stats"]; assert s["updates"] >= 1 and s["free_memory"] == 80 << 20, s' \
    "$TEST_TMP/rget.json" || fail "no statistics after the restore: $(cat "$TEST_TMP/rget.json")"
kill -TERM "$RVM"
kill -TERM "$RVM"
wait "$RVM" || true

# --- a hostile driver -------------------------------------------------------------------------
run_kiln "$TEST_TMP/h.out" "$TEST_TMP/h.err" run --kernel "$GUEST_DIR/balloon.elf" \
    --memory 64M --device-discovery cmdline --cmdline "balloon.mode=hostile" \
    --balloon 0,free-page-reporting=on --log-level debug --api-socket none
expect_status 0 "hostile balloon guest: $(cat "$TEST_TMP/h.out" "$TEST_TMP/h.err")"
expect_contains "$TEST_TMP/h.out" "balloon: hostile: PASS"
expect_not_contains "$TEST_TMP/h.out" "never came back"
expect_contains "$TEST_TMP/h.err" "ignored PFN 0x4000: not RAM (the MMIO hole or past the end)"
expect_contains "$TEST_TMP/h.err" "ignored PFN 0x1000: already in the balloon"
expect_contains "$TEST_TMP/h.err" "ignored 100 PFNs of a buffer of 16484: more than the VM's 16384 pages"
expect_contains "$TEST_TMP/h.err" "a PFN list of 5 bytes (expected whole 4-byte PFNs)"
# Counted, each kind logged once: 5 PFNs outside RAM inflated and 2 deflated, the report
# outside RAM and the one past its end refused as malformed chains.
expect_contains "$TEST_TMP/h.err" "virtio-balloon 0: malformed 3,"
expect_contains "$TEST_TMP/h.err" "bad_pfns 7,"
expect_contains "$TEST_TMP/h.err" "excess_pfns 100,"
expect_contains "$TEST_TMP/h.err" "queue 2: notifications"
[ "$(grep -c 'ignored PFN 0x[0-9a-f]*: not RAM' "$TEST_TMP/h.err")" -eq 1 ] ||
    fail "PFNs outside RAM were logged more than once: $(cat "$TEST_TMP/h.err")"

# --- a VM without a balloon -------------------------------------------------------------------
NSOCK=$TEST_TMP/none.sock
"$KILN" run --kernel "$GUEST_DIR/counter.elf" --api-socket "$NSOCK" >/dev/null 2>&1 </dev/null &
NVM=$!
track_pid "$NVM"
for ((i = 0; i < 300; i++)); do
    [ -S "$NSOCK" ] && break
    sleep 0.1
done
status=0
ctl "$NSOCK" balloon 0 >"$TEST_TMP/none.txt" 2>&1 || status=$?
expect_status 1 "balloon on a VM without one"
expect_contains "$TEST_TMP/none.txt" "kiln ctl: error: balloon: this VM has no balloon (start it with --balloon SIZE, e.g. --balloon 0)"
kill -KILL "$NVM"

# --- bad settings: one line, status 125 ---------------------------------------------------------
run_kiln "$TEST_TMP/b.out" "$TEST_TMP/b.err" run --kernel "$GUEST_DIR/balloon.elf" \
    --memory 64M --balloon 65M --api-socket none
expect_status 125 "a balloon above RAM"
expect_lines "$TEST_TMP/b.err" 1
expect_contains "$TEST_TMP/b.err" "--balloon: a balloon of 65M is more than the VM's 64M of memory (expected at most 64M)"
echo "PASS: inflates gave RAM back (fresh and restored), statistics, deflate, snapshot, hostile driver, bad requests"
