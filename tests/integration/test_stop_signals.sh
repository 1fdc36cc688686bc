#!/usr/bin/env bash
# Stopping a running VM from the host: SIGTERM and Ctrl-A x on a terminal (raw mode during the
# run, settings restored after), and SIGINT with a pipe as stdin.
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest serial-echo.elf
command -v python3 >/dev/null || fail "python3 is needed (scripts/dev.sh setup installs it)"

python3 "$SOURCE_DIR/tests/integration/pty_session.py" "$KILN" "$GUEST_DIR/serial-echo.elf" sigterm
python3 "$SOURCE_DIR/tests/integration/pty_session.py" "$KILN" "$GUEST_DIR/serial-echo.elf" escape

# SIGINT from a script, with stdin a pipe that stays open.
mkfifo "$TEST_TMP/in"
sleep 300 >"$TEST_TMP/in" &
holder=$!
track_pid "$holder"
"$KILN" run --kernel "$GUEST_DIR/serial-echo.elf" <"$TEST_TMP/in" >"$TEST_TMP/out" 2>"$TEST_TMP/err" &
pid=$!
track_pid "$pid"
for _ in $(seq 1 600); do
    grep -q "serial-echo: ready" "$TEST_TMP/out" && break
    sleep 0.1
done
kill -INT "$pid"
status=0
wait "$pid" || status=$?
kill "$holder" 2>/dev/null || true
expect_status 130
expect_contains "$TEST_TMP/err" "kiln: stopped by SIGINT"
echo "PASS"
