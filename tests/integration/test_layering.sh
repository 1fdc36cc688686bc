#!/usr/bin/env bash
# The parts' allowed dependencies (docs/architecture.md, "Parts and what each may use"): every
# #include "kiln/PART/..." in src/PART and include/kiln/PART is checked against the table, so a
# new include that runs against the layers fails here, naming the file and the header.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"

python3 - "$SOURCE_DIR" <<'PY' || fail "an include crosses the layers (above)"
import glob, os, re, sys

root = sys.argv[1]
# The machine's contract: what the lower parts may use of vm/ (never vm.h, vm_device.h, ...).
CONTRACT = {"vm/platform.h", "vm/bus.h", "vm/irq.h", "vm/stop.h", "vm/guest_mem.h"}
ALLOWED = {  # part -> parts it may include from ("vm" meaning only the contract above)
    "util": set(),
    "sandbox": {"util"},
    "snapshot": {"util"},
    "config": {"util", "boot", "sandbox"},
    "boot": {"util", "vm"},
    "acpi": {"util", "vm"},
    "virtio": {"util", "vm", "acpi", "boot"},
    "host": {"util", "config"},
    "devices": {"util", "vm", "virtio", "host", "config"},
    "hostcompat": {"util", "vm", "boot", "config"},
    "vcpu": {"util", "vm", "boot", "hostcompat", "sandbox"},
    "ktest": {"util", "vm", "config"},
    "jail": {"util", "config"},
    "api": {"util"},
    "ctl": {"util", "api", "migrate"},
    "migrate": {"util"},
    "vm": {"util", "config", "boot", "acpi", "virtio", "host", "devices", "hostcompat", "vcpu",
           "sandbox", "snapshot", "api", "migrate"},
    "main": {"config", "ktest", "jail", "vm", "util", "ctl", "api", "snapshot", "migrate"},
}
FULL_VM = {"main"}  # parts that may use all of vm/, not only its contract
bad = 0
files = glob.glob(f"{root}/src/**/*.[ch]", recursive=True) + \
    glob.glob(f"{root}/include/kiln/**/*.h", recursive=True)
for path in sorted(files):
    rel = os.path.relpath(path, root)
    parts = rel.split("/")
    part = parts[2] if parts[0] == "include" else (parts[1] if len(parts) > 2 else "main")
    if part not in ALLOWED:
        print(f"{rel}: part '{part}' is not in the layering table")
        bad += 1
        continue
    for n, line in enumerate(open(path), 1):
        m = re.match(r'#include "kiln/([a-z_]+)/([a-z_]+\.h)"', line)
        if not m or m.group(1) == part:
            continue
        target, header = m.group(1), f"{m.group(1)}/{m.group(2)}"
        if target not in ALLOWED[part]:
            print(f"{rel}:{n}: {part}/ may not include {header} (it may use {sorted(ALLOWED[part])})")
            bad += 1
        elif target == "vm" and part not in FULL_VM and part != "vm" and header not in CONTRACT:
            print(f"{rel}:{n}: {part}/ may use only vm/'s contract {sorted(CONTRACT)}, not {header}")
            bad += 1
sys.exit(1 if bad else 0)
PY
echo "PASS"
