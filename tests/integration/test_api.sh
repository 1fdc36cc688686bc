#!/usr/bin/env bash
# The control API on a running guest-kit VM, as a user drives it with kiln ctl and kiln ps:
# status (text and JSON), the socket's mode, counters that move, pause (the guest's output stops) and resume (it
# goes on), a reboot refused without --on-reset restart and done with it, shutdown through
# the power button and the grace period, the default socket in the run folder, a socket
# already served refused, and what a malformed request gets. seccomp stays on (kill).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest counter.elf

SOCK=$TEST_TMP/api.sock
OUT=$TEST_TMP/out.txt
ERR=$TEST_TMP/err.txt
ctl() { timeout 20 "$KILN" ctl "$@"; }

# wait_for TEXT FILE [SECONDS]: until FILE has a line with TEXT.
wait_for() {
    local i
    for ((i = 0; i < ${3:-30} * 10; i++)); do
        grep -qF -- "$1" "$2" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "no '$1' in $2 within ${3:-30} s: $(tail -n 5 "$2")"
}
counter_lines() { grep -c '^counter: step' "$OUT"; }

# --- a VM with an API socket ---------------------------------------------------------------
"$KILN" run --kernel "$GUEST_DIR/counter.elf" --cmdline every=1000 --name api-test \
    --shutdown-grace 1 --api-socket "$SOCK" >"$OUT" 2>"$ERR" </dev/null &
VM=$!
track_pid "$VM"
wait_for "counter: step" "$OUT"
[ -S "$SOCK" ] || fail "no socket at $SOCK"
[ "$(stat -c %a "$SOCK")" = 600 ] || fail "the socket's mode is $(stat -c %a "$SOCK"), expected 600"

ctl "$SOCK" status >"$TEST_TMP/status.txt" || fail "kiln ctl status failed: $(cat "$TEST_TMP/status.txt")"
expect_contains "$TEST_TMP/status.txt" "api-test (pid $VM): running"
ctl "$SOCK" status --json >"$TEST_TMP/status.json" || fail "kiln ctl status --json failed"
python3 - "$TEST_TMP/status.json" "$VM" <<'PY' || fail "GET /vm: $(cat "$TEST_TMP/status.json")"
import json, sys
vm = json.load(open(sys.argv[1]))
assert vm["state"] == "running", vm["state"]
assert vm["pid"] == int(sys.argv[2]), vm["pid"]
assert vm["name"] == "api-test" and vm["vcpus"] == 1 and vm["memory_mib"] == 256, vm
assert vm["config"]["name"] == "api-test", vm["config"]
assert vm["config"]["kernel"]["cmdline"] == "every=1000", vm["config"]["kernel"]
assert vm["uptime_ms"] > 0, vm["uptime_ms"]
PY

# --- counters: the guest's port writes and serial bytes, moving -------------------------------
counters() {
    ctl "$SOCK" counters --json >"$TEST_TMP/counters$1.json" || fail "kiln ctl counters --json failed"
}
counters 1
sleep 1
counters 2
ctl "$SOCK" counters >"$TEST_TMP/counters.txt" || fail "kiln ctl counters failed"
expect_contains "$TEST_TMP/counters.txt" "tx_bytes"
python3 - "$TEST_TMP/counters1.json" "$TEST_TMP/counters2.json" <<'PY' || fail "GET /vm/counters: $(head -c 1500 "$TEST_TMP/counters2.json")"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def serial(c):
    return next(d for d in c["devices"] if d["name"].startswith("serial"))["counters"]
assert a["vcpus"][0]["index"] == 0 and a["vcpus"][0]["exits"]["io"] > 0, a["vcpus"]
assert b["vcpus"][0]["exits"]["io"] > a["vcpus"][0]["exits"]["io"], "io exits did not grow"
assert serial(b)["tx_bytes"] > serial(a)["tx_bytes"] > 0, (serial(a), serial(b))
PY

# --- pause: the guest's counter stops; resume: it goes on ----------------------------------
ctl "$SOCK" pause >"$TEST_TMP/pause.txt" || fail "kiln ctl pause failed: $(cat "$TEST_TMP/pause.txt")"
ctl "$SOCK" status >"$TEST_TMP/status.txt"
expect_contains "$TEST_TMP/status.txt" ": paused"
sleep 0.3 # a line the guest wrote just before it parked may still be on its way
before=$(counter_lines)
sleep 2
[ "$(counter_lines)" -eq "$before" ] || fail "the guest printed $(($(counter_lines) - before)) lines while paused"
ctl "$SOCK" pause >/dev/null || fail "pausing a paused VM must succeed (nothing to do)"
ctl "$SOCK" resume >/dev/null || fail "kiln ctl resume failed"
for ((i = 0; i < 300 && $(counter_lines) <= before; i++)); do sleep 0.1; done
[ "$(counter_lines)" -gt "$before" ] || fail "the guest printed nothing in 30 s after resume"
ctl "$SOCK" status >"$TEST_TMP/status.txt"
expect_contains "$TEST_TMP/status.txt" ": running"

