#!/usr/bin/env bash
# A console sink that stops taking output (stdout a pipe nobody reads, as `kiln run | less`
# left unscrolled) never freezes kiln: while the guest floods ttyS0 or hvc0, virtio-blk still
# completes, and SIGTERM, SIGINT and Ctrl-A x still end kiln within the grace period plus the
# console's bounded drain (also with many blk requests in flight, and with kiln's stderr in
# the same stalled pipe), naming what was dropped.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"

require_kvm
require_guest console-flood.elf
command -v python3 >/dev/null || fail "python3 is needed (scripts/dev.sh setup installs it)"

GRACE=1
DRAIN=2 # CONSOLE_DRAIN_MS in include/kiln/host/console.h
# How long a stop may take: the grace period, the drain, and slack for a loaded machine.
BOUND=$((GRACE + DRAIN + 3))
IMG=$TEST_TMP/disk.img
truncate -s 1M "$IMG"
FLOOD=(--kernel "$GUEST_DIR/console-flood.elf" --shutdown-grace "$GRACE")
HVC=(--console virtio --device-discovery cmdline --disk "$IMG")

# stalled NAME HARNESS-OPTIONS... -- KILN-ARGS...: runs kiln through stalled_stdout.py; sets
# status (kiln's exit status) and seconds (from the stop, or from the stall, to its exit).
stalled() {
    local name=$1
    shift
    local options=()
    while [ "$1" != -- ]; do
        options+=("$1")
        shift
    done
    shift
    python3 "$SOURCE_DIR/tests/integration/stalled_stdout.py" "${options[@]}" --limit 30 \
        "$TEST_TMP/$name.err" "$KILN" run "$@" >"$TEST_TMP/$name.log" ||
        fail "$name: $(cat "$TEST_TMP/$name.log" "$TEST_TMP/$name.err")"
    status=$(sed -n 's/^status //p' "$TEST_TMP/$name.log")
    seconds=$(sed -n 's/^seconds //p' "$TEST_TMP/$name.log")
    [ "$status" != hung ] ||
        fail "$name: kiln did not exit within 30 s with its stdout stalled: $(cat "$TEST_TMP/$name.err")"
    echo "$name: status $status after ${seconds} s"
}

# expect_quick NAME: the stop took at most BOUND seconds.
expect_quick() {
    awk -v s="$seconds" -v b="$BOUND" 'BEGIN { exit !(s <= b) }' ||
        fail "$1: kiln took $seconds s to stop (expected at most $BOUND s: grace $GRACE s + drain $DRAIN s + slack)"
}

# ttyS0 floods a small pipe; the guest spins on THRE, and SIGTERM still works.
stalled serial-term --pipe-size 4096 --stop term -- "${FLOOD[@]}"
expect_status 143 "$(cat "$TEST_TMP/serial-term.err")"
expect_quick serial-term
expect_contains "$TEST_TMP/serial-term.err" "kiln: stopped by SIGTERM (the guest did not power off within $GRACE s)"
expect_contains "$TEST_TMP/serial-term.err" "--console: dropped the last"
# kiln writes through its own description of the pipe: the one it shares stays blocking.
expect_contains "$TEST_TMP/serial-term.log" "shared O_NONBLOCK no"

stalled serial-int --pipe-size 4096 --stop int -- "${FLOOD[@]}"
expect_status 130 "$(cat "$TEST_TMP/serial-int.err")"
expect_quick serial-int
expect_contains "$TEST_TMP/serial-int.err" "kiln: stopped by SIGINT"

# Ctrl-A x on a terminal stdin while stdout is stalled: no grace period, only the drain.
stalled serial-keys --pipe-size 4096 --stop keys -- "${FLOOD[@]}"
expect_status 130 "$(cat "$TEST_TMP/serial-keys.err")"
expect_quick serial-keys
expect_contains "$TEST_TMP/serial-keys.err" "kiln: stopped from the console (Ctrl-A x)"

# hvc0 fills the pipe and kiln's buffer (the guest's transmit chains wait); virtio-blk still
# answers: the guest writes and reads back a sector, then exits 42.
stalled hvc-blk -- "${FLOOD[@]}" "${HVC[@]}" --cmdline "flood.via=hvc flood.then=blk"
expect_status 42 "$(cat "$TEST_TMP/hvc-blk.err")"
expect_contains "$TEST_TMP/hvc-blk.err" "--console: dropped the last"

# kiln run 2>&1 | less: its own messages meet the same stalled pipe, and must not wait on it.
stalled both-term --stderr-too --stop term -- "${FLOOD[@]}" "${HVC[@]}" --cmdline "flood.via=hvc"
expect_status 143
expect_quick both-term

# In a jail (no /proc to reopen stdout through): the same, and the shared stdout stays blocking.
if [ "$(id -u)" -eq 0 ] && NOBODY=$(id -u nobody 2>/dev/null); then
    mkdir -m 755 "$TEST_TMP/jail"
    stalled jail-term --stop term -- "${FLOOD[@]}" --console virtio --device-discovery cmdline \
        --cmdline "flood.via=hvc" \
        --jail "$TEST_TMP/jail" --uid "$NOBODY" --gid "$NOBODY"
    expect_status 143 "$(cat "$TEST_TMP/jail-term.err")"
    expect_quick jail-term
    expect_contains "$TEST_TMP/jail-term.log" "shared O_NONBLOCK no"
else
    echo "jail-term: skipped (needs root and a 'nobody' user)"
fi

# Defect 6: a blk backlog (every descriptor busy, forever) and a stalled stdout; SIGTERM.
stalled hvc-backlog --stop term -- "${FLOOD[@]}" "${HVC[@]}" --cmdline "flood.via=hvc flood.then=blk-backlog"
expect_status 143 "$(cat "$TEST_TMP/hvc-backlog.err")"
expect_quick hvc-backlog
expect_contains "$TEST_TMP/hvc-backlog.err" "kiln: stopped by SIGTERM"
echo "PASS"
