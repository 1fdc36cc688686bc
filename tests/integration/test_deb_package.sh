#!/usr/bin/env bash
# The Debian package in a clean root: a root with only dpkg's database refuses it (its Depends
# name what kiln links); a root holding just those Depends (and theirs), unpacked from Debian's
# own packages, takes it, and there the installed kiln prints its version and boots the
# installed hello guest. The package is $KILN_DEB (scripts/dev.sh passes scripts/deb.sh's) or
# one made here from the build with cpack. Why not debootstrap: docs/install.md.
. "$SOURCE_DIR/tests/integration/lib.sh"

[ "$(id -u)" -eq 0 ] || skip "needs root (dpkg --root, chroot, mknod)"
for tool in dpkg dpkg-deb apt-get chroot cpack; do
    command -v "$tool" >/dev/null || skip "no $tool"
done

deb=${KILN_DEB:-}
if [ -z "$deb" ] && ! ldd "$KILN" 2>/dev/null | grep -q '=>'; then
    # The package's kiln links Debian's shared libraries (scripts/deb.sh, KILN_STATIC=OFF), and
    # what this test checks are the Depends those give; this build's kiln is static.
    skip "this build's kiln is static; test scripts/deb.sh's package: KILN_DEB=\$(scripts/deb.sh | tail -n 1)"
fi
if [ -z "$deb" ]; then
    cpack -G DEB --config "$BUILD_DIR/CPackConfig.cmake" -B "$TEST_TMP/package" \
        >"$TEST_TMP/cpack.log" 2>&1 || fail "cpack -G DEB failed: $(tail -n 20 "$TEST_TMP/cpack.log")"
    deb=$(echo "$TEST_TMP"/package/kiln_*.deb)
fi
[ -f "$deb" ] || fail "no package: $deb"
echo "package: $deb"

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = kiln ] || fail "Package: $(field Package)"
depends=$(field Depends)
for needed in libc6 libuv1 libyaml-0-2; do
    grep -qE "(^|, )$needed( |,|\$)" <<<"$depends" || fail "Depends lacks $needed: $depends"
done
echo "Depends: $depends"

# new_root DIR: an empty root with an empty dpkg database.
new_root() {
    mkdir -p "$1/var/lib/dpkg/info" "$1/var/lib/dpkg/updates" "$1/var/lib/dpkg/triggers"
    touch "$1/var/lib/dpkg/status" "$1/var/lib/dpkg/available"
}

# 1. Without its Depends, dpkg refuses to configure it and names what is missing.
new_root "$TEST_TMP/bare"
if dpkg --root="$TEST_TMP/bare" -i "$deb" >"$TEST_TMP/bare.log" 2>&1; then
    fail "dpkg installed kiln into a root without libuv1 or libyaml-0-2: $(cat "$TEST_TMP/bare.log")"
fi
expect_contains "$TEST_TMP/bare.log" "dependency problems"
for needed in libuv1 libyaml-0-2; do
    expect_contains "$TEST_TMP/bare.log" "depends on $needed"
done

# 2. A root with the Depends, and theirs, from Debian's packages (apt-get download, kept in
# the cache), unpacked and recorded in dpkg's database as a real install would.
debs=${KILN_CACHE_DIR:-$SOURCE_DIR/.cache}/deb-root
mkdir -p "$debs"
ROOT=$TEST_TMP/root
new_root "$ROOT"
# names_of "a (>= 1), b | c, d:any": a b d (the first of alternatives, no versions).
names_of() { tr ',' '\n' <<<"$1" | sed -E 's/\|.*//; s/\(.*\)//; s/:any//; s/ //g' | grep -v '^$'; }
queue=$(names_of "$depends")
done_names=" "
while [ -n "$queue" ]; do
    name=$(head -n 1 <<<"$queue")
    queue=$(tail -n +2 <<<"$queue")
    [[ $done_names == *" $name "* ]] && continue
    done_names+="$name "
    file=$(find "$debs" -name "${name}_*.deb" | head -n 1)
    if [ -z "$file" ]; then
        (cd "$debs" && apt-get download "$name" >"$TEST_TMP/download.log" 2>&1) ||
            skip "cannot download Debian's $name (apt-get download): $(tail -n 2 "$TEST_TMP/download.log")"
        file=$(find "$debs" -name "${name}_*.deb" | head -n 1)
    fi
    dpkg-deb -x "$file" "$ROOT" || fail "cannot unpack $file"
    list=$name
    [ "$(dpkg-deb -f "$file" Multi-Arch)" = same ] && list=$name:$(dpkg-deb -f "$file" Architecture)
    dpkg-deb --fsys-tarfile "$file" | tar -t | sed -E 's|^\./$|/.|; s|^\./|/|; s|(.)/$|\1|' \
        >"$ROOT/var/lib/dpkg/info/$list.list"
    {
        echo "Package: $name"
        echo "Status: install ok installed"
        dpkg-deb -f "$file" | grep -v '^Package:'
        echo
    } >>"$ROOT/var/lib/dpkg/status"
    queue+=$'\n'$(names_of "$(dpkg-deb -f "$file" Pre-Depends), $(dpkg-deb -f "$file" Depends)")
done
echo "clean root: $done_names"
dpkg --root="$ROOT" -i "$deb" >"$TEST_TMP/install.log" 2>&1 ||
    fail "dpkg --root -i failed with the Depends present: $(cat "$TEST_TMP/install.log")"
[ "$(dpkg-query --root="$ROOT" -W -f '${Status}' kiln)" = "install ok installed" ] ||
    fail "kiln is not installed in the root: $(dpkg-query --root="$ROOT" -W -f '${Status}' kiln)"
# What libc-bin's trigger does on a real system: the loader's cache of the root's libraries.
ldconfig -r "$ROOT" || fail "ldconfig -r $ROOT failed"

in_root() { chroot "$ROOT" "$@"; }
in_root /usr/bin/kiln --version >"$TEST_TMP/version" 2>&1 ||
    fail "the installed kiln does not run in the clean root: $(cat "$TEST_TMP/version")"
version=$(field Version)
grep -qE "^kiln ${version//./\\.} \(commit [0-9a-z-]+\)\$" "$TEST_TMP/version" ||
    fail "kiln --version ($(cat "$TEST_TMP/version")) does not match the package's version $version"
cat "$TEST_TMP/version"

require_kvm
mkdir -p "$ROOT/dev"
read -r major minor < <(stat -c '%t %T' /dev/kvm)
mknod "$ROOT/dev/kvm" c $((16#$major)) $((16#$minor)) || fail "cannot make $ROOT/dev/kvm"
mknod "$ROOT/dev/null" c 1 3 || fail "cannot make $ROOT/dev/null"
timeout --kill-after=10 60 chroot "$ROOT" /usr/bin/kiln run /usr/share/kiln/examples/hello.yaml \
    >"$TEST_TMP/hello.out" 2>"$TEST_TMP/hello.err" </dev/null ||
    fail "the installed kiln did not boot the installed hello guest (status $?): $(cat "$TEST_TMP/hello.err")"
expect_contains "$TEST_TMP/hello.out" "Hello from the kiln guest kit"
echo "PASS: $deb: refused without its Depends; with them alone it installs, kiln runs and boots hello"
