#!/usr/bin/env bash
# kiln run --jail DIR --uid U --gid G (docs/security.md, "Jail"): seen from outside while a
# jailed guest waits for input, the VM's process is U:G with no capabilities and no_new_privs,
# PID 1 of its own PID namespace, its root holds only its files and it holds none of the fds
# kiln was started with; the guest's output and exit status come through as without a jail,
# and so do SIGINT, a terminal and `kiln test`. Then one clear error per bad input.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
[ "$(id -u)" -eq 0 ] || skip "the jail needs root"
require_kvm
for g in hello exit-status serial-echo net blk; do
    require_guest "$g.elf"
done
command -v setpriv >/dev/null || fail "setpriv (util-linux) is needed"
command -v python3 >/dev/null || fail "python3 is needed (scripts/dev.sh setup installs it)"
NOBODY=65534
JAIL=$TEST_TMP/jail
mkdir -p "$JAIL"
truncate -s 1M "$TEST_TMP/disk.img"
chown "$NOBODY:$NOBODY" "$TEST_TMP/disk.img"
chmod 755 "$TEST_TMP"
JAILED=(--jail "$JAIL" --uid "$NOBODY" --gid "$NOBODY")

# 1. A guest that waits for console input, with fd 7 open on a file the VM must not keep.
mkfifo "$TEST_TMP/in"
sleep 300 >"$TEST_TMP/in" &
holder=$!
track_pid "$holder"
echo secret >"$TEST_TMP/secret"
"$KILN" run --kernel "$GUEST_DIR/serial-echo.elf" --disk "$TEST_TMP/disk.img" "${JAILED[@]}" --shutdown-grace 0 \
    <"$TEST_TMP/in" >"$TEST_TMP/out" 2>"$TEST_TMP/err" 7<"$TEST_TMP/secret" &
parent=$!
track_pid "$parent"
wait_for_text "$TEST_TMP/out" "serial-echo: ready" "$parent"
child=$(tr -d ' ' <"/proc/$parent/task/$parent/children")
[ -n "$child" ] || fail "the jailed kiln ($parent) has no child"
# A field of the child's /proc status, its values separated by one space.
status_of() { sed -n "s/^$1:[[:space:]]*//p" "/proc/$child/status" | tr -s '[:space:]' ' ' | sed 's/ $//'; }
[ "$(status_of Uid)" = "$NOBODY $NOBODY $NOBODY $NOBODY" ] || fail "Uid: $(status_of Uid)"
[ "$(status_of Gid)" = "$NOBODY $NOBODY $NOBODY $NOBODY" ] || fail "Gid: $(status_of Gid)"
[ -z "$(status_of Groups)" ] || fail "supplementary groups left: $(status_of Groups)"
for cap in CapEff CapPrm CapInh CapBnd CapAmb; do
    [ "$(status_of $cap)" = 0000000000000000 ] || fail "$cap: $(status_of $cap)"
done
[ "$(status_of NoNewPrivs)" = 1 ] || fail "NoNewPrivs: $(status_of NoNewPrivs)"
[ "$(status_of NSpid)" = "$child 1" ] || fail "NSpid: $(status_of NSpid) (expected PID 1 inside)"
[ "$(readlink "/proc/$child/ns/pid")" != "$(readlink /proc/self/ns/pid)" ] ||
    fail "the jailed VM shares the host's PID namespace"
[ "$(readlink "/proc/$child/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] ||
    fail "the jailed VM shares the host's mount namespace"
