#!/usr/bin/env bash
# Builds kiln's Debian package from this tree: a Release build with gcc in build-deb/ of only
# what the package holds (kiln, the man pages, and from the guest kit kiln-exit and hello.elf),
# then `cpack -G DEB`. Prints the package's path as its last line. KILN_WERROR=ON (as
# scripts/dev.sh sets it) makes any compiler warning an error. See docs/install.md.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${KILN_BUILD_DEB_DIR:-$REPO/build-deb}
JOBS=$(nproc 2>/dev/null || echo 2)

# CMAKE_SKIP_INSTALL_ALL_DEPENDENCY: cpack installs what was built here instead of building
# every target (the unit tests and the rest of the guest kit) first. KILN_STATIC=OFF: the
# package links Debian's shared libraries, as Debian's policy asks, so their security updates
# reach kiln (a build from source is static: docs/install.md).
CC=${CC:-gcc} cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DKILN_STATIC=OFF \
    -DKILN_WERROR="${KILN_WERROR:-OFF}" -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON >/dev/null
cmake --build "$BUILD" -j "$JOBS" --target kiln kiln-exit hello.elf kiln_man >&2
rm -rf "$BUILD/package"
cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$BUILD/package" >&2
deb=$(echo "$BUILD"/package/kiln_*.deb)
[ -f "$deb" ] || {
    echo "scripts/deb.sh: cpack made no package in $BUILD/package" >&2
    exit 1
}
echo "$deb"
