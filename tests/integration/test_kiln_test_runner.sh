#!/usr/bin/env bash
# kiln test, the runner itself: a passing case, a failing expect (the report names the step,
# the pattern and the last console lines), a timeout (the VM killed, nothing left behind),
# expect-not, a guest's non-zero exit status, --jobs 2 running two VMs at once, --filter, TAP,
# and JUnit XML parsed back.
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest hello.elf
require_guest exit-status.elf
require_guest serial-echo.elf
export KILN_GUEST_DIR=$GUEST_DIR
T=$TEST_TMP
LOGS=$T/logs

# kt FILE ARGS...: kiln test with its output in $T/out and $T/err, status in $status.
kt() {
    run_kiln "$T/out" "$T/err" test "$@" --logs "$LOGS"
}

cat >"$T/pass.yaml" <<'YAML'
cases:
  - name: hello
    vm: {kernel: {path: "${KILN_GUEST_DIR}/hello.elf"}}
    timeout: 30s
    steps:
      - expect: ^Hello from the kiln guest kit$
      - expect-exit: 0
  - name: echo
    vm: {kernel: {path: "${KILN_GUEST_DIR}/serial-echo.elf"}}
    steps:
      - expect: "serial-echo: ready"
      - send: "ping 123\n"
      - expect: ^ping [0-9]+$
        timeout: 10s
      - send: q
      - expect: bye
      - expect-exit: 0
YAML
kt "$T/pass.yaml"
expect_status 0 "$(cat "$T/out" "$T/err")"
expect_contains "$T/out" "PASS     pass/hello"
expect_contains "$T/out" "PASS     pass/echo"
expect_contains "$T/out" "2 passed, 0 failed, 0 skipped"
expect_contains "$LOGS/pass.hello.log" "Hello from the kiln guest kit"
expect_contains "$LOGS/pass.echo.log" "ping 123"

# A failing expect: the step, its place, the pattern, and the console's last lines.
cat >"$T/fail.yaml" <<'YAML'
cases:
  - name: wrong-greeting
    vm: {kernel: {path: "${KILN_GUEST_DIR}/hello.elf"}}
    steps:
      - expect: Hello
      - expect: Goodbye from the kiln guest kit
YAML
kt "$T/fail.yaml"
expect_status 1
expect_contains "$T/out" "FAIL     fail/wrong-greeting"
expect_contains "$T/out" "step 2 ($T/fail.yaml:6:9) expect 'Goodbye from the kiln guest kit': the VM ended (exit status 0) before the console matched"
expect_contains "$T/out" "| Hello from the kiln guest kit"
expect_contains "$T/out" "console log: $LOGS/fail.wrong-greeting.log"
expect_contains "$T/out" "0 passed, 1 failed, 0 skipped"

# A timeout: the case fails as TIMEOUT, its VM (which would wait for input forever) is killed,
# and nothing but the log is left.
cat >"$T/timeout.yaml" <<'YAML'
cases:
  - name: stuck
    vm: {kernel: {path: "${KILN_GUEST_DIR}/serial-echo.elf"}}
    timeout: 2s
    steps:
      - expect: "serial-echo: ready"
      - expect: a line that never comes
YAML
rm -rf "$LOGS"
start=$(date +%s)
kt "$T/timeout.yaml"
elapsed=$(($(date +%s) - start))
expect_status 1
expect_contains "$T/out" "TIMEOUT  timeout/stuck"
expect_contains "$T/out" "step 2 ($T/timeout.yaml:7:9) expect 'a line that never comes': timed out"
expect_contains "$T/out" "0 passed, 1 failed (1 timed out), 0 skipped"
[ "$elapsed" -lt 10 ] || fail "the timed-out case took ${elapsed}s (expected about 2s)"
pid=$(sed -n 's/.*the VM (pid \([0-9]*\)) was killed.*/\1/p' "$T/out")
[ -n "$pid" ] || fail "no VM pid in the report: $(cat "$T/out")"
! kill -0 "$pid" 2>/dev/null || fail "the timed-out VM (pid $pid) is still running"
[ "$(ls "$LOGS")" = "timeout.stuck.log" ] || fail "unexpected files in the logs folder: $(ls "$LOGS")"

