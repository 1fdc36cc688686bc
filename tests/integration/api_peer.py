#!/usr/bin/env python3
"""A stand-in for a VM's control API, for test_ctl_client.sh: serves the reply shapes of
docs/api.md on a Unix socket (mode "vm"), or answers every request with bytes that are not
HTTP (mode "garbage"). Usage: api_peer.py SOCKET MODE. Runs until killed."""
import json
import os
import socket
import sys

VM = {"name": "web1", "pid": 1234, "state": "running", "uptime_ms": 12345, "vcpus": 2,
      "memory_mib": 512, "kiln_version": "0.1.0", "config": {"cpus": 2}}
COUNTERS = {
    "vcpus": [{"index": 0, "exits": {"io": 10, "mmio": 3, "hlt": 1}}],
    "devices": [{"name": "virtio-blk 0", "slot": 0, "counters": {"read_bytes": 4096},
                 "queues": [{"index": 0, "notifications": 5, "chains": 5, "used": 5,
                             "interrupts": 4}]}],
}
ROUTES = {
    ("GET", "/vm"): (200, VM),
    ("PUT", "/vm/pause"): (204, None),
    ("PUT", "/vm/resume"): (409, {"error": "the VM is not paused"}),
    ("PUT", "/vm/shutdown"): (202, {"message": "shutting down: ACPI power button pressed"}),
    ("PUT", "/vm/reboot"): (202, {}),
    ("GET", "/vm/counters"): (200, COUNTERS),
}


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    method, path, _ = head.split("\r\n")[0].split(" ")
    return method, path


def reply(conn, status, body):
    text = b"" if body is None else json.dumps(body).encode()
    head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(text)}\r\nConnection: close\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    conn.sendall(head.encode() + b"\r\n" + text)


def main():
    path, mode = sys.argv[1], sys.argv[2]
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path + ".tmp")
    server.listen(8)
    os.rename(path + ".tmp", path)  # appears once it can be connected to
    while True:
        conn, _ = server.accept()
        with conn:
            request = read_request(conn)
            if request is None:
                continue
            if mode == "garbage":
                conn.sendall(b"hello, this is not HTTP\n")
                continue
            status, body = ROUTES.get(request, (404, {"error": "%s %s: no such endpoint" % request}))
            reply(conn, status, body)


main()
