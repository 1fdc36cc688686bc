#!/usr/bin/env python3
# Writes the seed corpora of fuzz_hostcompat_decode, fuzz_rng_device and fuzz_mig_link, and
# the hand-made seeds of fuzz_blk_device (tests/fuzz/corpus/<target>/): one input per
# instruction host-compat emulates, a few valid virtio-rng request sequences, block requests
# that reach the thread pool, and migration hellos and frames, in the input formats described
# in those fuzzers.
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    out = os.path.join(HERE, "corpus", target)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


def hostcompat_seeds():
    # struct hostcompat_cpu in-fields: rip, rflags, gpr[16], seg_base[6], cr0, cr4, cpl,
    # code_bits, mxcsr, fsw, ftwx (x86-64 layout, padded to 8).
    cr0, cr4 = 0x80050033, 0x3606F0  # PG|WP|NE|ET|MP|PE; OSFXSR among CR4's
    state = struct.pack("<QQ16Q6QQQIIIHBx", 0x1000, 0x2, *([0x800] * 16), *([0] * 6), cr0, cr4,
                        0, 64, 0x1F80, 0, 0)
    insns = {
        "int3": b"\xcc",
        "fwait": b"\x9b",
        "fclex": b"\x9b\xdb\xe2",
        "fnclex": b"\xdb\xe2",
        "emms": b"\x0f\x77",
        "clac": b"\x0f\x01\xca",
        "stac": b"\x0f\x01\xcb",
        "ldmxcsr_rax": b"\x0f\xae\x10",
        "stmxcsr_sib_disp8": b"\x0f\xae\x5c\x24\x08",
        "stmxcsr_rip_gs": b"\x65\x0f\xae\x1d\x00\x01\x00\x00",
        "ldmxcsr_rex_disp32": b"\x41\x0f\xae\x97\xfe\x0f\x00\x00",
    }
    header = bytes([0x00, 0, 1, 2, 3, 0xFF, 0, 1, 2, 0x30])  # 64-bit CPL0, map, gpr pick
    for name, insn in insns.items():
        write("fuzz_hostcompat_decode", name, header + state + insn)
    header32 = bytes([0x04]) + header[1:]
    write("fuzz_hostcompat_decode", "stmxcsr_32bit", header32 + state + b"\x0f\xae\x18")


def rng_seeds():
    def desc(q_index, area, addr, length, flags, nxt):
        # fuzz_driver.h drv_write_desc: [1] index << 4 | selector << 1, [2..5] address,
        # [6..7] length with flags in [6] bits 0-2 and next in [7].
        raw_len = (length & ~7) | flags
        return bytes([0, (q_index << 4) | (area << 1)]) + struct.pack("<IBB", addr,
                                                                     raw_len & 0xFF, nxt)

    avail = lambda head: bytes([1, 0, head, 0, 0, 0, 0, 0])
    doorbell = bytes([3, 0, 0, 0, 0, 0, 0, 0])
    write_flag = 2
    one = desc(0, 1, 0x100, 0x40, write_flag, 0) + avail(0) + doorbell
    chain = (desc(0, 1, 0x200, 0x20, write_flag | 1, 1) + desc(1, 1, 0x400, 0x80, write_flag, 0)
             + avail(0) + doorbell)
    no_write = desc(0, 0, 0x100, 0x40, 0, 0) + avail(0) + doorbell
    live_move = one + bytes([0xE8, 11, 1, 0, 0, 0, 0, 0]) + avail(0) + doorbell
    ready_off = one + bytes([0xE8, 1, 0, 0, 0, 0, 0, 0]) + doorbell
    for name, ops in {"one": one, "chain": chain, "no_writable": no_write,
                      "live_move": live_move, "ready_off": ready_off}.items():
        write("fuzz_rng_device", name, bytes([0]) + ops)
        write("fuzz_rng_device", name + "_event_idx", bytes([6]) + ops)