# The control API is served from inside the jail on a socket bound outside it.
timeout 20 "$KILN" ctl "$parent" status >"$TEST_TMP/ctl.out" 2>&1 || fail "kiln ctl on the jailed VM: $(cat "$TEST_TMP/ctl.out")"
expect_contains "$TEST_TMP/ctl.out" ": running"
root_files=$(cd "/proc/$child/root" && find . | sort | tr '\n' ' ')
[ "$root_files" = ". ./dev ./dev/kvm ./disk0 ./kernel " ] || fail "the jail's root holds: $root_files"
# Every fd is stdin/stdout/stderr, a file inside the jail, or kiln's own anonymous ones.
for fd in "/proc/$child/fd"/*; do
    n=${fd##*/} target=$(readlink "$fd")
    case "$n:$target" in
    [012]:"$TEST_TMP"/*) ;;
    *:/dev/kvm | *:/disk0 | *:anon_inode:* | *:pipe:*) ;;
    *:socket:*) ;; # the control API's socket, bound outside the jail (checked below)
    *:/memfd:kiln-guest-ram*) ;; # guest RAM
    *:/) ;;        # libuv's spare fd for accepting at EMFILE: /dev/null, else the jail's root
    *) fail "the jailed VM holds fd $n -> $target" ;;
    esac
done
grep -q "^Max open files *4096 *4096" "/proc/$child/limits" || fail "RLIMIT_NOFILE: $(grep "open files" "/proc/$child/limits")"
grep -q "^Max address space *[0-9]" "/proc/$child/limits" || fail "no RLIMIT_AS: $(grep "address" "/proc/$child/limits")"
kill -INT "$parent"
status=0
wait "$parent" || status=$?
expect_status 130 "$(cat "$TEST_TMP/err")"
expect_contains "$TEST_TMP/err" "kiln: stopped by SIGINT"
[ -z "$(ls -A "$JAIL")" ] || fail "the jail's folder is left behind: $(ls -A "$JAIL")"

# 2. On a terminal (kiln's controlling one): raw mode, Ctrl-A x and SIGTERM through the jail,
# which must hand the terminal to its child (else the child stops on SIGTTOU and this hangs).
for how in escape sigterm; do
    timeout 120 python3 "$SOURCE_DIR/tests/integration/pty_session.py" "$KILN" \
        "$GUEST_DIR/serial-echo.elf" "$how" "${JAILED[@]}" --shutdown-grace 1 ||
        fail "the jailed kiln on a terminal ($how)"
done

# 3. Output and exit status as without the jail.
for kernel in "hello.elf" "exit-status.elf --cmdline status=42"; do
    # shellcheck disable=SC2086 # the kernel and its command line, split on purpose
    set -- --kernel "$GUEST_DIR/"$kernel
    run_kiln "$TEST_TMP/plain.out" "$TEST_TMP/plain.err" run "$@"
    plain=$status
    run_kiln "$TEST_TMP/jailed.out" "$TEST_TMP/jailed.err" run "$@" "${JAILED[@]}"
    [ "$status" = "$plain" ] || fail "exit status $status jailed, $plain without: $(cat "$TEST_TMP/jailed.err")"
    cmp -s "$TEST_TMP/plain.out" "$TEST_TMP/jailed.out" || fail "jailed output differs: $(cat "$TEST_TMP/jailed.out")"
done
[ "$plain" = 42 ] || fail "exit-status.elf ended with $plain"

# 4. kiln test: each case's VM is jailed (the jail is part of the VM's definition).
cat >"$TEST_TMP/jail-test.yaml" <<YAML
cases:
  - name: jailed-hello
    vm: {kernel: {path: "$GUEST_DIR/hello.elf"}, jail: "$JAIL", uid: $NOBODY, gid: $NOBODY}
    steps: [{expect: ^Hello from the kiln guest kit$}, {expect-exit: 0}]
  - name: jailed-status
    vm: {kernel: {path: "$GUEST_DIR/exit-status.elf", cmdline: status=3}, jail: "$JAIL", uid: $NOBODY, gid: $NOBODY}
    steps: [{expect-exit: 3}]
YAML
status=0
timeout 120 "$KILN" test "$TEST_TMP/jail-test.yaml" --jobs 2 </dev/null >"$TEST_TMP/test.out" 2>&1 || status=$?
expect_status 0 "$(cat "$TEST_TMP/test.out")"
expect_contains "$TEST_TMP/test.out" "2 passed, 0 failed"

# 5. A TAP made beforehand for the VM's user works in the jail (net.elf gets its ARP reply);
# one that belongs to another user is refused (opening it needs CAP_NET_ADMIN, which the
# jailed VM has given up). In a network namespace of this test's own.
if command -v ip >/dev/null && [ -e /dev/net/tun ]; then
    NS=kiln-jail-$$
    trap 'cleanup; ip netns del "$NS" 2>/dev/null' EXIT
    ip netns add "$NS" || fail "cannot create network namespace $NS"
    ip -n "$NS" tuntap add dev kt0 mode tap user "$NOBODY" group "$NOBODY" || fail "cannot create a TAP"
    ip -n "$NS" tuntap add dev kt1 mode tap user 1 || fail "cannot create a TAP"
    ip -n "$NS" addr add 169.254.78.1/24 dev kt0
    ip -n "$NS" link set kt0 up
    NET_ARGS=(--device-discovery cmdline --cmdline "net.ip=169.254.78.2 net.peer=169.254.78.1")
    status=0
    timeout 60 ip netns exec "$NS" "$KILN" run --kernel "$GUEST_DIR/net.elf" --net tap=kt0 \
        "${NET_ARGS[@]}" "${JAILED[@]}" </dev/null >"$TEST_TMP/net.out" 2>"$TEST_TMP/net.err" || status=$?
    expect_status 0 "$(cat "$TEST_TMP/net.out" "$TEST_TMP/net.err")"
    expect_contains "$TEST_TMP/net.out" "net: ARP reply from 169.254.78.1"
    status=0
    timeout 60 ip netns exec "$NS" "$KILN" run --kernel "$GUEST_DIR/net.elf" --net tap=kt1 \
        "${NET_ARGS[@]}" "${JAILED[@]}" </dev/null >"$TEST_TMP/net.out" 2>"$TEST_TMP/net.err" || status=$?
    expect_status 125
    expect_contains "$TEST_TMP/net.err" "kiln: error: --net: no permission to open or create TAP 'kt1'"
else
    echo "SKIP: the TAP part (needs iproute2 and /dev/net/tun)"
fi

# 6. A block device as a disk (a loop device, where this host lets us make one): its bind
# mount must not be nodev.
truncate -s 4M "$TEST_TMP/loop.img"
if LOOP=$(losetup -f --show "$TEST_TMP/loop.img" 2>/dev/null) && [ -b "$LOOP" ]; then
    owner=$(stat -c %u:%g "$LOOP")
    chown "$NOBODY:$NOBODY" "$LOOP"
    status=0
    timeout 60 "$KILN" run --kernel "$GUEST_DIR/blk.elf" --disk "$LOOP" --device-discovery cmdline \
        "${JAILED[@]}" </dev/null >"$TEST_TMP/blk.out" 2>"$TEST_TMP/blk.err" || status=$?
    chown "$owner" "$LOOP"
    losetup -d "$LOOP"
    expect_status 0 "$(cat "$TEST_TMP/blk.out" "$TEST_TMP/blk.err")"
    expect_contains "$TEST_TMP/blk.out" "blk: all checks passed"
else
    echo "SKIP: the block device part (no loop device)"
fi

# 7. Bad inputs: one line each, nothing run.
bad() {
    local want=$1
    shift
    run_kiln "$TEST_TMP/bad.out" "$TEST_TMP/bad.err" run --kernel "$GUEST_DIR/hello.elf" "$@"
    expect_status 125 "$(cat "$TEST_TMP/bad.err")"
    expect_contains "$TEST_TMP/bad.err" "$want"
    # Besides the one error line, only the note that this host has no cgroup v2 for the jail.
    [ "$(grep -cv "^kiln: warn: jail: .* cgroup v2" "$TEST_TMP/bad.err")" -eq 1 ] ||
        fail "more than one line: $(cat "$TEST_TMP/bad.err")"
    expect_not_contains "$TEST_TMP/bad.out" "Hello"
}
bad "kiln: error: --jail: '$TEST_TMP/none': No such file or directory (expected an existing folder)" \
    --jail "$TEST_TMP/none" --uid 1 --gid 1
bad "kiln: error: --jail: '$TEST_TMP/secret' is not a folder" --jail "$TEST_TMP/secret" --uid 1 --gid 1
bad "kiln: error: --uid: '0' cannot be used (expected a number from 1 to 4294967294)" \
    --jail "$JAIL" --uid 0 --gid 1
bad "kiln: error: --gid: 'nogroup' cannot be used" --jail "$JAIL" --uid 1 --gid nogroup
bad "kiln: error: --jail: the jail needs a uid and a gid" --jail "$JAIL" --uid 1
bad "kiln: error: --uid: given without --jail (expected --jail DIR too)" --uid 1
bad "kiln: error: --console: a socket cannot be used with --jail" "${JAILED[@]}" --console socket:/tmp/s
truncate -s 1M "$TEST_TMP/root-disk.img" # root's, mode 644: the VM's user cannot write it
bad "kiln: error: jail: user $NOBODY group $NOBODY cannot read and write disk 0 (/disk0 in the jail): Permission denied" \
    "${JAILED[@]}" --disk "$TEST_TMP/root-disk.img"
status=0
setpriv --reuid "$NOBODY" --regid "$NOBODY" --clear-groups "$KILN" run --kernel "$GUEST_DIR/hello.elf" \
    "${JAILED[@]}" </dev/null >"$TEST_TMP/bad.out" 2>"$TEST_TMP/bad.err" || status=$?
expect_status 125 "$(cat "$TEST_TMP/bad.err")"
expect_contains "$TEST_TMP/bad.err" "kiln: error: jail: --jail needs root (kiln runs as user $NOBODY"
[ -z "$(ls -A "$JAIL")" ] || fail "a failed jail left $(ls -A "$JAIL")"
echo "PASS"
