#!/usr/bin/env python3
# Drives kiln on a pseudo-terminal the way a person at a terminal would: checks raw mode while
# the guest runs, stops kiln (SIGTERM, or Ctrl-A x), and checks the terminal is restored.
# Usage: pty_session.py KILN GUEST sigterm|escape [MORE KILN RUN FLAGS...]
import fcntl
import os
import select
import signal
import subprocess
import sys
import termios
import time


def read_until(fd, needle, timeout):
    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise SystemExit(f"FAIL: timed out waiting for {needle!r}; got {data[-500:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


def drain(fd):
    data = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            return data
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return data
        if not chunk:
            return data
        data += chunk


def main():
    kiln, guest, how, extra = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    master, slave = os.openpty()
    before = termios.tcgetattr(slave)

    # With extra flags (--jail ...) the pty is kiln's controlling terminal, kiln in its
    # foreground process group, as in a shell: the jail must hand the terminal to its child.
    def take_terminal():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([kiln, "run", "--kernel", guest] + extra, stdin=slave,
                            stdout=slave, stderr=slave, start_new_session=True,
                            preexec_fn=take_terminal if extra else None)
    read_until(master, b"serial-echo: ready", 120)
    during = termios.tcgetattr(slave)
    if during[3] & termios.ICANON or during[3] & termios.ECHO:
        raise SystemExit("FAIL: terminal not in raw mode while the guest runs")

    os.write(master, b"hi")
    read_until(master, b"hi", 30)
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)
        expected_status, expected_text = 143, b"stopped by SIGTERM"
    else:
        os.write(master, b"\x01x")
        expected_status, expected_text = 130, b"stopped from the console (Ctrl-A x)"
    try:
        status = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise SystemExit("FAIL: kiln did not stop within 30 s")
    rest = drain(master)
    after = termios.tcgetattr(slave)
    if status != expected_status:
        raise SystemExit(f"FAIL: exit status {status}, expected {expected_status}; {rest!r}")
    if expected_text not in rest:
        raise SystemExit(f"FAIL: expected {expected_text!r} in {rest!r}")
    if after != before:
        raise SystemExit("FAIL: terminal settings not restored after kiln exited")
    print(f"PASS ({how}: status {status}, terminal restored)")


main()
