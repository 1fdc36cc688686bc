# benchlib: what the bench/ scripts share — paths, the QEMU microvm peer's command line,
# timing a boot, reading a VMM's memory, and median (min, max) formatting.
import os
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QEMU_STATUS_PASS = 1  # isa-debug-exit: guest status S -> QEMU exit (S << 1) | 1


def qemu_binary():
    return shutil.which("qemu-system-x86_64")


def qemu_command(qemu, memory, kernel, machine="microvm", append=None, devices=()):
    """The peer: QEMU microvm with the same guest-kit binary (isa-debug-exit on the kit's
    exit port, the ISA serial port on stdio, version 2 virtio-mmio)."""
    cmd = [qemu, "-M", machine, "-enable-kvm", "-cpu", "host,-arch-capabilities", "-nodefaults",
           "-no-reboot", "-display", "none", "-m", memory, "-serial", "stdio",
           "-device", "isa-debug-exit,iobase=0xf4,iosize=4"]
    if devices:
        cmd += ["-global", "virtio-mmio.force-legacy=false", *devices]
    cmd += ["-kernel", kernel]
    if append:
        cmd += ["-append", append]
    return cmd


def need(paths, who):
    """Exits with a message if a built file is missing, and skips loudly without /dev/kvm."""
    for path in paths:
        if not os.path.exists(path):
            sys.exit(f"{who}: {path} is missing (run scripts/dev.sh setup or build first)")
    if not os.path.exists("/dev/kvm"):
        print("SKIP: no /dev/kvm")
        sys.exit(0)


def measure(cmd):
    """Returns (seconds to first stdout byte, seconds to exit, exit status)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    first = proc.stdout.read(1)
    t_first = time.monotonic() - start if first else float("nan")
    proc.stdout.read()
    status = proc.wait()
    t_exit = time.monotonic() - start
    return t_first, t_exit, status


def smaps_rollup(pid):
    """{field: KiB} from /proc/PID/smaps_rollup (Rss, Pss, Anonymous, ...)."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                fields[parts[0][:-1]] = int(parts[1])
    return fields


def size_kib(text):
    """"128M" / "1G" / bytes -> KiB."""
    units = {"K": 1, "M": 1024, "G": 1024 * 1024}
    if text[-1].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text) // 1024


def guest_ram_kib(pid, guest_kib):
    """Resident KiB of the guest's RAM in a VMM: the anonymous (private, or shared as kiln's
    /dev/zero mapping) mappings at least as big as the guest's memory and at most 8 MiB bigger
    (QEMU pads its RAM block for alignment)."""
    total, size, anonymous = 0, 0, False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and not parts[0].endswith(":"):
                path = " ".join(parts[5:])
                anonymous = (not path or path.startswith(("/dev/zero", "/memfd:", "[anon"))
                             or path == "/SYSV00000000 (deleted)")
                continue
            if parts[0] == "Size:":
                size = int(parts[1])
            elif parts[0] == "Rss:" and anonymous and guest_kib <= size <= guest_kib + 8192:
                total += int(parts[1])
    return total


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def vmm_memory_while_running(cmd, memory, ready=b"serial-echo: ready", quit_input=b"q"):
    """Memory (KiB) of a VMM whose guest (serial-echo) is up and waiting for input:
    smaps_rollup's fields (Rss, Pss, ...), plus GuestRss (resident guest RAM) and VmHWM (peak
    RSS of this process since its exec). ru_maxrss would count the forking parent too."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    seen = b""
    while ready not in seen:
        chunk = proc.stdout.read1(4096)
        if not chunk:
            proc.kill()
            sys.exit(f"bench: no '{ready.decode()}' from {' '.join(cmd)}")
        seen += chunk
    fields = smaps_rollup(proc.pid)
    fields["GuestRss"] = guest_ram_kib(proc.pid, size_kib(memory))
    fields["VmHWM"] = peak_rss_kib(proc.pid)
    proc.stdin.write(quit_input)
    proc.stdin.close()
    proc.stdout.read()
    proc.wait()
    return fields


def summarise(samples):
    """(median, min, max)."""
    return statistics.median(samples), min(samples), max(samples)


def median_of(dicts, key):
    return statistics.median(d[key] for d in dicts)


def fmt_stats(samples, unit, scale=1.0, digits=1, width=9):
    med, lo, hi = summarise([s * scale for s in samples])
    return f"{med:{width}.{digits}f} {unit} (min {lo:.{digits}f}, max {hi:.{digits}f})"


def ratio(a, b):
    """a / b of two sample lists' medians, as text."""
    mb = statistics.median(b)
    return f"{statistics.median(a) / mb:.2f}x" if mb else "-"


def show_command(cmd):
    """A command line as the reader would type it from the repository's top directory."""
    return " ".join(os.path.relpath(c, REPO) if c.startswith(REPO + "/") else c for c in cmd)


def load_note(before):
    """The machine's 1-minute load average before and now: other work is the main noise."""
    return (f"1-minute load average {before:.1f} before, {os.getloadavg()[0]:.1f} after "
            f"(on {os.cpu_count()} CPUs)")
