#!/usr/bin/env python3
"""A man in the middle for kiln's migration tests: listens on one Unix socket, connects to
another, and forwards both ways until the sender has sent AFTER bytes; then, by MODE, it
closes both connections ("close") or sends 4 KiB of garbage on to the receiver ("corrupt")
and forwards no more. Usage: mig_proxy.py LISTEN_PATH TARGET_PATH MODE AFTER"""
import os
import selectors
import socket
import sys


def main():
    listen_path, target_path, mode, after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(listen_path)
    server.listen(1)
    sender, _ = server.accept()
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    receiver.connect(target_path)
    sel = selectors.DefaultSelector()
    sel.register(sender, selectors.EVENT_READ, receiver)
    sel.register(receiver, selectors.EVENT_READ, sender)
    forwarded = 0
    while True:
        for key, _ in sel.select():
            data = key.fileobj.recv(65536)
            if not data:
                return
            if key.fileobj is sender:
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
