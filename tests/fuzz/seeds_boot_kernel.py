#!/usr/bin/env python3
# Writes the seed corpus of fuzz_boot_kernel (tests/fuzz/corpus/fuzz_boot_kernel/): tiny kernels
# of each kind kiln loads, built like the fixtures in tests/unit/test_boot_elf.c and
# test_boot_bzimage.c: a PVH ELF (64- and 32-bit), an ELF vmlinux and a bzImage.
import os
import struct

PT_LOAD, PT_NOTE = 1, 4
EM_386, EM_X86_64 = 3, 62
XEN_ELFNOTE_PHYS32_ENTRY, NT_GNU_BUILD_ID = 18, 3


def align16(v):
    return (v + 15) & ~15


def note(name, ntype, desc):
    name = name.encode() + b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)
    return struct.pack("<III", len(name), len(desc), ntype) + pad(name) + pad(desc)


def notes(pvh_entry=None):
    out = note("GNU", NT_GNU_BUILD_ID, b"\x42" * 20)
    if pvh_entry is not None:
        out += note("Xen", XEN_ELFNOTE_PHYS32_ENTRY, struct.pack("<I", pvh_entry))
    return out


def elf(entry, segments, is32=False):
    """segments: (type, paddr, vaddr, memsz, data); headers, then each segment 16-aligned."""
    ehsize, phsize = (52, 32) if is32 else (64, 56)
    off = align16(ehsize + len(segments) * phsize)
    phdrs, body = b"", b""
    for ptype, paddr, vaddr, memsz, data in segments:
        align = 4 if ptype == PT_NOTE else 0x1000
        if is32:
            phdrs += struct.pack("<8I", ptype, off, vaddr, paddr, len(data), memsz, 5, align)
        else:
            phdrs += struct.pack("<IIQQQQQQ", ptype, 5, off, vaddr, paddr, len(data), memsz, align)
        body += data.ljust(align16(len(data)), b"\0")
        off = align16(off + len(data))
    ident = b"\x7fELF" + bytes([1 if is32 else 2, 1, 1]) + b"\0" * 9
    machine = EM_386 if is32 else EM_X86_64
    if is32:
        head = ident + struct.pack("<HHIIIIIHHHHHH", 2, machine, 1, entry, ehsize, 0, 0, ehsize,
                                   phsize, len(segments), 0, 0, 0)
    else:
        head = ident + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, entry, ehsize, 0, 0, ehsize,
                                   phsize, len(segments), 0, 0, 0)
    return (head + phdrs).ljust(align16(ehsize + len(segments) * phsize), b"\0") + body


PAYLOAD = bytes((i * 13 + 5) & 0xFF for i in range(256))


def bzimage():
    setup_sects, pm_size = 1, 512
    image = bytearray(b"\xee" * ((setup_sects + 1) * 512))
    hdr_end = 0x268
    fields = [  # (offset, format, value), Documentation/arch/x86/boot.rst
        (0x1F1, "<B", setup_sects), (0x1F2, "<H", 1), (0x1F4, "<I", pm_size // 16),
        (0x1FA, "<H", 0xFFFF), (0x1FC, "<H", 0x0301), (0x1FE, "<H", 0xAA55),
        (0x200, "<H", 0xEB | (hdr_end - 0x202) << 8), (0x202, "<I", 0x53726448),
        (0x206, "<H", 0x020F), (0x211, "<B", 0x80), (0x214, "<I", 0x100000),
        (0x22C, "<I", 0x7FFFFFFF), (0x230, "<I", 0x200000), (0x234, "<B", 1),
        (0x235, "<B", 21), (0x236, "<H", 3), (0x238, "<I", 2047),
        (0x258, "<Q", 0x1000000), (0x260, "<I", 0x400000),
    ]
    for off, fmt, value in fields:
        struct.pack_into(fmt, image, off, value)
    for i in range(0x1F1, 0x268):  # header bytes not set above are zero
        if not any(off <= i < off + struct.calcsize(fmt) for off, fmt, _ in fields):
            image[i] = 0
    return bytes(image) + PAYLOAD * (pm_size // len(PAYLOAD))


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_boot_kernel")
    os.makedirs(out, exist_ok=True)
    seeds = {
        "pvh64": elf(0x100000, [(PT_LOAD, 0x100000, 0x100000, 512, PAYLOAD),
                                (PT_NOTE, 0, 0, 0, notes(0x100010))]),
        "pvh32": elf(0x100000, [(PT_LOAD, 0x100000, 0x100000, 512, PAYLOAD),
                                (PT_NOTE, 0, 0, 0, notes(0x100010))], is32=True),
        "vmlinux": elf(0xFFFFFFFF81000000,
                       [(PT_LOAD, 0x1000000, 0xFFFFFFFF81000000, 512, PAYLOAD),
                        (PT_NOTE, 0, 0, 0, notes())]),
        "bzimage": bzimage(),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
