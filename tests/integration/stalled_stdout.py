#!/usr/bin/env python3
"""Runs kiln with its stdout a pipe that nobody reads, as `kiln run ... | less` left unscrolled.

stalled_stdout.py [--pipe-size BYTES] [--stderr-too] [--stop term|int|keys]
                  [--stop-after SECONDS] [--limit SECONDS] ERRFILE KILN ARGS...

Waits until the pipe is full (kiln's writes are stalled); with --stop, --stop-after seconds
later sends SIGTERM, SIGINT or Ctrl-A x (kiln's stdin is then a terminal, a pty). Then waits
up to --limit seconds (from the stop, else from the stall) for kiln to exit, and prints
"status N" and "seconds S" (how long that took), or "status hung" after killing it. It also prints whether the stdout kiln shares with it was
made non-blocking ("shared O_NONBLOCK yes|no", seen while stalled). kiln's
stderr goes to ERRFILE, or with --stderr-too into the same pipe (kiln run 2>&1 | less). Exits 1 if the pipe never filled.
"""
import argparse
import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time

F_SETPIPE_SZ = 1031
F_GETPIPE_SZ = 1032


def pending(fd):
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipe-size", type=int, help="a smaller pipe fills sooner")
    parser.add_argument("--stderr-too", action="store_true")
    parser.add_argument("--stop", choices=["term", "int", "keys"])
    parser.add_argument("--stop-after", type=float, default=1.0)
    parser.add_argument("--limit", type=float, default=30.0)
    parser.add_argument("errfile")
    parser.add_argument("kiln", nargs=argparse.REMAINDER)
    args = parser.parse_args()

    read_end, write_end = os.pipe()
    if args.pipe_size:
        fcntl.fcntl(read_end, F_SETPIPE_SZ, args.pipe_size)
    capacity = fcntl.fcntl(read_end, F_GETPIPE_SZ)
    stdin, keyboard = subprocess.DEVNULL, None
    if args.stop == "keys":
        keyboard, stdin = pty.openpty()
    with open(args.errfile, "w") as err:
        proc = subprocess.Popen(args.kiln, stdin=stdin, stdout=write_end,
                                stderr=write_end if args.stderr_too else err)

    # Full: a page of slack (a write of up to a page is all or nothing), half a small pipe.
    deadline = time.monotonic() + 60
    full = capacity - 4096 if capacity > 8192 else capacity // 2
    while pending(read_end) < full:
        if proc.poll() is not None or time.monotonic() > deadline:
            print(f"the pipe never filled ({pending(read_end)} of {capacity} bytes); "
                  f"kiln status {proc.poll()}")
            proc.kill()
            return 1
        time.sleep(0.05)
    print(f"stalled: {pending(read_end)} bytes waiting in the pipe")
    shared = fcntl.fcntl(write_end, fcntl.F_GETFL) & os.O_NONBLOCK
    print(f"shared O_NONBLOCK {'yes' if shared else 'no'}")
    os.close(write_end)

    if args.stop:
        time.sleep(args.stop_after)
        if args.stop == "keys":
            os.write(keyboard, b"\x01x")
        elif proc.poll() is None:
            proc.send_signal(signal.SIGTERM if args.stop == "term" else signal.SIGINT)
    start = time.monotonic()
    try:
        status = proc.wait(timeout=args.limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        print("status hung")
        print(f"seconds {time.monotonic() - start:.2f}")
        return 0
    print(f"status {status}")
    print(f"seconds {time.monotonic() - start:.2f}")
    os.close(read_end)
    return 0


if __name__ == "__main__":
    sys.exit(main())
