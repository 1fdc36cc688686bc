#!/usr/bin/env bash
# Linux early boot: kiln boots Debian's stock cloud kernel (the uncompressed vmlinux made by
# scripts/prepare-linux-guest.sh) with the busybox initramfs, and the serial log must show the
# kernel starting on the machine kiln built: "Linux version", our command line, kiln's e820 map.
# On hosts whose ring 0 is emulated (docs/linux-guest.md) the kernel crawls, so the VM runs for a
# bounded time and is then stopped; if kiln stops it earlier, that must be a clean stop with a
# non-zero status and a diagnostic, never a hang. Where the guest gets further, later
# milestones are checked in order, up to the initramfs's "kiln-linux-guest: init running".
# The test stops the VM as soon as the last required milestone ("Memory:") is on the console.
# Environment: KILN_LINUX_BOOT_TIMEOUT (seconds, default 150), KILN_LINUX_EXTRA_CMDLINE,
# KILN_LINUX_STOP_AT (console text after which the VM is stopped; empty: run to the bound),
# KILN_CACHE_DIR (as for the prepare script).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"

require_kvm
[ -x "$KILN" ] || fail "kiln binary '$KILN' is missing or not executable"

BOOT_TIMEOUT=${KILN_LINUX_BOOT_TIMEOUT:-150}
GUEST=${KILN_CACHE_DIR:-$SOURCE_DIR/.cache}/linux-guest
LOG_DIR=${BUILD_DIR:-$TEST_TMP}/tests/integration
mkdir -p "$LOG_DIR"
SERIAL=$LOG_DIR/linux_early_boot.serial.log # "SECONDS_SINCE_START<TAB>LINE" per serial line
STDERR=$LOG_DIR/linux_early_boot.stderr.log

# --- the guest: prepare (fast when the cache is up to date), else fall back to the cache ------
if bash "$SOURCE_DIR/scripts/prepare-linux-guest.sh" >"$TEST_TMP/prepare.out" 2>"$TEST_TMP/prepare.err" </dev/null; then
    grep -E 'up to date|done:' "$TEST_TMP/prepare.err" | tail -n 1
elif [ -s "$GUEST/vmlinux" ] && [ -s "$GUEST/initrd.cpio.gz" ]; then
    echo "WARNING: prepare-linux-guest.sh failed; using the cached guest in $GUEST:"
    tail -n 3 "$TEST_TMP/prepare.err"
else
    echo "SKIP: no Linux test guest in $GUEST and scripts/prepare-linux-guest.sh could not build one:"
    tail -n 3 "$TEST_TMP/prepare.err"
    skip "no Linux test guest (run scripts/prepare-linux-guest.sh as root)"
fi
VMLINUX=$GUEST/vmlinux
INITRD=$GUEST/initrd.cpio.gz
KRELEASE=$(sed -n 's/^kernel_release=//p' "$GUEST/MANIFEST" 2>/dev/null)
[ -n "$KRELEASE" ] || KRELEASE=6.1
echo "guest: $VMLINUX (kernel $KRELEASE, package version $(cat "$GUEST/VERSION" 2>/dev/null))"

# --- boot -----------------------------------------------------------------------------------
# On hosts that emulate ring 0, kiln's host-compat mode appends what the CPL0 emulator needs
# (noxsave clearcpuid=... lpj=... tsc=reliable ...; docs/host-compat.md) by itself.
CMDLINE="console=ttyS0 earlyprintk=serial,ttyS0 panic=-1"
CMDLINE+="${KILN_LINUX_EXTRA_CMDLINE:+ $KILN_LINUX_EXTRA_CMDLINE}"
STOP_AT=${KILN_LINUX_STOP_AT-Memory: }

echo "boot: kiln run --kernel $VMLINUX --initrd $INITRD --memory 512M (bounded to ${BOOT_TIMEOUT}s)"
echo "cmdline: $CMDLINE"
START=$(now_us)
: >"$SERIAL"
"$KILN" run --kernel "$VMLINUX" --initrd "$INITRD" --memory 512M --cmdline "$CMDLINE" \
    --console stdio --log-level info --shutdown-grace 0 \
    </dev/null 2>"$STDERR" > >(stamp_lines "$START" >"$SERIAL") &
kiln_pid=$!
track_pid "$kiln_pid"
stopped_by_test=""
deadline=$((SECONDS + BOOT_TIMEOUT))
while kill -0 "$kiln_pid" 2>/dev/null; do
    if [ -n "$STOP_AT" ] && grep -qF -- "$STOP_AT" "$SERIAL"; then
        stopped_by_test="it reached '$STOP_AT'"
    elif [ "$SECONDS" -ge "$deadline" ]; then
        stopped_by_test="it was still running at the ${BOOT_TIMEOUT}s bound"
    fi
    if [ -n "$stopped_by_test" ]; then
        kill -TERM "$kiln_pid" # --shutdown-grace 0: stops at once
        break
    fi
    sleep 1
done
wait_stamped_boot "$kiln_pid"