# expect-not: a forbidden line fails the case wherever the step stands.
cat >"$T/forbidden.yaml" <<'YAML'
cases:
  - name: no-hello
    vm: {kernel: {path: "${KILN_GUEST_DIR}/hello.elf"}}
    steps:
      - expect-exit: 0
      - expect-not: "Hello.*kit"
YAML
kt "$T/forbidden.yaml"
expect_status 1
expect_contains "$T/out" "FAIL     forbidden/no-hello"
expect_contains "$T/out" "step 2 ($T/forbidden.yaml:6:9) expect-not 'Hello.*kit': the console printed a forbidden line"

# A guest's non-zero exit status: expect-exit names what it got; the right status passes.
cat >"$T/status.yaml" <<'YAML'
cases:
  - name: wants-0
    vm: {kernel: {path: "${KILN_GUEST_DIR}/exit-status.elf", cmdline: status=5}}
    steps:
      - expect-exit: 0
  - name: wants-5
    vm: {kernel: {path: "${KILN_GUEST_DIR}/exit-status.elf", cmdline: status=5}}
    steps:
      - expect-exit: 5
YAML
kt "$T/status.yaml" --junit "$T/status.xml"
expect_status 1
expect_contains "$T/out" "step 1 ($T/status.yaml:5:9) expect-exit 0: the VM ended with exit status 5"
expect_contains "$T/out" "PASS     status/wants-5"
expect_contains "$T/out" "1 passed, 1 failed, 0 skipped"

# JUnit: parse it back.
python3 - "$T/status.xml" <<'PY' || fail "JUnit check failed: $(cat "$T/status.xml")"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites" and root.get("tests") == "2" and root.get("failures") == "1", root.attrib
suite = root.find("testsuite")
assert suite.get("name") == "status" and suite.get("tests") == "2", suite.attrib
cases = {c.get("name"): c for c in suite.findall("testcase")}
assert set(cases) == {"wants-0", "wants-5"}, cases
failure = cases["wants-0"].find("failure")
assert failure is not None and "exit status 5" in failure.get("message"), failure
assert cases["wants-5"].find("failure") is None
assert "exiting with status 5" in cases["wants-5"].find("system-out").text
PY

# --jobs 2: two cases that each hold their VM for 2 s finish in about 2 s, not 4.
cat >"$T/jobs.yaml" <<'YAML'
cases:
  - name: first
    vm: &echo {kernel: {path: "${KILN_GUEST_DIR}/serial-echo.elf"}}
    steps: &hold
      - expect: ready
      - sleep: 2s
      - send: q
      - expect-exit: 0
  - name: second
    vm: *echo
    steps: *hold
YAML
start=$(date +%s%N)
kt "$T/jobs.yaml" --jobs 2
ms=$((($(date +%s%N) - start) / 1000000))
expect_status 0 "$(cat "$T/out")"
expect_contains "$T/out" "2 passed, 0 failed, 0 skipped"
[ "$ms" -lt 3500 ] || fail "--jobs 2 took ${ms} ms for two 2 s cases (expected them at once)"

# --filter and skip:, with TAP.
cat >"$T/tap.yaml" <<'YAML'
cases:
  - name: hello
    vm: {kernel: {path: "${KILN_GUEST_DIR}/hello.elf"}}
    steps: [{expect: Hello}]
  - name: later
    skip: not written yet
    vm: {kernel: {path: "${KILN_GUEST_DIR}/hello.elf"}}
    steps: [{expect: Hello}]
  - name: other
    vm: {kernel: {path: "${KILN_GUEST_DIR}/hello.elf"}}
    steps: [{expect: Hello}]
YAML
kt "$T/tap.yaml" --tap --filter 'h*' --filter tap/later
expect_status 0 "$(cat "$T/out")"
printf 'TAP version 13\n1..2\n' >"$T/tap.head"
head -n 2 "$T/out" | cmp -s - "$T/tap.head" || fail "TAP header: $(cat "$T/out")"
grep -qE '^ok [12] - tap/hello # time=' "$T/out" || fail "TAP ok line: $(cat "$T/out")"
grep -qE '^ok [12] - tap/later # SKIP not written yet$' "$T/out" || fail "TAP skip: $(cat "$T/out")"
expect_not_contains "$T/out" "tap/other"
expect_contains "$T/out" "# 1 passed, 0 failed, 1 skipped"

