#!/usr/bin/env python3
# Writes the seed corpus of fuzz_virtqueue (tests/fuzz/corpus/fuzz_virtqueue/): a few valid
# queues in the input format described at the top of fuzz_virtqueue.c, for libFuzzer to mutate.
import os
import struct

NEXT, WRITE, INDIRECT = 1, 2, 4


def low(off):  # steered into low RAM
    return (1 << 61) | off


def table(off):  # steered into the indirect-table area
    return (5 << 61) | off


def around_4g(off):  # steered to 4 GiB - 0x8000 + off
    return (6 << 61) | off


def desc(addr, length, flags=0, nxt=0):
    return struct.pack("<QIHH", addr, length, flags, nxt)


def seed(qexp, flags, start, delta, ops, descs, heads, itable=b""):
    qsize = 1 << qexp
    out = bytes([qexp, flags]) + struct.pack("<HH", start, delta) + bytes(ops).ljust(16, b"\0")
    out += b"".join(descs).ljust(16 * qsize, b"\0")
    heads = heads + [0] * (qsize - len(heads))
    out += struct.pack("<HH", 0, 0) + struct.pack("<%dH" % qsize, *heads)
    out += b"\0\0"  # used_event
    return out + itable


SEEDS = {
    "chained": seed(4, 0, 0, 2, [0, 2],
                    [desc(low(0x10000), 16, NEXT, 1), desc(low(0x11000), 512, WRITE | NEXT, 2),
                     desc(low(0x12000), 1, WRITE), desc(low(0x13000), 64, WRITE)],
                    [0, 3]),
    "indirect": seed(4, 2, 0, 1, [],
                     [desc(table(0), 48, INDIRECT)], [0],
                     desc(low(0x10000), 16, NEXT, 1) + desc(low(0x11000), 4096, WRITE | NEXT, 2) +
                     desc(low(0x12000), 1, WRITE)),
    "event_idx_wrap": seed(3, 1, 65534, 4, [1, 0, 1, 2],
                           [desc(low(0x10000 + 0x100 * i), 8, WRITE) for i in range(8)],
                           [0, 1, 2, 3]),
    "around_the_hole": seed(4, 4 | 2 << 3, 0, 3, [],
                            [desc(around_4g(0x7ff8), 16, WRITE), desc(around_4g(0x8000), 8, WRITE),
                             desc((3 << 61) | 8, 8)],
                            [0, 1, 2]),
    "end_of_low_ram": seed(8, 1 | 2 | 1 << 3, 100, 256, [],
                           [desc(low(0x20000 + 16 * i), 16, WRITE) for i in range(256)],
                           list(range(255, -1, -1))),
    # From head 1: 254 chained buffers and a two-entry indirect table, exactly 256 buffers, the
    # most one chain can hold (head 0 would make it 257).
    "long_chain": seed(8, 2 | 0x20, 0, 1, [],
                       [desc(low(0x20000 + 16 * i), 16) for i in range(255)] +
                       [desc(table(0), 32, INDIRECT)], [1],
                       desc(low(0x30000), 16, WRITE | NEXT) + desc(low(0x31000), 16, WRITE)),
}

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_virtqueue")
os.makedirs(here, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)
