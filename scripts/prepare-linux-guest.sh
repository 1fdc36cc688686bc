#!/usr/bin/env bash
# Builds kiln's Linux test guest from Debian packages (docs/linux-guest.md):
#   - the stock kernel of linux-image-cloud-amd64 (its versioned linux-image-6.1.0-*-cloud-amd64
#     package), fetched with `apt-get download`;
#   - the uncompressed ELF vmlinux, taken out of that bzImage by our own extractor (below), so
#     the guest does not spend minutes decompressing itself under emulated ring 0;
#   - a busybox-static initramfs whose /init prints a line and powers off.
# Outputs go to ${KILN_CACHE_DIR:-REPO/.cache}/linux-guest/ and are reused while they match the
# kernel package version apt offers. Runs unattended (CI=true, no stdin) as root on Debian 12.
#
# Usage: scripts/prepare-linux-guest.sh [--force] [--cache-dir DIR]
#   --force          rebuild even if the cache is up to date
#   --cache-dir DIR  use DIR/linux-guest instead of ${KILN_CACHE_DIR:-REPO/.cache}/linux-guest
# Environment: KILN_CACHE_DIR; KILN_LINUX_GUEST_PACKAGE (default linux-image-cloud-amd64: a
#   metapackage, or a versioned linux-image-6.1.0-N-cloud-amd64[-unsigned] package).
# On success it prints the outputs as KEY=PATH lines on stdout; progress goes to stderr.
set -euo pipefail

# Bump when what this script puts in the outputs changes, so old caches are rebuilt.
RECIPE=2

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_ROOT=${KILN_CACHE_DIR:-$REPO/.cache}
PACKAGE=${KILN_LINUX_GUEST_PACKAGE:-linux-image-cloud-amd64}
FORCE=0

log() { echo "prepare-linux-guest: $*" >&2; }
die() {
    echo "prepare-linux-guest: error: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case $1 in
    --force) FORCE=1 ;;
    --cache-dir)
        [ $# -ge 2 ] || die "--cache-dir needs a directory"
        CACHE_ROOT=$2
        shift
        ;;
    -h | --help)
        sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *) die "unknown argument '$1' (expected --force, --cache-dir DIR or --help)" ;;
    esac
    shift
done
OUT=$CACHE_ROOT/linux-guest

export DEBIAN_FRONTEND=noninteractive LC_ALL=C
IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

WORK=
cleanup() { [ -z "$WORK" ] || rm -rf "$WORK"; }
trap cleanup EXIT

SCRIPT_NAME=prepare-linux-guest
# shellcheck source=lib.sh
. "$REPO/scripts/lib.sh"

# --- host tools ---------------------------------------------------------------------------
# python3: the extractor and the cpio writer; lz4/xz-utils/zstd/gzip: kernel payload codecs;
# binutils: readelf; file: checks that busybox is static; cpio: lists the archive we wrote.
REQUIRED_PACKAGES="python3 cpio xz-utils zstd lz4 gzip binutils file"
manifest_value() { sed -n "s/^$1=//p" "$OUT/MANIFEST" 2>/dev/null | head -n 1; }

