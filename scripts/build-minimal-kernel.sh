#!/usr/bin/env bash
# Builds kiln's minimal Linux kernel (docs/minimal-kernel.md): Debian's linux-source-6.1,
# `make ARCH=x86_64 tinyconfig` plus the fragment scripts/minimal-kernel.config (virtio-mmio
# block/net/console/rng built in, serial console, ACPI, SMP, PVH entry), then vmlinux and
# bzImage. kiln boots the uncompressed ELF vmlinux through its PVH note.
#
# Outputs are cached outside the source tree, keyed by a hash of the fragment, the installed
# linux-source-6.1 version and this script:
#   ${KILN_CACHE_DIR:-REPO/.cache}/minimal-kernel/<key>/{vmlinux,bzImage,config,MANIFEST}
# and minimal-kernel/current is a symlink to the last key built or found up to date. A run
# whose key is already built prints "up to date" and builds nothing. Runs unattended
# (CI=true, no stdin) as root on Debian 12, installing what is missing with apt-get.
#
# Usage: scripts/build-minimal-kernel.sh [--force] [--keep-build] [--cache-dir DIR]
#   --force          rebuild even if the cache is up to date
#   --keep-build     keep the unpacked, built source tree (CACHE/minimal-kernel/build-<key>)
#                    for incremental work on it; by default it is deleted after a good build
#   --cache-dir DIR  use DIR/minimal-kernel instead of ${KILN_CACHE_DIR:-REPO/.cache}/...
# Environment: KILN_CACHE_DIR; KILN_KERNEL_JOBS (make -j, default: nproc).
# On success it prints the path of vmlinux (one line) on stdout; progress goes to stderr.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF=$REPO/scripts/$(basename "${BASH_SOURCE[0]}")
FRAGMENT=$REPO/scripts/minimal-kernel.config
CACHE_ROOT=${KILN_CACHE_DIR:-$REPO/.cache}
SOURCE_PACKAGE=linux-source-6.1
TARBALL=/usr/src/linux-source-6.1.tar.xz
JOBS=${KILN_KERNEL_JOBS:-$(nproc 2>/dev/null || echo 2)}
FORCE=0
KEEP_BUILD=0

log() { echo "build-minimal-kernel: $*" >&2; }
die() {
    echo "build-minimal-kernel: error: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case $1 in
    --force) FORCE=1 ;;
    --keep-build) KEEP_BUILD=1 ;;
    --cache-dir)
        [ $# -ge 2 ] || die "--cache-dir needs a directory"
        CACHE_ROOT=$2
        shift
        ;;
    -h | --help)
        sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *) die "unknown argument '$1' (expected --force, --keep-build, --cache-dir DIR or --help)" ;;
    esac
    shift
done
[ -f "$FRAGMENT" ] || die "config fragment $FRAGMENT is missing"
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "KILN_KERNEL_JOBS='$JOBS' is not a positive number"
OUT_ROOT=$CACHE_ROOT/minimal-kernel

export DEBIAN_FRONTEND=noninteractive LC_ALL=C
IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- host packages --------------------------------------------------------------------------
# linux-source-6.1: the source tarball; build-essential: gcc, make; bc, bison, flex: the kernel
# build's own tools; libelf-dev: objtool (x86-64 selects CONFIG_OBJTOOL even in tinyconfig);
# cpio, xz-utils: the tarball and the bzImage payload; python3: kconfig/kbuild helper scripts.
# No libssl-dev: the fragment has no modules, module signing or trusted keys.
REQUIRED_PACKAGES="$SOURCE_PACKAGE build-essential bc bison flex libelf-dev cpio xz-utils python3"
SCRIPT_NAME=build-minimal-kernel
# shellcheck source=lib.sh
. "$REPO/scripts/lib.sh"

