#!/usr/bin/env bash
# virtio-console and the console sinks: the guest kit's console.elf writes to hvc0 and echoes a
# line of input, through --console virtio (stdio), --vconsole socket:PATH and --vconsole pty
# (beside the serial console); the serial console on a pty; each bad console setting ends in
# one error line; and the same guest against QEMU microvm's virtconsole.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"

require_kvm
require_guest console.elf
require_guest serial-echo.elf
GUEST=(--kernel "$GUEST_DIR/console.elf" --memory 64M --device-discovery cmdline)
PEER=$SOURCE_DIR/tests/integration/console_peer.py

# --console virtio: hvc0 is the console on stdin/stdout.
status=0
(sleep 0.5; printf 'ping over stdio\n') |
    timeout --kill-after=10 60 "$KILN" run "${GUEST[@]}" --console virtio >"$TEST_TMP/stdio.out" \
        2>"$TEST_TMP/stdio.err" || status=$?
expect_status 0 "$(cat "$TEST_TMP/stdio.err")"
expect_contains "$TEST_TMP/stdio.out" "console: hello from hvc0, type a line"
expect_contains "$TEST_TMP/stdio.out" "console: got 'ping over stdio'"
expect_not_contains "$TEST_TMP/stdio.out" "virtio: device" # ttyS0's output goes nowhere

# attached PEER_KIND WHERE SINK...: kiln with --vconsole SINK, a peer sends a line on hvc0.
attached() {
    local kind=$1 where=$2 name=$3
    shift 3
    status=0
    timeout --kill-after=10 90 "$KILN" run "${GUEST[@]}" "$@" </dev/null >"$TEST_TMP/$name.out" \
        2>"$TEST_TMP/$name.err" &
    local pid=$!
    track_pid "$pid"
    python3 "$PEER" "$kind" "$where" "ping over $name\n" "console: got 'ping over $name'" \
        >"$TEST_TMP/$name.peer" || fail "$name peer: $(cat "$TEST_TMP/$name.peer" "$TEST_TMP/$name.err")"
    wait "$pid" || status=$?
    expect_status 0 "$(cat "$TEST_TMP/$name.err")"
    expect_contains "$TEST_TMP/$name.out" "console: read 'ping over $name'" # ttyS0 still works
    expect_contains "$TEST_TMP/$name.out" "console: done"
}

SOCK=$TEST_TMP/hvc.sock
attached socket "$SOCK" socket --vconsole "socket:$SOCK"
[ ! -e "$SOCK" ] || fail "kiln left its socket $SOCK behind"

# A socket left by a kiln that died is taken over.
python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$SOCK"
attached socket "$SOCK" stale --vconsole "socket:$SOCK"

attached pty "$TEST_TMP/pty.err" pty --vconsole pty
expect_contains "$TEST_TMP/pty.err" "kiln: hvc0 (virtio) console on /dev/pts/"

# The serial console on a pty: serial-echo.elf echoes what the peer types.
status=0
timeout --kill-after=10 60 "$KILN" run --kernel "$GUEST_DIR/serial-echo.elf" --console pty \
    </dev/null >"$TEST_TMP/ttyS0.out" 2>"$TEST_TMP/ttyS0.err" &
pid=$!
track_pid "$pid"
python3 "$PEER" pty "$TEST_TMP/ttyS0.err" "echo me q" "echo me " >"$TEST_TMP/ttyS0.peer" ||
    fail "ttyS0 pty peer: $(cat "$TEST_TMP/ttyS0.peer" "$TEST_TMP/ttyS0.err")"
wait "$pid" || status=$?
expect_status 0 "$(cat "$TEST_TMP/ttyS0.err")"
expect_contains "$TEST_TMP/ttyS0.err" "kiln: ttyS0 console on /dev/pts/"

# Bad console settings: one line each, status 125, before anything starts.
bad() { # bad EXPECTED_MESSAGE ARGS...
    local want=$1
    shift
    run_kiln "$TEST_TMP/bad.out" "$TEST_TMP/bad.err" run "${GUEST[@]}" "$@"
    expect_status 125 "$(cat "$TEST_TMP/bad.err")"
    expect_lines "$TEST_TMP/bad.err" 1
    expect_contains "$TEST_TMP/bad.err" "$want"
}
bad "kiln: error: --vconsole: stdio is already the serial console's (expected file:PATH, socket:PATH, pty or none, or the serial console on another sink)" --vconsole stdio
bad "kiln: error: --vconsole: the console is already on virtio-console (expected either a virtio console or a second console beside the serial one, not both)" --console virtio --vconsole pty
bad "kiln: error: --vconsole: 'socket:' needs a path (expected socket:PATH)" --vconsole socket:
bad "kiln: error: --console: 'tty' is not a console (expected stdio, file:PATH, socket:PATH, pty or none, optionally after virtio:)" --console tty
long=$TEST_TMP/$(printf 'x%.0s' {1..120})
bad "kiln: error: --vconsole: the socket path is ${#long} bytes long (expected at most 107)" --vconsole "socket:$long"
touch "$TEST_TMP/plain"
bad "kiln: error: --vconsole: 'socket:$TEST_TMP/plain' exists and is not a socket (expected a new path or an old socket)" --vconsole "socket:$TEST_TMP/plain"
bad "kiln: error: --vconsole: cannot listen on 'socket:$TEST_TMP/no/dir/c.sock': No such file or directory (expected a path kiln may create a socket at)" --vconsole "socket:$TEST_TMP/no/dir/c.sock"
python3 -c 'import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); time.sleep(60)' "$TEST_TMP/busy.sock" &
track_pid $!
for _ in $(seq 100); do [ -S "$TEST_TMP/busy.sock" ] && break; sleep 0.05; done
bad "kiln: error: --vconsole: 'socket:$TEST_TMP/busy.sock' is in use by another process (expected a free path)" --vconsole "socket:$TEST_TMP/busy.sock"

# The same guest against QEMU microvm's virtconsole (port 0 of virtio-serial, no MULTIPORT).
if command -v qemu-system-x86_64 >/dev/null 2>&1; then
    status=0
    (sleep 1; printf 'ping over qemu\n') |
        timeout --kill-after=10 60 qemu-system-x86_64 -M microvm,acpi=off -enable-kvm \
            -cpu host,-arch-capabilities -nodefaults -no-reboot -display none \
            -serial "file:$TEST_TMP/qemu.serial" -device isa-debug-exit,iobase=0xf4,iosize=4 \
            -global virtio-mmio.force-legacy=false -chardev stdio,id=hvc \
            -device virtio-serial-device -device virtconsole,chardev=hvc \
            -kernel "$GUEST_DIR/console.elf" >"$TEST_TMP/qemu.out" 2>"$TEST_TMP/qemu.err" ||
        status=$?
    # isa-debug-exit: guest status S -> QEMU status (S << 1) | 1, so 1 is a pass.
    expect_status 1 "$(cat "$TEST_TMP/qemu.serial" "$TEST_TMP/qemu.err")"
    expect_contains "$TEST_TMP/qemu.out" "console: got 'ping over qemu'"
    expect_contains "$TEST_TMP/qemu.serial" "console: read 'ping over qemu'"
else
    echo "qemu-system-x86_64 not installed: QEMU comparison skipped"
fi
echo "PASS"