cache_complete() {
    local f
    for f in vmlinuz vmlinux initrd.cpio.gz VERSION MANIFEST; do
        [ -s "$OUT/$f" ] || return 1
    done
    [ "$(head -c 4 "$OUT/vmlinux" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] || return 1
    [ "$(manifest_value recipe)" = "$RECIPE" ]
}

print_outputs() {
    echo "vmlinuz=$OUT/vmlinuz"
    echo "vmlinux=$OUT/vmlinux"
    echo "initrd=$OUT/initrd.cpio.gz"
    echo "version=$OUT/VERSION"
}

# --- vmlinux out of a bzImage ---------------------------------------------------------------
# Our own extractor: finds the compressed kernel in the bzImage (from the boot header's
# payload_offset/payload_length when present, else by scanning for codec magics), decompresses
# it and accepts the result only if it is a complete x86-64 ELF.
extract_vmlinux() { # extract_vmlinux BZIMAGE OUT
    python3 - "$1" "$2" <<'PY'
import bz2, lzma, shutil, struct, subprocess, sys, zlib

src, dst = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()

def complete_elf(blob):
    """A whole little-endian x86-64 ELF: header, program and section tables all inside."""
    if len(blob) < 64 or blob[:4] != b"\x7fELF" or blob[4] != 2 or blob[5] != 1:
        return False
    (machine,) = struct.unpack_from("<H", blob, 18)
    phoff, shoff = struct.unpack_from("<QQ", blob, 32)
    phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", blob, 54)
    return (machine == 62 and phoff + phnum * phentsize <= len(blob)
            and shoff + shnum * shentsize <= len(blob))

def run_tool(argv, blob):
    if shutil.which(argv[0]) is None:
        raise RuntimeError(f"{argv[0]} is not installed")
    p = subprocess.run(argv, input=blob, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Trailing bytes after the stream make some tools exit non-zero after writing everything;
    # the ELF check below decides whether the output is usable.
    return p.stdout

def gunzip(b): return zlib.decompressobj(wbits=31).decompress(b)
def unxz(b): return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(b)
def unlzma(b): return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(b)
def bunzip2(b): return bz2.BZ2Decompressor().decompress(b)

CODECS = [  # (name, magic, decoder) - the kernel's CONFIG_KERNEL_* choices
    ("gzip", b"\x1f\x8b\x08", gunzip),
    ("xz", b"\xfd7zXZ\x00", unxz),
    ("zstd", b"\x28\xb5\x2f\xfd", lambda b: run_tool(["zstd", "-d", "-c", "-q"], b)),
    ("lz4", b"\x02\x21\x4c\x18", lambda b: run_tool(["lz4", "-d", "-c", "-q"], b)),
    ("lzo", b"\x89\x4c\x5a\x4f\x00\x0d\x0a\x1a\x0a", lambda b: run_tool(["lzop", "-d", "-c", "-q"], b)),
    ("bzip2", b"BZh", bunzip2),
    ("lzma", b"\x5d\x00\x00", unlzma),
]

def try_decode(blob, expected_size=None, verbose=True):
    for name, magic, decode in CODECS:
        if not blob.startswith(magic):
            continue
        try:
            out = decode(blob)
        except Exception as e:  # a false magic match, a corrupt stream, a missing tool
            if verbose:
                print(f"extract-vmlinux: {name} payload: {e}", file=sys.stderr)
            continue
        if complete_elf(out) and (expected_size is None or len(out) == expected_size):
            return name, out
    return None, None

def write(name, where, out):
    with open(dst, "wb") as f:
        f.write(out)
    print(f"extract-vmlinux: {name} payload at {where}: {len(data)} -> {len(out)} bytes",
          file=sys.stderr)
    sys.exit(0)

if complete_elf(data):
    write("uncompressed", "offset 0", data)

# Boot protocol >= 2.08: payload_offset (0x248) counts from the protected-mode code, which
# starts after (setup_sects + 1) * 512 bytes; the kernel build appends the uncompressed size as
# a little-endian u32 to the compressed stream, so the last 4 bytes of the payload are that.
if len(data) >= 0x250 and data[0x202:0x206] == b"HdrS":
    (version,) = struct.unpack_from("<H", data, 0x206)
    setup_sects = data[0x1F1] or 4
    if version >= 0x208:
        off, length = struct.unpack_from("<II", data, 0x248)
        start = (setup_sects + 1) * 512 + off
        payload = data[start:start + length]
        if length > 4 and len(payload) == length:
            (size,) = struct.unpack_from("<I", payload, length - 4)
            for blob, expect in ((payload[:-4], size), (payload, None)):
                name, out = try_decode(blob, expect)
                if out is not None:
                    write(name, f"0x{start:x} (boot header, protocol {version >> 8}.{version & 0xff:02d})", out)
        print("extract-vmlinux: boot-header payload did not decode; scanning", file=sys.stderr)

# Fallback: every occurrence of every codec magic, in file order.
hits = []
for name, magic, _ in CODECS:
    pos = data.find(magic)
    while pos != -1 and len(hits) < 256:
        hits.append(pos)
        pos = data.find(magic, pos + 1)
for pos in sorted(set(hits)):
    name, out = try_decode(data[pos:], verbose=False)
    if out is not None:
        write(name, f"0x{pos:x} (magic scan)", out)

sys.exit(f"extract-vmlinux: no compressed ELF kernel found in {src}")
PY
}

# --- the initramfs --------------------------------------------------------------------------
# Written as a newc cpio by scripts/cpio.py from a manifest rather than `cpio -o` from a staging
# tree, so that /dev/console (needed before devtmpfs is mounted) exists without root and the
# archive is byte-for-byte reproducible (fixed mtime, uid/gid 0).
# shellcheck disable=SC2016 # $(...) is for the guest's shell
INIT_SCRIPT='#!/bin/sh
# /init of the kiln Linux test guest (scripts/prepare-linux-guest.sh).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "kiln-linux-guest: init running"
echo "kiln-linux-guest: kernel $(uname -r); cmdline: $(cat /proc/cmdline)"
poweroff -f
# poweroff -f does not return when it works; if it did, end the VM another way.
reboot -f
'

build_initramfs() { # build_initramfs BUSYBOX OUT.cpio.gz
    local busybox=$1 out=$2
    file -L "$busybox" | grep -Eq 'statically linked|static-pie linked' ||
        die "$busybox is not a static binary: $(file -L "$busybox")"
    printf '%s' "$INIT_SCRIPT" >"$WORK/init"
    { busybox_manifest "$busybox" && echo "file init $WORK/init 755"; } |
        python3 "$REPO/scripts/cpio.py" "${out%.gz}" || die "cannot write the initramfs"
    cpio -it --quiet <"${out%.gz}" >"$WORK/initrd.list" || die "cpio cannot read the initramfs"
    if ! grep -qx init "$WORK/initrd.list" || ! grep -qx bin/sh "$WORK/initrd.list"; then
        die "the initramfs lacks /init or /bin/sh"
    fi
    gzip -n -9 -f "${out%.gz}"
}

# Sets BUSYBOX to a static busybox: the installed busybox-static's, else one from
# `apt-get download busybox-static` (not installed: it would replace a host's dynamic busybox).
find_busybox() {
    if installed busybox-static && [ -x /bin/busybox ]; then
        BUSYBOX=/bin/busybox
        BUSYBOX_VERSION=$(dpkg-query -W -f='${Version}' busybox-static)
        return 0
    fi
    if ! apt-cache show busybox-static >/dev/null 2>&1 && [ "$IS_ROOT" -eq 1 ]; then
        apt_update_once
    fi
    download "$WORK/bbdeb" busybox-static
    dpkg-deb -x "$WORK"/bbdeb/busybox-static_*.deb "$WORK/bb" || die "cannot unpack busybox-static"
    BUSYBOX=$WORK/bb/bin/busybox
    BUSYBOX_VERSION=$(dpkg-deb -f "$WORK"/bbdeb/busybox-static_*.deb Version)
}

# --- main -----------------------------------------------------------------------------------
# shellcheck disable=SC2086
ensure_packages $REQUIRED_PACKAGES

KPKG=''
KVER=''
if ! resolve_kernel_package "$PACKAGE"; then
    if cache_complete; then
        log "apt cannot tell the current kernel version (no package lists, not root);" \
            "using the cached $(cat "$OUT/VERSION")"
        print_outputs
        exit 0
    fi
    die "apt has no package lists for '$PACKAGE' and only root can run apt-get update;" \
        "run: sudo apt-get update"
fi

if [ "$FORCE" -eq 0 ] && cache_complete && [ "$(cat "$OUT/VERSION")" = "$KVER" ] &&
    [ "$(manifest_value package)" = "$KPKG" ]; then
    log "up to date: $KPKG $KVER in $OUT"
    print_outputs
    exit 0
fi

log "building the Linux test guest from $KPKG $KVER into $OUT"
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kiln-linux-guest.XXXXXX")
chmod 755 "$WORK"

t=$(now)
download "$WORK/deb" "$KPKG=$KVER"
deb=$(ls "$WORK"/deb/*.deb)
T_DOWNLOAD=$(elapsed "$t")
log "downloaded $(basename "$deb") ($(stat -c %s "$deb") bytes) in ${T_DOWNLOAD}s"

t=$(now)
mkdir -p "$WORK/root"
# Only /boot is needed: stream the data archive and keep that directory (same as dpkg-deb -x
# restricted to ./boot, without writing ~200 MB of modules).
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$WORK/root" --wildcards './boot/*' ||
    die "cannot unpack /boot from $deb"
set -- "$WORK"/root/boot/vmlinuz-*
if [ $# -ne 1 ] || [ ! -f "$1" ]; then die "$deb has no single /boot/vmlinuz-*"; fi
VMLINUZ_SRC=$1
KRELEASE=${VMLINUZ_SRC##*/vmlinuz-}
T_UNPACK=$(elapsed "$t")
log "unpacked /boot/vmlinuz-$KRELEASE in ${T_UNPACK}s: $(file -b "$VMLINUZ_SRC" | cut -c1-60)"

t=$(now)
extract_vmlinux "$VMLINUZ_SRC" "$WORK/vmlinux" || die "cannot extract vmlinux from $VMLINUZ_SRC"
readelf -h "$WORK/vmlinux" >"$WORK/elf.txt" 2>&1 || die "extracted vmlinux is not an ELF file"
if ! grep -Eq 'Type: +EXEC' "$WORK/elf.txt" || ! grep -q 'X86-64' "$WORK/elf.txt"; then
    die "extracted vmlinux is not an x86-64 executable ELF: $(cat "$WORK/elf.txt")"
fi
T_EXTRACT=$(elapsed "$t")
log "extracted vmlinux ($(stat -c %s "$WORK/vmlinux") bytes) in ${T_EXTRACT}s"

t=$(now)
find_busybox
build_initramfs "$BUSYBOX" "$WORK/initrd.cpio.gz"
T_INITRD=$(elapsed "$t")
log "built initrd.cpio.gz ($(stat -c %s "$WORK/initrd.cpio.gz") bytes, busybox-static" \
    "$BUSYBOX_VERSION) in ${T_INITRD}s"

cat >"$WORK/MANIFEST" <<EOF
recipe=$RECIPE
package=$KPKG
version=$KVER
kernel_release=$KRELEASE
busybox_static=$BUSYBOX_VERSION
vmlinuz_sha256=$(sha256sum "$VMLINUZ_SRC" | cut -d' ' -f1)
vmlinux_sha256=$(sha256sum "$WORK/vmlinux" | cut -d' ' -f1)
initrd_sha256=$(sha256sum "$WORK/initrd.cpio.gz" | cut -d' ' -f1)
seconds_download=$T_DOWNLOAD
seconds_unpack=$T_UNPACK
seconds_extract=$T_EXTRACT
seconds_initramfs=$T_INITRD
EOF

# Replace the outputs; VERSION goes last, so an interrupted run never looks up to date.
rm -f "$OUT/VERSION"
cp "$VMLINUZ_SRC" "$WORK/vmlinuz"
cp "$WORK"/root/boot/config-"$KRELEASE" "$WORK/config" 2>/dev/null || true
for f in vmlinuz vmlinux initrd.cpio.gz config MANIFEST; do
    if [ -f "$WORK/$f" ]; then mv -f "$WORK/$f" "$OUT/$f"; fi
done
echo "$KVER" >"$OUT/VERSION.tmp"
mv -f "$OUT/VERSION.tmp" "$OUT/VERSION"

log "done: $KPKG $KVER (kernel $KRELEASE)"
print_outputs
