#!/usr/bin/env python3
"""Writes a newc cpio archive (an initramfs) from a manifest read on stdin.

The set-up scripts describe an initramfs as lines instead of building a staging tree, so that
device nodes exist without root and the archive is byte-for-byte reproducible (mtime 0,
uid/gid 0, entries in manifest order). Parent folders are added on first use (mode 0755).

Usage: scripts/cpio.py OUT.cpio < MANIFEST
Manifest lines (fields split on whitespace; paths are inside the archive, without a leading /):
  dir PATH [MODE]                 a folder
  file PATH SRC [MODE]            a copy of the host file SRC (MODE: octal; default SRC's)
  link PATH TARGET                a symbolic link
  dev PATH c|b MAJOR MINOR MODE   a character or block device node
  tree PATH SRCDIR                SRCDIR's files, folders and links, recursively, under PATH
Blank lines and lines starting with # are skipped. Exits 1 with one line naming the manifest
line on a bad entry or an unreadable file.
"""
import os
import stat
import sys

S_DIR, S_REG, S_LNK, S_CHR, S_BLK = 0o040000, 0o100000, 0o120000, 0o020000, 0o060000


class Archive:
    def __init__(self, out):
        self.out = out
        self.inode = 0
        self.seen = set()

    def _entry(self, path, mode, data=b"", major=0, minor=0):
        self.inode += 1
        name = path.encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(mode) else 1
        fields = [self.inode, mode, 0, 0, nlink, 0, len(data), 0, 0, major, minor, len(name), 0]
        head = b"070701" + b"".join(b"%08X" % v for v in fields) + name
        self.out.write(head + b"\0" * (-len(head) % 4))
        self.out.write(data + b"\0" * (-len(data) % 4))

    def _parents(self, path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.folder("/".join(parts[:i]), 0o755)

    def folder(self, path, mode):
        if path in self.seen:
            return
        self._parents(path)
        self.seen.add(path)
        self._entry(path, S_DIR | mode)

    def add(self, path, mode, data=b"", major=0, minor=0):
        if path in self.seen:
            raise ValueError(f"'{path}' is already in the archive")
        self._parents(path)
        self.seen.add(path)
        self._entry(path, mode, data, major, minor)

    def tree(self, path, src):
        if not os.path.isdir(src):
            raise ValueError(f"'{src}' is not a folder")
        self.folder(path, 0o755)
        for root, dirs, files in os.walk(src):
            dirs.sort()
            rel = os.path.relpath(root, src)
            base = path if rel == "." else f"{path}/{rel}"
            for name in dirs:
                self.folder(f"{base}/{name}", 0o755)
            for name in sorted(files):
                full = os.path.join(root, name)
                if os.path.islink(full):
                    self.add(f"{base}/{name}", S_LNK | 0o777, os.readlink(full).encode())
                else:
                    mode = os.stat(full).st_mode & 0o777
                    self.add(f"{base}/{name}", S_REG | mode, read(full))

    def finish(self):
        self._entry("TRAILER!!!", 0)
        self.out.write(b"\0" * (-self.out.tell() % 512))


def read(src):
    with open(src, "rb") as f:
        return f.read()


def apply(archive, fields):
    kind, path = fields[0], fields[1].strip("/")
    if kind == "dir" and len(fields) in (2, 3):
        archive.folder(path, int(fields[2], 8) if len(fields) == 3 else 0o755)
    elif kind == "file" and len(fields) in (3, 4):
        mode = int(fields[3], 8) if len(fields) == 4 else os.stat(fields[2]).st_mode & 0o777
        archive.add(path, S_REG | mode, read(fields[2]))
    elif kind == "link" and len(fields) == 3:
        archive.add(path, S_LNK | 0o777, fields[2].encode())
    elif kind == "dev" and len(fields) == 6 and fields[2] in ("c", "b"):
        kind_bits = S_CHR if fields[2] == "c" else S_BLK
        archive.add(path, kind_bits | int(fields[5], 8), b"", int(fields[3]), int(fields[4]))
    elif kind == "tree" and len(fields) == 3:
        archive.tree(path, fields[2])
    else:
        raise ValueError("expected dir, file, link, dev or tree with their fields")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: cpio.py OUT.cpio < MANIFEST")
    with open(sys.argv[1], "wb") as out:
        archive = Archive(out)
        for number, line in enumerate(sys.stdin, start=1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            try:
                apply(archive, fields)
            except (OSError, ValueError, IndexError) as e:
                sys.exit(f"cpio.py: manifest line {number} '{line.strip()}': {e}")
        archive.finish()


if __name__ == "__main__":
    main()