# The runner stopped: SIGTERM fails the running cases, kills their VMs, skips the rest, exits
# 143; SIGKILL takes its VMs with it (they die with their parent).
cat >"$T/hold.yaml" <<'YAML'
cases:
  - {name: a, vm: &echo {kernel: {path: "${KILN_GUEST_DIR}/serial-echo.elf"}}, steps: [{expect: never}]}
  - {name: b, vm: *echo, steps: [{expect: never}]}
  - {name: c, vm: *echo, steps: [{expect: never}]}
YAML
# start_runner: kiln test hold.yaml --jobs 2 in the background until both VMs are up; sets
# $runner and $vms.
start_runner() {
    "$KILN" test "$T/hold.yaml" --jobs 2 --logs "$LOGS" </dev/null >"$T/out" 2>"$T/err" &
    runner=$!
    track_pid "$runner"
    for _ in $(seq 1 300); do
        [ "$(grep -l "serial-echo: ready" "$LOGS"/hold.[ab].log 2>/dev/null | wc -l)" -eq 2 ] && break
        sleep 0.1
    done
    [ "$(grep -l "serial-echo: ready" "$LOGS"/hold.[ab].log 2>/dev/null | wc -l)" -eq 2 ] ||
        fail "the two VMs did not start within 30 s: $(cat "$T/out" "$T/err")"
    vms=$(pgrep -P "$runner" | tr '\n' ' ')
    [ "$(echo $vms | wc -w)" -eq 2 ] || fail "expected 2 VMs under the runner, got '$vms'"
}
vms_gone() {
    local pid alive
    for _ in $(seq 1 50); do
        alive=
        for pid in $vms; do
            kill -0 "$pid" 2>/dev/null && alive=$pid
        done
        [ -n "$alive" ] || return 0
        sleep 0.1
    done
    fail "VMs still running after the runner stopped: $vms"
}
rm -rf "$LOGS"
start_runner
kill -TERM "$runner"
status=0
wait "$runner" || status=$?
expect_status 143 "$(cat "$T/out" "$T/err")"
vms_gone
expect_contains "$T/out" "SKIP     hold/c (not run: stopped by SIGTERM)"
expect_contains "$T/out" "0 passed, 2 failed, 1 skipped"
rm -rf "$LOGS"
start_runner
kill -KILL "$runner"
wait "$runner" 2>/dev/null
sleep 0.1
vms_gone

# The quick form: kiln run ... --expect REGEX --timeout DURATION.
run_kiln "$T/out" "$T/err" run --kernel "$GUEST_DIR/serial-echo.elf" --expect 'echo: re+ady' --timeout 30s
expect_status 0 "$(cat "$T/err")"
expect_contains "$T/out" "serial-echo: ready"
# Its stdin reaches the guest, as with kiln run.
status=0
printf 'abc\nq' | timeout 60 "$KILN" run --kernel "$GUEST_DIR/serial-echo.elf" --expect '^serial-echo: bye$' \
    >"$T/out" 2>"$T/err" || status=$?
expect_status 0 "$(cat "$T/err")"
expect_contains "$T/out" "abc"
run_kiln "$T/out" "$T/err" run --kernel "$GUEST_DIR/hello.elf" --expect 'Goodbye' --timeout 30s
expect_status 1
expect_contains "$T/err" "kiln: --expect: step 1 expect 'Goodbye': the VM ended (exit status 0) before the console matched"
expect_contains "$T/err" "Hello from the kiln guest kit"
run_kiln "$T/out" "$T/err" run --kernel "$GUEST_DIR/serial-echo.elf" --expect=never --timeout=1s
expect_status 1
expect_contains "$T/err" "timed out"
run_kiln "$T/out" "$T/err" run --kernel "$GUEST_DIR/hello.elf" --expect 'a(' 
expect_status 125
expect_contains "$T/err" "kiln: error: --expect: 'a(' is not a valid regular expression"
echo "PASS"