# All packages are checked up front (one line naming every missing one when not root), even
# though only the source package's version is needed to find an up-to-date cache.
# shellcheck disable=SC2086
ensure_packages $REQUIRED_PACKAGES
[ -f "$TARBALL" ] || die "$SOURCE_PACKAGE is installed but $TARBALL is missing"
SOURCE_VERSION=$(dpkg-query -W -f='${Version}' "$SOURCE_PACKAGE")

# --- the cache key ----------------------------------------------------------------------------
KEY=$({
    printf 'fragment\n'
    cat "$FRAGMENT"
    printf 'source %s %s\n' "$SOURCE_PACKAGE" "$SOURCE_VERSION"
    printf 'script\n'
    cat "$SELF"
} | sha256sum | cut -c1-16)
OUT=$OUT_ROOT/$KEY

cache_complete() {
    local f
    for f in vmlinux bzImage config MANIFEST; do
        [ -s "$OUT/$f" ] || return 1
    done
    [ "$(head -c 4 "$OUT/vmlinux" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]
}

point_current_at_key() {
    ln -sfn "$KEY" "$OUT_ROOT/current.tmp.$$" && mv -Tf "$OUT_ROOT/current.tmp.$$" "$OUT_ROOT/current"
}

report_up_to_date() {
    log "up to date: $(sed -n 's/^kernel_release=//p' "$OUT/MANIFEST") from $SOURCE_PACKAGE" \
        "$SOURCE_VERSION, key $KEY in $OUT"
    point_current_at_key 2>/dev/null || true
    echo "$OUT/vmlinux"
    exit 0
}
if [ "$FORCE" -eq 0 ] && cache_complete; then
    report_up_to_date
fi

# One build per key at a time (e.g. `scripts/dev.sh setup` and a test both asking for it): a
# second run waits for the first and then finds the cache up to date.
mkdir -p "$OUT_ROOT"
exec 9>"$OUT_ROOT/.lock-$KEY"
if ! flock -n 9; then
    log "another run is building key $KEY; waiting for it"
    flock 9
    if [ "$FORCE" -eq 0 ] && cache_complete; then
        report_up_to_date
    fi
fi

# --- unpack ---------------------------------------------------------------------------------
BUILD=$OUT_ROOT/build-$KEY
TREE=$BUILD/$SOURCE_PACKAGE
log "building $SOURCE_PACKAGE $SOURCE_VERSION + $(basename "$FRAGMENT") (key $KEY) in $BUILD," \
    "make -j$JOBS; several minutes"
T_START=$(now)
t=$(now)
if [ -f "$TREE/.kiln-unpacked" ]; then
    log "reusing the unpacked tree $TREE"
else
    rm -rf "$BUILD"
    mkdir -p "$BUILD"
    tar -xJf "$TARBALL" -C "$BUILD" || die "cannot unpack $TARBALL into $BUILD"
    [ -f "$TREE/Makefile" ] || die "$TARBALL did not unpack to $TREE"
    touch "$TREE/.kiln-unpacked"
fi
T_UNPACK=$(elapsed "$t")
log "unpacked in ${T_UNPACK}s"

# Fixed identification strings in `Linux version ...` (no build user, host or date).
export KBUILD_BUILD_USER=kiln KBUILD_BUILD_HOST=kiln
export KBUILD_BUILD_TIMESTAMP="$SOURCE_PACKAGE $SOURCE_VERSION"
kmake() { make -C "$TREE" ARCH=x86_64 "$@"; }

# --- configure: tinyconfig + the fragment, then check that every line of the fragment held ----
t=$(now)
kmake tinyconfig >"$BUILD/configure.log" 2>&1 ||
    die "make tinyconfig failed: $(tail -n 5 "$BUILD/configure.log")"
(cd "$TREE" && ARCH=x86_64 ./scripts/kconfig/merge_config.sh -m .config "$FRAGMENT") \
    >>"$BUILD/configure.log" 2>&1 || die "merge_config.sh failed: $(tail -n 5 "$BUILD/configure.log")"
kmake olddefconfig >>"$BUILD/configure.log" 2>&1 ||
    die "make olddefconfig failed: $(tail -n 5 "$BUILD/configure.log")"

# kconfig silently drops a symbol whose dependencies are not met (and keeps one that something
# else selects): every line of the fragment must be in the final .config exactly as written.
wrong=()
while IFS= read -r line; do
    if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
        got=$(grep -E "^${BASH_REMATCH[1]}=" "$TREE/.config" || true)
        [ "$got" = "$line" ] || wrong+=("$line (got: ${got:-not set})")
    elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
        got=$(grep -E "^${BASH_REMATCH[1]}=" "$TREE/.config" || true)
        [ -z "$got" ] || wrong+=("$line (got: $got)")
    fi
done <"$FRAGMENT"
if [ "${#wrong[@]}" -gt 0 ]; then
    {
        echo "build-minimal-kernel: error: ${#wrong[@]} line(s) of $FRAGMENT did not hold after" \
            "make olddefconfig (a missing dependency, or a select):"
        printf '  %s\n' "${wrong[@]}"
        echo "  final config: $TREE/.config"
    } >&2
    exit 1
fi
T_CONFIG=$(elapsed "$t")
log "configured in ${T_CONFIG}s: every line of the fragment holds"

# --- build ----------------------------------------------------------------------------------
t=$(now)
if ! kmake -j"$JOBS" vmlinux bzImage >"$BUILD/build.log" 2>&1; then
    grep -E -m 20 'error|Error' "$BUILD/build.log" >&2 || true
    die "kernel build failed (full log: $BUILD/build.log)"
fi
T_BUILD=$(elapsed "$t")
KRELEASE=$(kmake -s kernelrelease 2>/dev/null)
# kiln enters through the PVH note (XEN_ELFNOTE_PHYS32_ENTRY, type 0x12).
readelf -n "$TREE/vmlinux" 2>/dev/null | grep -qE '^[[:space:]]*Xen[[:space:]].*(\(0x00000012\)|PHYS32_ENTRY)' ||
    die "$TREE/vmlinux has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)"
log "built vmlinux and bzImage ($KRELEASE) in ${T_BUILD}s"

# --- into the cache: a staging directory renamed into place, so no half-written entry --------
STAGE=$OUT_ROOT/.stage-$KEY.$$
rm -rf "$STAGE"
mkdir -p "$STAGE"
cp "$TREE/vmlinux" "$STAGE/vmlinux"
cp "$TREE/arch/x86/boot/bzImage" "$STAGE/bzImage"
cp "$TREE/.config" "$STAGE/config"
cat >"$STAGE/MANIFEST" <<MANIFEST
key=$KEY
source_package=$SOURCE_PACKAGE
source_version=$SOURCE_VERSION
kernel_release=$KRELEASE
fragment_sha256=$(sha256sum "$FRAGMENT" | cut -d' ' -f1)
script_sha256=$(sha256sum "$SELF" | cut -d' ' -f1)
compiler=$(gcc --version | head -n 1)
jobs=$JOBS
vmlinux_bytes=$(stat -c %s "$STAGE/vmlinux")
bzImage_bytes=$(stat -c %s "$STAGE/bzImage")
vmlinux_sha256=$(sha256sum "$STAGE/vmlinux" | cut -d' ' -f1)
seconds_unpack=$T_UNPACK
seconds_configure=$T_CONFIG
seconds_build=$T_BUILD
MANIFEST
rm -rf "$OUT"
mv -T "$STAGE" "$OUT"
point_current_at_key

if [ "$KEEP_BUILD" -eq 1 ]; then
    log "kept the build tree $TREE (--keep-build)"
else
    rm -rf "$BUILD"
fi
log "done in $(elapsed "$T_START")s: kernel $KRELEASE, key $KEY in $OUT"
echo "$OUT/vmlinux"
