#!/usr/bin/env bash
# The nested test tier (docs/testing.md, docs/nested.md): QEMU with TCG and `-cpu max` emulates
# AMD SVM with nested paging, so an L1 Debian kernel under it can load kvm-amd, and kiln inside
# L1 gets real hardware-virtualisation semantics: Linux guests on kiln reach user space even on
# hosts whose own /dev/kvm emulates guest ring 0.
#
# Usage:
#   scripts/nested.sh prepare
#       download (apt-get download) and cache the L1 kernel (linux-image-amd64's image), the
#       L1 modules (kvm, kvm-amd and what they need, tun) and the L2 test guest's modules (the
#       virtio drivers of the Linux test guest's cloud kernel); prints the cache folder
#   scripts/nested.sh run [--out DIR] [--timeout SECONDS] [--qemu] [--stream]
#                         [--file SRC:DEST]... [--l1-memory SIZE] -- COMMAND [ARG...]
#       boot L1 with kiln, the test kernels and the L2 test guest in its initramfs, and run
#       COMMAND there (a busybox sh; the working folder is a copy of configs/ and tests/nested/
#       at /nested/repo, and KILN_CACHE_DIR=/nested/cache holds the kernels as .cache does);
#       files COMMAND writes to /out come back to DIR (default: a new folder, printed), with
#       L1's console as DIR/l1-console.log.
#         --qemu        also put QEMU (its binary, libraries and microvm firmware) into L1
#         --stream      copy L1's console to stdout as it comes
#         --file S:D    copy the host file S to D in L1 (an absolute path)
#         --timeout S   stop L1 after S seconds (default 1200); --l1-memory (default 3G)
#       Exit status: COMMAND's; 77 after a "SKIP: reason" line when the tier cannot run here
#       (no QEMU, or L1 has no /dev/kvm); 124 when L1 ran out of time; 86 when L1 locked up
#       (a CPU stuck 120 s by its own watchdog, or its console silent 240 s: watch_lockup)
#       or its kernel panicked.
# Environment: KILN_BUILD_DIR (default REPO/build: kiln and tests/guest/kiln-exit),
#   KILN_CACHE_DIR (default REPO/.cache), KILN_NESTED_L1_PACKAGE (default linux-image-amd64).
# Runs unattended (CI=true, no stdin) as root on Debian 12.
set -euo pipefail

# Bump when what `prepare` puts in its cache changes, so old caches are rebuilt.
RECIPE=1

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${KILN_BUILD_DIR:-$REPO/build}
CACHE_ROOT=${KILN_CACHE_DIR:-$REPO/.cache}
L1_PACKAGE=${KILN_NESTED_L1_PACKAGE:-linux-image-amd64}
# kvm-amd pulls in kvm, irqbypass and ccp; tun makes the TAPs the network tests use.
L1_MODULES="kvm_amd tun"
# The cloud kernel has virtio as modules (ext4 is built in).
L2_MODULES="virtio_mmio virtio_blk virtio_net virtio_console virtio_rng virtio_balloon"
QEMU_FIRMWARE="qboot.rom bios-microvm.bin pvh.bin linuxboot_dma.bin"

export DEBIAN_FRONTEND=noninteractive LC_ALL=C
IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1
SCRIPT_NAME=nested
log() { echo "nested: $*" >&2; }
die() {
    echo "nested: error: $*" >&2
    exit 1
}
skip() {
    echo "SKIP: $*"
    exit 77
}
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$REPO/scripts/lib.sh" # ensure_packages, resolve_kernel_package, download, busybox_manifest