def poke(addr, value4):
    """fuzz_driver.h drv_poke into the buffer areas (from 0x8000): 4 bytes at addr."""
    return bytes([0xE0]) + struct.pack("<I", addr - 0x8000)[:3] + value4


def poke_desc(index, addr, length, flags, nxt):
    """Descriptor index of queue 0: its address through a ring op (drv_write_desc), then its
    exact length, flags and next through two drv_poke descriptor stores."""
    selector, base = (1, 0x20000) if addr >= 0x20000 else (0, 0x8000)
    ring_op = bytes([0, (index << 4) | (selector << 1)]) + struct.pack("<I", addr - base) + b"\0\0"
    length_op = bytes([0xE0, 0, index, 0x80]) + struct.pack("<I", length)
    flags_op = bytes([0xE0, 1, index, 0x80]) + struct.pack("<HH", flags, nxt)
    return ring_op + length_op + flags_op


def blk_seeds():
    buffers, split = 0x8000, 0x20000  # DRV_BUFFERS, DRV_SPLIT in fuzz_driver.h
    next_, writable = 1, 2
    flush = (poke(buffers, struct.pack("<I", 4))  # virtio_blk_outhdr.type = FLUSH
             + poke_desc(0, buffers, 16, next_, 1) + poke_desc(1, split, 1, writable, 0))
    avail = bytes([1, 0, 0, 0, 0, 0, 0, 0])  # head 0 on queue 0
    doorbell = bytes([3, 0, 0, 0, 0, 0, 0, 0])
    loop_until_idle = bytes([5, 0, 0, 0, 0, 0, 0, 0])
    # The flush goes to the thread pool; the driver moves the live queue (QueueReady=0, the
    # same rings, QueueReady=1) before it comes back: the completion must not land in the
    # restarted queue (tests/unit/test_virtio_blk.c test_completion_after_queue_restart_...).
    live_move = bytes([0xE8, 11, 0, 4, 0, 0, 0, 0])
    write("fuzz_blk_device", "flush_then_queue_restart",
          bytes([0]) + flush + avail + doorbell + live_move + loop_until_idle)
    write("fuzz_blk_device", "flush", bytes([0]) + flush + avail + doorbell + loop_until_idle)
    sector_write = (poke(buffers, struct.pack("<I", 1))  # OUT, sector 0
                    + poke_desc(0, buffers, 16, next_, 1) + poke_desc(1, buffers + 0x200, 512,
                                                                      next_, 2)
                    + poke_desc(2, split, 1, writable, 0))
    write("fuzz_blk_device", "write_sector",
          bytes([0]) + sector_write + avail + doorbell + loop_until_idle)


def mig_link_seeds():
    # fuzz_mig_link: a first byte (bit 0: the link has a key, bit 1: it is the sender), then
    # the peer's bytes: a hello (magic, version 1, flags, 32 random bytes) and frames (a
    # 4-byte length, then the data).
    def hello(flags):
        return b"KILN-MIG" + struct.pack("<II", 1, flags) + bytes(range(32))

    def frame(data):
        return struct.pack("<I", len(data)) + data

    write("fuzz_mig_link", "plain_frames", b"\x00" + hello(0) + frame(b"abc") + frame(b"x" * 5000))
    write("fuzz_mig_link", "plain_sender", b"\x02" + hello(0) + frame(b"ok"))
    write("fuzz_mig_link", "plain_big_frame", b"\x00" + hello(0) + frame(b"\xaa" * 65536))
    write("fuzz_mig_link", "keyed_hello", b"\x01" + hello(1) + bytes(24) + frame(bytes(41)))
    write("fuzz_mig_link", "http", b"\x00GET / HTTP/1.1\r\nHost: x\r\n\r\n")


if __name__ == "__main__":
    hostcompat_seeds()
    rng_seeds()
    blk_seeds()
    mig_link_seeds()
