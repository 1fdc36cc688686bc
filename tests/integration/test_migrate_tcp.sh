#!/usr/bin/env bash
# Live migration over TCP between two network namespaces this test makes (as root), with a
# pre-shared key: the counter guest moves and its lines go on, none lost or repeated; a receiver
# with another key, a sender without one, and a receiver without one each end the migration at
# the handshake in one line, and the source runs on; a migrated NIC's MAC is announced on the
# destination's TAP. docs/migration.md.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest counter.elf
[ "$(id -u)" -eq 0 ] || skip "network namespaces need root"
command -v ip >/dev/null || skip "no ip command (iproute2)"

NS_A=kiln-mig-a-$$
NS_B=kiln-mig-b-$$
ADDR_B=10.199.$(($$ % 200)).2
remove_namespaces() {
    ip netns del "$NS_A" 2>/dev/null
    ip netns del "$NS_B" 2>/dev/null
}
trap 'cleanup; remove_namespaces' EXIT
ip netns add "$NS_A" && ip netns add "$NS_B" || fail "cannot make network namespaces"
ip link add "vm$$a" netns "$NS_A" type veth peer name "vm$$b" netns "$NS_B" ||
    fail "cannot make a veth pair between the namespaces"
ip -n "$NS_A" addr add "${ADDR_B%.2}.1/24" dev "vm$$a"
ip -n "$NS_B" addr add "$ADDR_B/24" dev "vm$$b"
for ns in "$NS_A" "$NS_B"; do
    ip -n "$ns" link set lo up
done
ip -n "$NS_A" link set "vm$$a" up
ip -n "$NS_B" link set "vm$$b" up
ip netns exec "$NS_A" ping -c 1 -W 5 "$ADDR_B" >/dev/null || fail "the namespaces cannot reach each other"

key() { # key FILE: 32 random bytes as 64 hex digits, mode 0600
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$1")
}
key "$TEST_TMP/key"
key "$TEST_TMP/other.key"

wait_for_line() { # wait_for_line FILE REGEX
    for ((i = 0; i < 600; i++)); do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "no '$2' in $1: $(tail -c 1000 "$1" 2>/dev/null)"
}