# --- milestones (reported with their times whether or not the test passes) -------------------
# In boot order. "required" ones must appear. "chain" ones are checked in order: once a later
# required/chain milestone is seen, every earlier one must have been seen too (so "Memory:" is
# required exactly when the boot got past it). "info" ones are only reported.
MILESTONES=(
    "required|Linux version $KRELEASE"
    "required|Command line: console=ttyS0"
    "required|BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable"
    "info|Hypervisor detected"
    "required|ACPI: RSDP 0x00000000000E0000 000024 (v02 KILN  )"
    "required|ACPI: XSDT 0x00000000000E0030"
    "required|ACPI: FACP 0x00000000000E0070"
    "required|ACPI: DSDT"
    "required|ACPI: APIC 0x00000000000E0190"
    "chain|Kernel command line:"
    "required|Memory: "
    "info|Calibrating delay loop"
    "info|smpboot: CPU0: "
    "info|clocksource: Switched to clocksource"
    "info|Trying to unpack rootfs image as initramfs"
    "info|Freeing unused kernel image"
    "chain|Run /init as init process"
    "chain|kiln-linux-guest: init running"
)
echo "kiln exit status $status after ${WALL}s; serial log $SERIAL ($(wc -l <"$SERIAL") lines)"
echo "milestones (seconds since kiln started):"
missing_required=() last_seen=-1 first_gap=-1
for i in "${!MILESTONES[@]}"; do
    kind=${MILESTONES[$i]%%|*}
    text=${MILESTONES[$i]#*|}
    when=$(awk -F'\t' -v t="$text" 'index($2, t) { print $1; exit }' "$SERIAL")
    if [ -n "$when" ]; then
        printf '  %8ss  %s\n' "$when" "$text"
        [ "$kind" = info ] || last_seen=$i
    else
        printf '  %9s  %s\n' "-" "$text"
        [ "$kind" = info ] || [ "$first_gap" -ge 0 ] || first_gap=$i
        [ "$kind" != required ] || missing_required+=("$text")
    fi
done
echo "last serial line: $(tail -n 1 "$SERIAL")"
if [ -s "$STDERR" ]; then
    echo "kiln stderr (last lines):"
    tail -n 15 "$STDERR" | sed 's/^/  | /'
fi

# --- verdict --------------------------------------------------------------------------------
case $status in
143) [ -n "$stopped_by_test" ] || fail "kiln stopped by SIGTERM, but not by this test"
    echo "the test stopped the VM: $stopped_by_test" ;;
0) expect_contains "$TEST_TMP/serial.txt" "kiln-linux-guest: init running" ;;
123) echo "the guest reset (kiln exit status 123)" ;;
126)
    # An exit kiln cannot handle (e.g. an instruction the CPL0 emulator lacks): it must say
    # where the guest stopped.
    grep -qi 'rip' "$STDERR" ||
        fail "kiln stopped the guest (status 126) without a diagnostic naming RIP: $(tail -n 5 "$STDERR")"
    ;;
125) fail "kiln could not run the guest (status 125): $(tail -n 5 "$STDERR")" ;;
*) fail "kiln ended with unexpected status $status: $(tail -n 5 "$STDERR")" ;;
esac

[ "${#missing_required[@]}" -eq 0 ] ||
    fail "serial log lacks: ${missing_required[*]}; it starts: $(head -c 1500 "$TEST_TMP/serial.txt")"
[ "$first_gap" -lt 0 ] || [ "$first_gap" -gt "$last_seen" ] ||
    fail "milestone '${MILESTONES[$first_gap]#*|}' missing before later ones were reached"
! grep -q 'Kernel panic' "$TEST_TMP/serial.txt" ||
    fail "the guest panicked: $(grep -m1 -A3 'Kernel panic' "$TEST_TMP/serial.txt")"

# kiln's e820 map for 512 MiB: low RAM, the legacy hole, RAM from 1 MiB to the end, nothing else
# usable (RAM above 4 GiB only exists for VMs over 3 GiB).
expect_contains "$TEST_TMP/serial.txt" "BIOS-e820: [mem 0x000000000009fc00-0x00000000000fffff] reserved"
expect_contains "$TEST_TMP/serial.txt" "BIOS-e820: [mem 0x0000000000100000-0x000000001fffffff] usable"
usable=$(grep -c 'BIOS-e820: .* usable$' "$TEST_TMP/serial.txt")
[ "$usable" -eq 2 ] ||
    fail "expected 2 usable e820 ranges, got $usable: $(grep 'BIOS-e820' "$TEST_TMP/serial.txt")"
expect_contains "$TEST_TMP/serial.txt" "Command line: $CMDLINE"

# host-compat: on hosts that emulate ring 0 kiln said so and extended the command line.
if grep -q "host-compat" "$STDERR"; then
    expect_contains "$TEST_TMP/serial.txt" "noxsave"
fi
echo "PASS: Linux $KRELEASE started on kiln's machine (e820 map, ACPI tables, command line)"
