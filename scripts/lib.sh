# Shared by the set-up scripts (sourced, not run): Debian package checks and installation.
# The sourcing script defines log MSG, die MSG, IS_ROOT (1 when root) and SCRIPT_NAME.

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
