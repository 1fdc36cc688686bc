#!/usr/bin/env bash
# kiln ctl and kiln ps against a stand-in API server (api_peer.py): the human and --json
# output of each reply shape, exit statuses 0/1/125, a dead, a missing and a non-HTTP socket,
# finding a VM by name or pid (0, 1, 2 matches), and kiln ps's table, JSON and stale sockets.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"

export XDG_RUNTIME_DIR=$TEST_TMP/xdg
RUN_DIR=$XDG_RUNTIME_DIR/kiln
mkdir -p "$XDG_RUNTIME_DIR"
PEER=$SOURCE_DIR/tests/integration/api_peer.py

# start_peer PATH MODE: an api_peer.py serving PATH, returned once it accepts connections.
start_peer() {
    python3 "$PEER" "$1" "$2" &
    track_pid $!
    for _ in $(seq 100); do
        [ -S "$1" ] && return 0
        sleep 0.05
    done
    fail "api_peer.py did not create $1"
}
# dead_socket PATH: a socket file nobody listens on (its VM died without removing it).
dead_socket() {
    python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$1" ||
        fail "could not make the dead socket $1"
}
# run_ctl EXPECTED_STATUS ARGS...: kiln ARGS, its stdout in $out and stderr in $err.
run_ctl() {
    local want=$1 status=0
    shift
    "$KILN" "$@" >"$TEST_TMP/out" 2>"$TEST_TMP/err" || status=$?
    out=$(cat "$TEST_TMP/out")
    err=$(cat "$TEST_TMP/err")
    [ "$status" -eq "$want" ] ||
        fail "kiln $* exited $status, expected $want (stdout: $out; stderr: $err)"
}
expect_text() { # expect_text WHAT TEXT NEEDLE
    grep -qF -- "$3" <<<"$2" || fail "$1: expected '$3' in: $2"
}

SOCK=$TEST_TMP/vm.sock
start_peer "$SOCK" vm

run_ctl 0 ctl "$SOCK" status
[ "$out" = "web1 (pid 1234): running, up 12.3 s, 2 vCPUs, 512 MiB" ] || fail "status: got '$out'"
run_ctl 0 ctl "$SOCK" status --json
python3 -c 'import json, sys; d = json.load(sys.stdin); assert d["name"] == "web1" and d["config"] == {"cpus": 2}' \
    <<<"$out" || fail "status --json is not the reply's JSON: $out"
run_ctl 0 ctl "$SOCK" pause
[ "$out" = paused ] || fail "pause: got '$out'"
run_ctl 0 ctl --json "$SOCK" pause
[ "$out" = "{}" ] || fail "pause --json (204, no body): got '$out'"
run_ctl 0 ctl "$SOCK" shutdown
[ "$out" = "shutting down: ACPI power button pressed" ] || fail "shutdown: got '$out'"
run_ctl 0 ctl "$SOCK" reboot
[ "$out" = rebooting ] || fail "reboot without a message: got '$out'"
run_ctl 0 ctl "$SOCK" counters
for line in "vCPU 0" "  exits: io 10, mmio 3, hlt 1" "virtio-blk 0 (slot 0)" "  read_bytes: 4096" \
    "  queue 0: notifications 5, chains 5, used 5, interrupts 4"; do
    grep -qxF -- "$line" <<<"$out" || fail "counters: no line '$line' in: $out"
done

# The VM answers with an error: its message, exit 1.
run_ctl 1 ctl "$SOCK" resume
[ "$err" = "kiln ctl: error: the VM is not paused" ] || fail "resume's API error: got '$err'"
[ -z "$out" ] || fail "an API error printed on stdout: $out"

# Bad uses: one line each, 125.
run_ctl 125 ctl "$SOCK" frobnicate
expect_text "unknown command" "$err" "unknown command 'frobnicate' (expected one of: status, pause, resume, shutdown, reboot, counters, snapshot, migrate, migrate-cancel, balloon)"
run_ctl 125 ctl "$SOCK"
expect_text "missing command" "$err" "missing COMMAND after SOCKET"
run_ctl 125 ctl "$SOCK" status --yaml
expect_text "unknown flag" "$err" "unknown flag --yaml"
run_ctl 125 ctl "$SOCK" snapshot "$TEST_TMP/s1" --diff
expect_text "--diff without BASE" "$err" "--diff needs the base snapshot's folder"
run_ctl 125 ctl "$SOCK" status --diff "$TEST_TMP/s0"
expect_text "--diff on status" "$err" "--diff goes with snapshot only"