WORK=
QEMU_PID=
# QEMU_PID is timeout(1)'s, which passes SIGTERM on to QEMU.
cleanup() {
    [ -z "$QEMU_PID" ] || kill -TERM "$QEMU_PID" 2>/dev/null || true
    [ -z "$WORK" ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
manifest_value() { sed -n "s/^$2=//p" "$1" 2>/dev/null | head -n 1; }

# --- prepare: the cache ---------------------------------------------------------------------
# The L2 modules must match the Linux test guest's kernel exactly, so they come from the
# package that scripts/prepare-linux-guest.sh recorded in its MANIFEST.
l2_package() {
    local manifest=$CACHE_ROOT/linux-guest/MANIFEST
    "$REPO/scripts/prepare-linux-guest.sh" >/dev/null || die "scripts/prepare-linux-guest.sh failed"
    L2_PKG=$(manifest_value "$manifest" package)
    L2_VER=$(manifest_value "$manifest" version)
    L2_RELEASE=$(manifest_value "$manifest" kernel_release)
    [ -n "$L2_PKG" ] && [ -n "$L2_VER" ] && [ -n "$L2_RELEASE" ] ||
        die "$manifest does not name the guest's kernel package"
}

cache_key() {
    {
        echo "recipe=$RECIPE l1=$1=$2 l2=$L2_PKG=$L2_VER"
        echo "l1_modules=$L1_MODULES l2_modules=$L2_MODULES"
        sha256sum "$REPO/scripts/kmod_deps.py" | cut -d' ' -f1
    } | sha256sum | cut -c1-16
}

cache_complete() {
    [ -s "$1/MANIFEST" ] && [ -s "$1/l1/vmlinuz" ] && [ -s "$1/l1/modules/order" ] &&
        [ -s "$1/l2/modules/order" ]
}

# copy_modules PKG_ROOT RELEASE DEST NAME...: the modules and their dependencies, flat in
# DEST, with DEST/order listing them in load order.
copy_modules() {
    local root=$1/lib/modules/$2 dest=$3 rel
    shift 3
    mkdir -p "$dest"
    python3 "$REPO/scripts/kmod_deps.py" "$root" "$@" >"$WORK/order" ||
        die "cannot resolve modules $* in $root"
    : >"$dest/order"
    while read -r rel; do
        cp "$root/$rel" "$dest/"
        basename "$rel" >>"$dest/order"
    done <"$WORK/order"
}

# Sets NESTED_CACHE to an up-to-date cache folder, building it if needed.
prepare() {
    local key out deb1 deb2 l1_release t
    ensure_packages python3 qemu-system-x86 busybox-static
    l2_package
    mkdir -p "$CACHE_ROOT/nested"
    exec 9>"$CACHE_ROOT/nested/.lock"
    flock 9
    KPKG=''
    KVER=''
    if ! resolve_kernel_package "$L1_PACKAGE"; then
        if cache_complete "$CACHE_ROOT/nested/current"; then
            log "apt cannot tell the current L1 kernel version; using the cached one"
            NESTED_CACHE=$(readlink -f "$CACHE_ROOT/nested/current")
            return 0
        fi
        die "apt has no package lists for '$L1_PACKAGE' and only root can run apt-get update"
    fi
    key=$(cache_key "$KPKG" "$KVER")
    out=$CACHE_ROOT/nested/$key
    if cache_complete "$out"; then
        log "up to date: $KPKG $KVER (L1), $L2_PKG $L2_VER modules (L2) in $out"
        ln -sfn "$key" "$CACHE_ROOT/nested/current"
        NESTED_CACHE=$out
        return 0
    fi
    log "building the nested tier's cache from $KPKG $KVER and $L2_PKG $L2_VER into $out"
    t=$(now)
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/kiln-nested.XXXXXX")
    chmod 755 "$WORK"
    download "$WORK/deb" "$KPKG=$KVER" "$L2_PKG=$L2_VER"
    deb1=$(ls "$WORK"/deb/"${KPKG}"_*.deb)
    deb2=$(ls "$WORK"/deb/"${L2_PKG}"_*.deb)
    dpkg-deb -x "$deb1" "$WORK/l1root" || die "cannot unpack $deb1"
    dpkg-deb -x "$deb2" "$WORK/l2root" || die "cannot unpack $deb2"
    set -- "$WORK"/l1root/boot/vmlinuz-*
    [ $# -eq 1 ] && [ -f "$1" ] || die "$deb1 has no single /boot/vmlinuz-*"
    l1_release=${1##*/vmlinuz-}
    rm -rf "$out.tmp"
    mkdir -p "$out.tmp/l1"
    cp "$1" "$out.tmp/l1/vmlinuz"
    # shellcheck disable=SC2086 # the module lists are words
    copy_modules "$WORK/l1root" "$l1_release" "$out.tmp/l1/modules" $L1_MODULES
    # shellcheck disable=SC2086
    copy_modules "$WORK/l2root" "$L2_RELEASE" "$out.tmp/l2/modules" $L2_MODULES
    cat >"$out.tmp/MANIFEST" <<EOF
recipe=$RECIPE
l1_package=$KPKG
l1_version=$KVER
l1_release=$l1_release
l2_package=$L2_PKG
l2_version=$L2_VER
l2_release=$L2_RELEASE
l1_modules=$(tr '\n' ' ' <"$out.tmp/l1/modules/order")
l2_modules=$(tr '\n' ' ' <"$out.tmp/l2/modules/order")
seconds=$(elapsed "$t")
EOF
    rm -rf "$out"
    mv "$out.tmp" "$out"
    ln -sfn "$key" "$CACHE_ROOT/nested/current"
    rm -rf "$WORK"
    WORK=
    log "done in $(elapsed "$t")s: $out"
    NESTED_CACHE=$out
}

# --- run: the initramfs ---------------------------------------------------------------------
# Manifest lines for the shared libraries (and loader) a dynamic binary links, each once.
declare -A LIBS_SEEN=()
library_lines() {
    local lib
    for lib in $(ldd "$1" | grep -o '/[^ ]*'); do
        [ -z "${LIBS_SEEN[$lib]:-}" ] || continue
        LIBS_SEEN[$lib]=1
        echo "file ${lib#/} $lib 755"
    done
}

# The L2 test guest (tests/nested/guest-init.sh as /init): busybox, kiln-exit and the cloud
# kernel's virtio modules under lib/modules/RELEASE (the minimal kernel, which has no modules,
# finds none for its release and loads nothing).
build_guest_initrd() {
    local modules=$NESTED_CACHE/l2/modules release m
    release=$(manifest_value "$NESTED_CACHE/MANIFEST" l2_release)
    {
        busybox_manifest /bin/busybox
        echo "file init $REPO/tests/nested/guest-init.sh 755"
        echo "file usr/bin/kiln-exit $BUILD/tests/guest/kiln-exit 755"
        while read -r m; do
            echo "file lib/modules/$release/$m $modules/$m 644"
        done <"$modules/order"
        echo "file lib/modules/$release/order $modules/order 644"
    } | python3 "$REPO/scripts/cpio.py" "$1"
}

build_l1_initrd() {
    local out=$1 modules=$NESTED_CACHE/l1/modules m f spec minimal
    local linux_guest=$CACHE_ROOT/linux-guest
    minimal=$(readlink -f "$CACHE_ROOT/minimal-kernel/current" 2>/dev/null || true)
    {
        busybox_manifest /bin/busybox
        echo "file init $REPO/scripts/nested-l1-init.sh 755"
        while read -r m; do
            echo "file lib/modules/nested/$m $modules/$m 644"
        done <"$modules/order"
        echo "file lib/modules/nested/order $modules/order 644"
        echo "file nested/bin/kiln $BUILD/kiln 755"
        library_lines "$BUILD/kiln"
        # GNU touch: busybox's -r copies a time stamp to the second only, and a snapshot's disk
        # must keep its modification time to the nanosecond (tests/nested/l1/snapshot.sh).
        echo "file nested/bin/touch $(command -v touch) 755"
        library_lines "$(command -v touch)"
        echo "file nested/cmd $WORK/cmd 755"
        for f in vmlinux vmlinuz initrd.cpio.gz MANIFEST; do
            echo "file nested/cache/linux-guest/$f $linux_guest/$f 644"
        done
        echo "file nested/cache/nested-guest/initrd.cpio $WORK/guest.cpio 644"
        if [ -n "$minimal" ] && [ -s "$minimal/vmlinux" ] && [ -s "$minimal/bzImage" ]; then
            echo "file nested/cache/minimal-kernel/current/vmlinux $minimal/vmlinux 644"
            echo "file nested/cache/minimal-kernel/current/bzImage $minimal/bzImage 644"
        fi
        echo "tree nested/repo/configs $REPO/configs"
        echo "tree nested/repo/tests/nested $REPO/tests/nested"
        if [ "$WITH_QEMU" -eq 1 ]; then
            echo "file nested/bin/qemu-system-x86_64 $(command -v qemu-system-x86_64) 755"
            library_lines "$(command -v qemu-system-x86_64)"
            for f in $QEMU_FIRMWARE; do
                echo "file nested/qemu/$f /usr/share/qemu/$f 644"
            done
        fi
        for spec in "${EXTRA_FILES[@]}"; do
            echo "file ${spec#*:} ${spec%%:*}"
        done
    } | python3 "$REPO/scripts/cpio.py" "$out"
}

# /nested/cmd: the command, each word single-quoted for busybox sh.
write_command() {
    local word q="'" quoted=""
    for word in "$@"; do
        quoted+=" '${word//$q/$q\\$q$q}'"
    done
    printf '#!/bin/sh\n# written by scripts/nested.sh run\nexec%s\n' "$quoted" >"$WORK/cmd"
}

# Decodes what L1's init wrote to its second serial port into OUT_DIR.
collect_out() {
    local raw=$1
    sed -n '/^kiln-nested-out-begin/,/^kiln-nested-out-end/p' "$raw" | sed '1d;$d' |
        base64 -d -i | tar -x -C "$OUT_DIR" 2>/dev/null
}

# QEMU TCG's emulated SVM, the tier's L0, now and then locks L1 itself up while an L2 runs:
# both L1 CPUs spin in the kernel and L1's watchdog reports "soft lockup - CPU#N stuck for Ns"
# for good (docs/nested.md). Waiting out the whole bound then costs 20 minutes of CI.
# watch_lockup CONSOLE QEMU_PID NOTE: stops QEMU once L1 has locked up, and writes why into
# NOTE; run() then returns LOCKUP_STATUS, which tests/nested/lib.sh retries once. Locked up:
# a CPU stuck LOCKUP_SECONDS by L1's own watchdog, or a console silent SILENT_SECONDS although
# L1's init writes a heartbeat to it every 30 s (scripts/nested-l1-init.sh).
LOCKUP_SECONDS=120
SILENT_SECONDS=240
LOCKUP_STATUS=86
watch_lockup() {
    local line stuck size last_size=-1 quiet=0
    while kill -0 "$2" 2>/dev/null; do
        sleep 5
        line=$(grep -a -o 'soft lockup - CPU#[0-9]* stuck for [0-9]*s' "$1" 2>/dev/null | tail -n 1)
        stuck=$(echo "$line" | sed -n 's/.* stuck for \([0-9]*\)s/\1/p')
        if [ -n "$stuck" ] && [ "$stuck" -ge "$LOCKUP_SECONDS" ]; then
            echo "$line" >"$3"
            kill -TERM "$2" 2>/dev/null
            return
        fi
        size=$(stat -c %s "$1" 2>/dev/null || echo 0)
        if [ "$size" != "$last_size" ]; then
            last_size=$size
            quiet=0
        else
            quiet=$((quiet + 5))
        fi
        # Only once L1's init has started its heartbeat (right after its "/dev/kvm ready" line):
        # booting L1 itself prints nothing for a while. Not from the first heartbeat: an L1
        # that froze within 30 s of that line never prints one.
        if [ "$quiet" -ge "$SILENT_SECONDS" ] && grep -a -q 'kiln-nested: /dev/kvm ready' "$1" 2>/dev/null; then
            echo "its console was silent for ${quiet} s, heartbeat included" >"$3"
            kill -TERM "$2" 2>/dev/null
            return
        fi
    done
}

run() {
    local timeout=1200 memory=3G t0 t status=0 tail_pid=
    OUT_DIR=
    WITH_QEMU=0
    STREAM=0
    EXTRA_FILES=()
    while [ $# -gt 0 ]; do
        case $1 in
        --out) OUT_DIR=${2:?--out needs a folder}; shift ;;
        --timeout) timeout=${2:?--timeout needs seconds}; shift ;;
        --l1-memory) memory=${2:?--l1-memory needs a size}; shift ;;
        --qemu) WITH_QEMU=1 ;;
        --stream) STREAM=1 ;;
        --file)
            [[ ${2:-} == *:/* ]] || die "--file needs SRC:DEST with an absolute DEST, got '${2:-}'"
            [ -f "${2%%:*}" ] || die "--file ${2}: '${2%%:*}' is not a file"
            EXTRA_FILES+=("$2")
            shift
            ;;
        --) shift; break ;;
        *) die "run: unknown argument '$1' (expected an option, then -- COMMAND)" ;;
        esac
        shift
    done
    [ $# -gt 0 ] || die "run: no command (expected -- COMMAND [ARG...])"
    [[ $timeout =~ ^[1-9][0-9]*$ ]] || die "--timeout '$timeout' is not a number of seconds"
    command -v qemu-system-x86_64 >/dev/null 2>&1 ||
        skip "no qemu-system-x86_64 for the nested tier's L1 (apt-get install qemu-system-x86)"
    [ -x "$BUILD/kiln" ] || die "no kiln binary at $BUILD/kiln (build first: scripts/dev.sh setup)"
    [ -x "$BUILD/tests/guest/kiln-exit" ] || die "no $BUILD/tests/guest/kiln-exit (build the guest kit)"
    [ -x /bin/busybox ] || die "no /bin/busybox (apt-get install busybox-static)"

    t0=$(now)
    prepare
    [ -n "$OUT_DIR" ] || OUT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kiln-nested-out.XXXXXX")
    mkdir -p "$OUT_DIR"
    rm -f "$OUT_DIR/.status" "$OUT_DIR/l1-console.log" "$OUT_DIR/.l1-serial1"
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/kiln-nested-run.XXXXXX")
    write_command "$@"
    build_guest_initrd "$WORK/guest.cpio"
    build_l1_initrd "$WORK/l1.cpio"
    log "L1 initramfs: $(($(stat -c %s "$WORK/l1.cpio") >> 20)) MiB in $(elapsed "$t0")s; booting L1 (QEMU TCG, -cpu max, 2 vCPUs, $memory; bound ${timeout}s)"
    log "L1 console: $OUT_DIR/l1-console.log"

    t=$(now)
    : >"$OUT_DIR/l1-console.log"
    timeout --kill-after=10 "$timeout" qemu-system-x86_64 -accel tcg,thread=multi -cpu max \
        -smp 2 -m "$memory" -nodefaults -no-reboot -display none \
        -serial "file:$OUT_DIR/l1-console.log" -serial "file:$OUT_DIR/.l1-serial1" \
        -kernel "$NESTED_CACHE/l1/vmlinuz" -initrd "$WORK/l1.cpio" \
        -append "console=ttyS0 quiet panic=-1 mitigations=off" </dev/null &
    QEMU_PID=$!
    watch_lockup "$OUT_DIR/l1-console.log" "$QEMU_PID" "$OUT_DIR/.l1-locked-up" &
    local watch_pid=$!
    if [ "$STREAM" -eq 1 ]; then
        tail -n +1 -f --pid="$QEMU_PID" "$OUT_DIR/l1-console.log" &
        tail_pid=$!
    fi
    wait "$QEMU_PID" || status=$?
    QEMU_PID=
    kill "$watch_pid" 2>/dev/null
    wait "$watch_pid" 2>/dev/null
    if [ -s "$OUT_DIR/.l1-locked-up" ]; then
        log "L1 locked up: $(cat "$OUT_DIR/.l1-locked-up"); stopped it (the environment: docs/nested.md)"
        return "$LOCKUP_STATUS"
    fi
    [ -z "$tail_pid" ] || wait "$tail_pid" || true
    collect_out "$OUT_DIR/.l1-serial1" || true
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        log "L1 ran out of time after ${timeout}s; the end of its console:"
        tail -n 20 "$OUT_DIR/l1-console.log" >&2
        return 124
    fi
    if [ ! -s "$OUT_DIR/.status" ]; then
        log "L1 ended (QEMU status $status) without reporting its command's status; the end of its console:"
        tail -n 20 "$OUT_DIR/l1-console.log" >&2
        # L1's own kernel died (seen once: "BUG: TASK stack guard page was hit" in a kiln vCPU
        # thread inside KVM, under TCG's emulated SVM): the environment, retried like a lockup.
        if grep -a -q '^\[ *[0-9.]*\] Kernel panic' "$OUT_DIR/l1-console.log"; then
            log "L1 crashed: $(grep -a -m 1 -o 'Kernel panic.*' "$OUT_DIR/l1-console.log" | tr -d '\r') (the environment: docs/nested.md)"
            return "$LOCKUP_STATUS"
        fi
        # QEMU runs L1 with -no-reboot, so status 0 here is L1 resetting itself, with nothing on
        # its console (seen in CI: in mid-case, after the L2 guest's checks had passed). No
        # process in L1 can reset L1's kernel: the environment, retried like a lockup.
        if [ "$status" -eq 0 ]; then
            log "L1 reset itself (QEMU status 0 under -no-reboot) before its command ended (the environment: docs/nested.md)"
            return "$LOCKUP_STATUS"
        fi
        return 1
    fi
    status=$(cat "$OUT_DIR/.status")
    log "L1 session: $(elapsed "$t")s (whole run $(elapsed "$t0")s); command status $status; output in $OUT_DIR"
    if [ "$status" -eq 77 ]; then
        grep -o 'SKIP: .*' "$OUT_DIR/l1-console.log" | head -n 1 | sed 's/\r$//'
    fi
    return "$status"
}

case "${1:-}" in
prepare)
    prepare
    echo "$NESTED_CACHE"
    ;;
run)
    shift
    status=0
    run "$@" || status=$?
    exit "$status"
    ;;
-h | --help | help) usage ;;
*)
    usage >&2
    exit 2
    ;;
esac
