#!/usr/bin/env python3
# Writes the seed corpus of fuzz_snapshot_state (tests/fuzz/corpus/fuzz_snapshot_state/): valid
# state files in the layout docs/snapshots.md describes (no section, a VM-like set, a diff
# snapshot, sizes that need padding), so the fuzzer starts past the CRC check; and each again
# with its CRC field zeroed ("*-crc-filled"), which the fuzzer fills in after mutating.
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "fuzz_snapshot_state")


def state_file(sections, flags=0, memory=64 << 20, version=b"0.1.0"):
    body = b""
    for name, slot, data in sections:
        pad = (8 - len(data) % 8) % 8
        body += struct.pack("<48siI", name.encode(), slot, len(data)) + data + b"\0" * pad
    file_size = 128 + len(body) + 8
    cpu = struct.pack("<16s8I", b"GenuineIntel", 0x7ffafbbf, 0xbfebfbff, 0x029c6fbf, 0x40000000,
                      0xbc000400, 0x00000121, 0x2c100800, 0)
    header = struct.pack("<8sIIQQII32s", b"KILNSNAP", 1, 128, file_size, memory, flags,
                         len(sections), version) + cpu + b"\0" * 8
    assert len(header) == 128
    data = header + body + b"\0" * 4
    return data + struct.pack("<I", zlib.crc32(data))


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {
        "empty": state_file([]),
        "vm": state_file([
            ("vm", -1, bytes(range(64))),
            ("vcpu", 0, b"\x11" * 40),
            ("vcpu", 1, b"\x22" * 40),
            ("serial", -1, b"abc"),
            ("rtc", -1, b"\x00" * 8),
            ("virtio-blk 0", 0, b"\x01" * 8),
            ("disk", 0, b"\x00" * 24 + b"/img/root.raw".ljust(96, b"\0")),
        ]),
        "diff": state_file([("vm", -1, b"\x05" * 8), ("vcpu", 0, b"")], flags=1),
        "odd_sizes": state_file([("s%d" % n, n - 4, b"\x7f" * n) for n in range(1, 10)]),
    }
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        with open(os.path.join(OUT, name + "-crc-filled"), "wb") as f:
            f.write(data[:-4] + b"\0" * 4)


main()