# Unreachable: missing, dead, not HTTP.
run_ctl 125 ctl "$TEST_TMP/missing.sock" status
[ "$err" = "kiln ctl: error: API socket $TEST_TMP/missing.sock: connect: No such file or directory (is the VM running?)" ] ||
    fail "missing socket: got '$err'"
dead_socket "$TEST_TMP/dead.sock"
run_ctl 125 ctl "$TEST_TMP/dead.sock" status
[ "$err" = "kiln ctl: error: API socket $TEST_TMP/dead.sock: connect: Connection refused (is the VM running?)" ] ||
    fail "dead socket: got '$err'"
start_peer "$TEST_TMP/garbage.sock" garbage
run_ctl 125 ctl "$TEST_TMP/garbage.sock" status
expect_text "not HTTP" "$err" "the reply is not HTTP (it starts 'hello, this is not H')"

# By name or pid in the run folder: 0, 1, 2 matches. A socket's name carries its VM's pid; a
# socket whose pid is no process was left by a VM that died, and is not a match. (This
# shell's pid stands for the live VM's.)
python3 -c 'pass' &
gone_pid=$!
wait "$gone_pid"
run_ctl 125 ctl web1 status
expect_text "no match" "$err" "web1: no such socket, and no VM of that name or pid in $RUN_DIR (see kiln ps)"
start_peer "$RUN_DIR/web1.$$.sock" vm
dead_socket "$RUN_DIR/web1.$gone_pid.sock"
run_ctl 0 ctl web1 status
expect_text "by name, the dead VM's socket skipped" "$out" "web1 (pid 1234): running"
run_ctl 0 ctl $$ status
expect_text "by pid" "$out" "web1 (pid 1234): running"
rm -f "$RUN_DIR/web1.$gone_pid.sock"
sleep 60 &
alive_pid=$!
track_pid "$alive_pid"
dead_socket "$RUN_DIR/web1.$alive_pid.sock"
run_ctl 125 ctl web1 status
first=$(printf '%s\n' "web1.$$.sock" "web1.$alive_pid.sock" | sort | head -1)
second=$(printf '%s\n' "web1.$$.sock" "web1.$alive_pid.sock" | sort | tail -1)
expect_text "two matches" "$err" "web1: 2 VMs match in $RUN_DIR: $first, $second (give the socket's path)"
rm -f "$RUN_DIR/web1.$alive_pid.sock"

# kiln ps: a live VM, a dead socket whose process is gone (removed), one whose pid is alive
# but serves nothing (unreachable: not ours to remove).
dead_socket "$RUN_DIR/old.$gone_pid.sock"
dead_socket "$RUN_DIR/busy.$$.sock"
run_ctl 0 ps
header=$(head -1 <<<"$out")
[ "$(tr -s ' ' <<<"$header")" = "NAME PID STATE VCPUS MEMORY SOCKET" ] || fail "ps header: '$header'"
grep -qE "^web1 +1234 +running +2 +512M +$RUN_DIR/web1.$$.sock\$" <<<"$out" || fail "ps: no web1 row in: $out"
grep -qE "^busy +$$ +unreachable +- +- +$RUN_DIR/busy.$$.sock\$" <<<"$out" || fail "ps: no unreachable row in: $out"
[ "$(wc -l <<<"$out")" -eq 3 ] || fail "ps: expected a header and 2 rows: $out"
[ ! -e "$RUN_DIR/old.$gone_pid.sock" ] || fail "ps left the stale socket old.$gone_pid.sock"
[ -e "$RUN_DIR/busy.$$.sock" ] || fail "ps removed a socket whose process is alive"
run_ctl 0 ps --json
python3 -c '
import json, sys
rows = json.load(sys.stdin)
assert [r["state"] for r in rows] == ["unreachable", "running"], rows
assert rows[1]["memory_mib"] == 512 and rows[1]["socket"].endswith("/web1.%s.sock" % sys.argv[1]), rows
assert "Connection refused" in rows[0]["error"], rows
' "$$" <<<"$out" || fail "ps --json: $out"
run_ctl 125 ps --all
expect_text "ps bad flag" "$err" "unexpected argument '--all'"
run_ctl 0 ctl --help
expect_text "ctl help" "$out" "usage: kiln ctl SOCKET COMMAND [ARGS] [--json]"
run_ctl 0 help ps
expect_text "help ps" "$out" "usage: kiln ps [--json]"

# A run folder others can read is refused, not used.
chmod 0755 "$RUN_DIR"
run_ctl 125 ps
expect_text "open run folder" "$err" "run folder $RUN_DIR: owned by uid $(id -u) with mode 0755 (expected uid $(id -u), no group or other access)"
echo "PASS: kiln ctl and kiln ps"