end_pid() {
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

start_source() { # start_source NAME CMDLINE [FLAGS]: in namespace A, API at $TEST_TMP/NAME.api
    local name=$1 cmdline=$2
    shift 2
    ip netns exec "$NS_A" "$KILN" run --kernel "$GUEST_DIR/counter.elf" --memory 128M \
        --cmdline "$cmdline" --api-socket "$TEST_TMP/$name.api" "$@" \
        >"$TEST_TMP/$name.out" 2>"$TEST_TMP/$name.err" </dev/null &
    SRC=$!
    track_pid "$SRC"
    wait_for_line "$TEST_TMP/$name.out" '^counter: step'
}

start_receiver() { # start_receiver NAME PORT [FLAGS]: in namespace B
    local name=$1 port=$2
    shift 2
    ip netns exec "$NS_B" "$KILN" receive --listen "tcp:$ADDR_B:$port" "$@" \
        >"$TEST_TMP/$name.out" 2>"$TEST_TMP/$name.err" </dev/null &
    DST=$!
    track_pid "$DST"
    wait_for_line "$TEST_TMP/$name.err" 'waiting for a migration'
}

# 1. Keyed, across namespaces: the lines of both processes are an undisturbed run's.
STEPS=150000
start_source ok "every=2000 steps=$STEPS touch=32"
start_receiver okdst 47001 --psk-file "$TEST_TMP/key"
timeout 120 "$KILN" ctl "$TEST_TMP/ok.api" migrate "tcp:$ADDR_B:47001" --psk-file "$TEST_TMP/key" \
    >"$TEST_TMP/ok.ctl" 2>&1 || fail "kiln ctl migrate over TCP: $(cat "$TEST_TMP/ok.ctl")"
cat "$TEST_TMP/ok.ctl"
wait "$SRC" || fail "the source did not end with status 0: $(cat "$TEST_TMP/ok.err")"
wait "$DST" || fail "the destination did not end with the guest's status 0: $(cat "$TEST_TMP/okdst.err")"
expect_not_contains "$TEST_TMP/ok.err" "in the clear"
run_kiln "$TEST_TMP/ref.out" "$TEST_TMP/ref.err" run --kernel "$GUEST_DIR/counter.elf" \
    --memory 128M --cmdline "every=2000 steps=$STEPS" --api-socket none
expect_status 0 "the undisturbed run"
diff <(grep '^counter: step' "$TEST_TMP/ref.out") \
    <(cat "$TEST_TMP/ok.out" "$TEST_TMP/okdst.out" | grep '^counter: step') >"$TEST_TMP/diff" ||
    fail "the counter's lines after a TCP migration differ from an undisturbed run's: $(head "$TEST_TMP/diff")"
grep -q '^counter: step' "$TEST_TMP/okdst.out" || fail "the destination printed no counter line"

# 2. Handshake refusals: each is one line at both ends, and the source runs on.
refused() { # refused NAME PORT "SENDER FLAGS" "RECEIVER FLAGS" EXPECTED-SENDER-TEXT
    start_source "$1" "every=2000"
    # shellcheck disable=SC2086 # the flags are words
    start_receiver "$1dst" "$2" $4
    # shellcheck disable=SC2086
    timeout 60 "$KILN" ctl "$TEST_TMP/$1.api" migrate "tcp:$ADDR_B:$2" $3 >"$TEST_TMP/$1.ctl" 2>&1 &&
        fail "$1: the migration succeeded"
    expect_contains "$TEST_TMP/$1.ctl" "$5"
    status=0
    wait "$DST" || status=$?
    expect_status 125 "$1: the receiver"
    echo "$1: sender: $(cat "$TEST_TMP/$1.ctl"); receiver: $(tail -1 "$TEST_TMP/$1dst.err")"
    "$KILN" ctl "$TEST_TMP/$1.api" status >"$TEST_TMP/$1.status" 2>&1
    expect_contains "$TEST_TMP/$1.status" ": running"
    end_pid "$SRC"
}
refused wrongkey 47002 "--psk-file $TEST_TMP/key" "--psk-file $TEST_TMP/other.key" "wrong pre-shared key"
refused nokey 47003 "" "--psk-file $TEST_TMP/key" "pre-shared key"
refused plainrecv 47004 "--psk-file $TEST_TMP/key" "" "pre-shared key"
# An unkeyed TCP migration is refused by nothing, but the source warns. Its VM has a NIC, on a
# TAP in each namespace: the destination announces the NIC's MAC on its TAP (five RARP
# broadcasts), so that a switch there would learn where the VM is now.
MAC=02:00:00:7a:00:05
for ns in "$NS_A" "$NS_B"; do
    ip -n "$ns" tuntap add dev ktm mode tap && ip -n "$ns" link set ktm up ||
        fail "cannot make a TAP in $ns"
done
ip netns exec "$NS_B" python3 - ktm "$MAC" >"$TEST_TMP/rarp.count" 2>&1 <<'PY' &
import socket, sys, time
iface, mac = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x8035))
s.bind((iface, 0))
s.settimeout(0.2)
seen, end = 0, time.time() + 60
while seen < 5 and time.time() < end:
    try:
        frame = s.recv(2048)
    except socket.timeout:
        continue
    # Broadcast from the NIC's MAC, RARP "reverse request" (3) naming that MAC.
    if frame[0:6] == b"\xff" * 6 and frame[6:12] == mac and frame[20:22] == b"\x00\x03" \
            and frame[22:28] == mac:
        seen += 1
print(seen)
PY
capture=$!
track_pid "$capture"
start_source clear "every=2000" --net "tap=ktm,mac=$MAC"
start_receiver cleardst 47005 --net "tap=ktm,mac=$MAC"
timeout 120 "$KILN" ctl "$TEST_TMP/clear.api" migrate "tcp:$ADDR_B:47005" >"$TEST_TMP/clear.ctl" 2>&1 ||
    fail "an unkeyed TCP migration failed: $(cat "$TEST_TMP/clear.ctl")"
wait "$SRC" || fail "the unkeyed source did not end with status 0"
expect_contains "$TEST_TMP/clear.err" "in the clear"
wait "$capture" || fail "the RARP capture failed: $(cat "$TEST_TMP/rarp.count")"
[ "$(cat "$TEST_TMP/rarp.count")" = 5 ] ||
    fail "the destination's TAP saw $(cat "$TEST_TMP/rarp.count") RARP announcements of $MAC, expected 5; the destination said: $(cat "$TEST_TMP/cleardst.err")"
end_pid "$DST"
echo "PASS: a keyed TCP migration between namespaces moves the counter intact; wrong, missing and unexpected keys are refused at the handshake; an unkeyed one warns; the destination announced the NIC's MAC 5 times"
