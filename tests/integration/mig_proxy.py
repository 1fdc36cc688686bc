#!/usr/bin/env python3
"""A man in the middle for kiln's migration tests: listens on one Unix socket, connects to
another, and forwards both ways. By MODE:
  close AFTER      closes both connections once the sender has sent AFTER bytes
  corrupt AFTER    sends 4 KiB of garbage on to the receiver there instead, then closes
  drop-go          reads the sender's frames (a plain link: a 48-byte hello, then frames of a
                   4-byte length and a body) and, at the record GO, closes both connections
                   without passing it on: the receiver never takes over
  drop-running     the same in the other direction at the receiver's RUNNING: the receiver
                   has taken over, but the sender never hears so
Usage: mig_proxy.py LISTEN_PATH TARGET_PATH MODE [AFTER]"""
import os
import selectors
import socket
import struct
import sys

HELLO = 48
GO, RUNNING = 9, 10


class FrameWatch:
    """Follows one direction's frames; says when a frame starts with record type `want`."""

    def __init__(self, want):
        self.want, self.buf, self.hello_left = want, b"", HELLO

    def feed(self, data):
        """Returns (bytes to pass on, whether the record was seen)."""
        out = b""
        if self.hello_left:
            n = min(self.hello_left, len(data))
            out, data, self.hello_left = data[:n], data[n:], self.hello_left - n
        self.buf += data
        while len(self.buf) >= 4:
            (length,) = struct.unpack_from("<I", self.buf)
            if len(self.buf) < 4 + length:
                break
            frame, self.buf = self.buf[: 4 + length], self.buf[4 + length:]
            if length >= 4 and struct.unpack_from("<I", frame, 4)[0] == self.want:
                return out, True
            out += frame
        return out, False


def main():
    listen_path, target_path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    after = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(listen_path)
    server.listen(1)
    sender, _ = server.accept()
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    receiver.connect(target_path)
    sel = selectors.DefaultSelector()
    sel.register(sender, selectors.EVENT_READ, receiver)
    sel.register(receiver, selectors.EVENT_READ, sender)
    watch = {sender: FrameWatch(GO) if mode == "drop-go" else None,
             receiver: FrameWatch(RUNNING) if mode == "drop-running" else None}
    forwarded = 0
    while True:
        for key, _ in sel.select():
            data = key.fileobj.recv(65536)
            if not data:
                return
            w = watch[key.fileobj]
            if w:
                data, seen = w.feed(data)
                key.data.sendall(data)
                if seen:
                    print(f"proxy: {mode}: dropped it and closed both connections", flush=True)
                    sender.close()
                    receiver.close()
                    return
                continue
            if key.fileobj is sender and mode in ("close", "corrupt"):
                if forwarded + len(data) >= after:
                    data = data[: after - forwarded]
                    receiver.sendall(data)
                    if mode == "corrupt":
                        receiver.sendall(os.urandom(4096))
                    print(f"proxy: {mode} after {after} bytes", flush=True)
                    sender.close()
                    receiver.close()
                    return
                forwarded += len(data)
            key.data.sendall(data)


if __name__ == "__main__":
    main()
