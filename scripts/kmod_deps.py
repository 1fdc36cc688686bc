#!/usr/bin/env python3
"""Lists kernel modules with everything they depend on, in the order insmod must load them.

Debian's linux-image packages ship .ko files but no modules.dep (depmod writes it when the
package is installed), so this reads each module's own "depends=" field from its .modinfo
section. busybox insmod, which the nested tier's initramfs uses, loads no dependencies itself.

Usage: scripts/kmod_deps.py MODULES_DIR NAME...
Prints one path per line, relative to MODULES_DIR, dependencies first, each module once.
'-' and '_' in names are the same, as for modprobe. Exits 1 naming a module it cannot find.
"""
import os
import sys


def index_modules(root):
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".ko"):
                found[name[:-3].replace("-", "_")] = os.path.join(folder, name)
    return found


def depends(path):
    """The depends= value of a module's .modinfo (NUL-separated key=value strings)."""
    with open(path, "rb") as f:
        data = f.read()
    start = data.find(b"\0depends=")
    if start < 0:
        return []
    end = data.find(b"\0", start + 1)
    value = data[start + len(b"\0depends="):end].decode()
    return [name for name in value.split(",") if name]


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: kmod_deps.py MODULES_DIR NAME...")
    root = sys.argv[1]
    modules = index_modules(root)
    order, visiting, done = [], set(), set()

    def visit(name, wanted_by):
        name = name.replace("-", "_")
        if name in done:
            return
        if name in visiting:
            sys.exit(f"kmod_deps.py: dependency loop through '{name}'")
        if name not in modules:
            sys.exit(f"kmod_deps.py: no module '{name}' under {root}{wanted_by}")
        visiting.add(name)
        for dep in depends(modules[name]):
            visit(dep, f" (needed by {name})")
        visiting.discard(name)
        done.add(name)
        order.append(os.path.relpath(modules[name], root))

    for name in sys.argv[2:]:
        visit(name, "")
    print("\n".join(order))


if __name__ == "__main__":
    main()
