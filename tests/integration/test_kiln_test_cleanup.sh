#!/usr/bin/env bash
# kiln test: a timed-out VM that holds a TAP it created and a locked disk image is killed and
# leaves nothing behind: no process, no TAP interface, no disk lock, no files but its log.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest serial-echo.elf
require_guest hello.elf
[ "$(id -u)" -eq 0 ] || skip "network namespaces and TAPs need root"
command -v ip >/dev/null || skip "iproute2 is needed"
[ -e /dev/net/tun ] || skip "no /dev/net/tun"

NS=kiln-kt-$$
trap 'cleanup; ip netns del "$NS" 2>/dev/null' EXIT
ip netns add "$NS" || fail "cannot create network namespace $NS"
T=$TEST_TMP
truncate -s 1M "$T/disk.img"
cat >"$T/stuck.yaml" <<YAML
cases:
  - name: stuck
    timeout: 2s
    vm:
      kernel: {path: "$GUEST_DIR/serial-echo.elf"}
      disks: [{path: disk.img}]
      nets: [{tap: ktclean0}]
    steps:
      - expect: "serial-echo: ready"
      - expect: never
YAML
status=0
timeout 60 ip netns exec "$NS" "$KILN" test "$T/stuck.yaml" --logs "$T/logs" </dev/null \
    >"$T/out" 2>"$T/err" || status=$?
expect_status 1 "$(cat "$T/out" "$T/err")"
expect_contains "$T/out" "TIMEOUT  stuck/stuck"
pid=$(sed -n 's/.*the VM (pid \([0-9]*\)) was killed.*/\1/p' "$T/out")
[ -n "$pid" ] || fail "no VM pid in the report: $(cat "$T/out")"
! kill -0 "$pid" 2>/dev/null || fail "the timed-out VM (pid $pid) is still running"
! ip -n "$NS" link show ktclean0 >/dev/null 2>&1 || fail "the TAP ktclean0 outlived its VM"
# The image is no longer locked: another VM may open it.
run_kiln "$T/hello.out" "$T/hello.err" run --kernel "$GUEST_DIR/hello.elf" --disk "$T/disk.img"
expect_status 0 "$(cat "$T/hello.err")"
left=$(cd "$T" && find . -mindepth 1 | sort | tr '\n' ' ')
[ "$left" = "./disk.img ./err ./hello.err ./hello.out ./logs ./logs/stuck.stuck.log ./out ./stuck.yaml " ] ||
    fail "unexpected files: $left"
echo "PASS"
