# shellcheck shell=bash
# Shared by the set-up scripts (sourced, not run): Debian package checks and installation.
# The sourcing script defines log MSG, die MSG, IS_ROOT (1 when root) and SCRIPT_NAME.
# Also: resolve_kernel_package (which linux-image a metapackage means), download (apt-get
# download into a folder) and busybox_manifest (an initramfs's busybox, for scripts/cpio.py).

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q ' ok installed$'; }

APT_UPDATED=0
apt_update_once() {
    [ "$APT_UPDATED" -eq 0 ] || return 0
    APT_UPDATED=1
    log "apt-get update"
    apt-get update -q >&2 </dev/null || die "apt-get update failed"
}

# ensure_packages PKG...: installs the missing ones as root; otherwise names them all in one
# line with the command to run, and exits 1.
ensure_packages() {
    local missing="" p
    for p in "$@"; do
        installed "$p" || missing="$missing $p"
    done
    [ -n "$missing" ] || return 0
    missing=${missing# }
    if [ "$IS_ROOT" -ne 1 ]; then
        echo "$SCRIPT_NAME: missing packages: $missing; run: sudo apt-get install -y $missing" >&2
        exit 1
    fi
    apt_update_once
    log "apt-get install $missing"
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    apt-get install -y -q --no-install-recommends $missing >&2 </dev/null ||
        die "apt-get install $missing failed"
}

# resolve_kernel_package PACKAGE: sets KPKG (the versioned linux-image package that PACKAGE, a
# metapackage or a versioned image, stands for) and KVER (its version); returns 1 when apt
# cannot tell (no package lists and not root).
resolve_kernel_package() {
    local PACKAGE=$1 cand deps
    candidate() { apt-cache policy "$1" 2>/dev/null | awk '/^ *Candidate:/ { print $2; exit }'; }
    cand=$(candidate "$PACKAGE")
    if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
        [ "$IS_ROOT" -eq 1 ] || return 1
        apt_update_once
        cand=$(candidate "$PACKAGE")
        if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
            die "apt has no installable version of '$PACKAGE'"
        fi
    fi
    if [[ $PACKAGE =~ ^linux-image-[0-9].*-amd64(-unsigned)?$ ]]; then
        KPKG=$PACKAGE
        KVER=$cand
        return 0
    fi
    # The metapackage's candidate depends on exactly one versioned image, e.g.
    # "Depends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)".
    deps=$(apt-cache show "$PACKAGE=$cand" | sed -n 's/^Depends: //p' | head -n 1 | sed 's/[,|]/\n/g')
    KPKG=$(sed -n 's/^ *\(linux-image-[0-9][^ ]*-amd64\(-unsigned\)\{0,1\}\)\( .*\)\{0,1\}$/\1/p' \
        <<<"$deps" | head -n 1)
    [ -n "$KPKG" ] || die "cannot find the versioned linux-image dependency of $PACKAGE=$cand"
    KVER=$(sed -n "s/^ *$KPKG (= \([^)]*\)).*/\1/p" <<<"$deps" | head -n 1)
    [ -n "$KVER" ] || KVER=$(candidate "$KPKG")
    if [ -z "$KVER" ] || [ "$KVER" = "(none)" ]; then
        die "apt has no installable version of '$KPKG'"
    fi
}

# download DIR PKG[=VERSION]...: apt-get download into DIR (created).
download() {
    local dir=$1
    shift
    mkdir -p "$dir"
    # apt fetches as the _apt user when run as root; let it write here (no "unsandboxed" noise).
    if [ "$IS_ROOT" -eq 1 ] && id _apt >/dev/null 2>&1; then
        chown _apt "$dir"
    fi
    (cd "$dir" && apt-get download -q "$@" >&2) || die "apt-get download $* failed"
}

# busybox_manifest BUSYBOX: scripts/cpio.py lines for a static BUSYBOX at /bin/busybox with a
# link for every applet, the usual top folders, and the device nodes a kernel needs before
# devtmpfs is mounted (/dev/console, /dev/null).
busybox_manifest() {
    local applet folder
    for folder in bin sbin usr usr/bin usr/sbin dev proc sys root etc run mnt; do
        echo "dir $folder"
    done
    echo "dir tmp 1777"
    echo "dev dev/console c 5 1 600"
    echo "dev dev/null c 1 3 666"
    echo "file bin/busybox $1 755"
    for applet in $("$1" --list-full | sort); do
        case $applet in bin/busybox | linuxrc) ;; *) echo "link $applet /bin/busybox" ;; esac
    done
}
