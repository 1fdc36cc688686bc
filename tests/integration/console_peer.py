#!/usr/bin/env python3
"""console_peer.py socket PATH|pty STDERR_FILE SEND EXPECT: attaches to a kiln console sink the
way a user would (connects to the Unix socket, or opens the pty whose path kiln printed), sends
SEND, and waits until EXPECT arrives; prints what it read. Exit 0 on a match, 1 otherwise."""
import os
import re
import socket
import sys
import time
import tty

TIMEOUT = 60


def wait_for(predicate, what):
    end = time.monotonic() + TIMEOUT
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    sys.exit(f"console_peer: no {what} after {TIMEOUT} s")


def connect_socket(path):
    def attempt():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            return None
    s = wait_for(attempt, f"listener on {path}")
    return s.fileno(), s


def open_pty(stderr_file):
    def path():
        try:
            m = re.search(r"console on (/dev/pts/\d+)", open(stderr_file).read())
        except FileNotFoundError:
            return None
        return m.group(1) if m else None
    fd = os.open(wait_for(path, "pty path on kiln's stderr"), os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    return fd, None


def main():
    kind, where, send, expect = sys.argv[1:5]
    fd, keep = connect_socket(where) if kind == "socket" else open_pty(where)
    time.sleep(0.2)  # let kiln notice the peer before the input arrives
    os.write(fd, send.encode().decode("unicode_escape").encode())
    seen = b""
    end = time.monotonic() + TIMEOUT
    os.set_blocking(fd, False)
    while expect.encode() not in seen and time.monotonic() < end:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            time.sleep(0.02)
            continue
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    sys.stdout.write(seen.decode(errors="replace"))
    return 0 if expect.encode() in seen else 1


if __name__ == "__main__":
    sys.exit(main())