# --- reboot: refused without --on-reset restart (the seccomp filter keeps no rebuild) -------
status=0
ctl "$SOCK" reboot >"$TEST_TMP/reboot.txt" 2>&1 || status=$?
expect_status 1 "kiln ctl reboot without --on-reset restart"
expect_contains "$TEST_TMP/reboot.txt" "--on-reset restart"

# --- a malformed request: 400 and a JSON error; the VM runs on --------------------------------
python3 - "$SOCK" <<'PY' || fail "a malformed request"
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(b"NONSENSE\r\n\r\n")
reply = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    reply += chunk
head, _, body = reply.partition(b"\r\n\r\n")
assert head.startswith(b"HTTP/1.1 400"), head
assert "error" in json.loads(body), body
PY
ctl "$SOCK" status >/dev/null || fail "the API stopped answering after a malformed request"

# --- a second VM on the same socket is refused ------------------------------------------------
run_kiln "$TEST_TMP/out2.txt" "$TEST_TMP/err2.txt" run --kernel "$GUEST_DIR/hello.elf" --api-socket "$SOCK"
expect_status 125 "a second VM on a served socket"
expect_lines "$TEST_TMP/err2.txt" 1
expect_contains "$TEST_TMP/err2.txt" "$SOCK"

# --- shutdown: the power button, then (the counter ignores it) the grace period -------------
ctl "$SOCK" shutdown >"$TEST_TMP/shutdown.txt" || fail "kiln ctl shutdown failed: $(cat "$TEST_TMP/shutdown.txt")"
expect_contains "$TEST_TMP/shutdown.txt" "power button"
status=0
wait "$VM" || status=$?
expect_status 143 "after the API's shutdown and a 1 s grace"
expect_contains "$ERR" "the API"
[ ! -e "$SOCK" ] || fail "kiln left its socket $SOCK behind"

# --- reboot with --on-reset restart, on the default socket in the run folder -----------------
export XDG_RUNTIME_DIR=$TEST_TMP/xdg
mkdir -m 700 "$XDG_RUNTIME_DIR"
"$KILN" run --kernel "$GUEST_DIR/counter.elf" --cmdline every=1000 --name api-reboot \
    --on-reset restart --shutdown-grace 0 >"$OUT" 2>"$ERR" </dev/null &
VM=$!
track_pid "$VM"
wait_for "counter: step" "$OUT"
DEFAULT=$XDG_RUNTIME_DIR/kiln/api-reboot.$VM.sock
[ -S "$DEFAULT" ] || fail "no default socket $DEFAULT: $(ls -la "$XDG_RUNTIME_DIR/kiln" 2>&1)"
timeout 20 "$KILN" ps >"$TEST_TMP/ps.txt" || fail "kiln ps failed: $(cat "$TEST_TMP/ps.txt")"
grep -E "^api-reboot +$VM +running" "$TEST_TMP/ps.txt" >/dev/null || fail "kiln ps: $(cat "$TEST_TMP/ps.txt")"
ctl api-reboot reboot >"$TEST_TMP/reboot.txt" || fail "kiln ctl reboot failed: $(cat "$TEST_TMP/reboot.txt")"
wait_for "counter: start" "$OUT"
for ((i = 0; i < 300 && $(grep -c 'counter: start' "$OUT") < 2; i++)); do sleep 0.1; done
[ "$(grep -c 'counter: start' "$OUT")" -eq 2 ] || fail "the guest did not start again after the reboot: $(head -c 600 "$OUT")"
ctl "$DEFAULT" status --json >"$TEST_TMP/status.json"
python3 -c 'import json,sys; vm=json.load(open(sys.argv[1])); assert vm["boots"] == 2, vm' \
    "$TEST_TMP/status.json" || fail "after the reboot: $(cat "$TEST_TMP/status.json")"
ctl "$DEFAULT" shutdown >/dev/null || fail "kiln ctl shutdown failed"
status=0
wait "$VM" || status=$?
expect_status 143 "the API's shutdown with no grace period"
[ ! -e "$DEFAULT" ] || fail "kiln left its default socket behind"
echo "PASS: status, pause/resume, reboot, shutdown and kiln ps through the control API"
