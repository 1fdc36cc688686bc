#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then the installed files as a user meets them:
# kiln runs and prints its version, boots the installed hello guest through the installed
# example VM definition, `man kiln` (and the other pages) render, the completion loads, and
# kiln-exit is the static program guests copy.
. "$SOURCE_DIR/tests/integration/lib.sh"

PREFIX=$TEST_TMP/prefix
cmake --install "$BUILD_DIR" --prefix "$PREFIX" >"$TEST_TMP/install.log" 2>&1 ||
    fail "cmake --install failed: $(tail -n 20 "$TEST_TMP/install.log")"

for file in bin/kiln lib/kiln/kiln-exit lib/kiln/hello.elf \
    share/man/man1/kiln.1.gz share/man/man1/kiln-run.1.gz share/man/man1/kiln-test.1.gz \
    share/man/man1/kiln-ctl.1.gz share/man/man1/kiln-ps.1.gz share/man/man1/kiln-restore.1.gz share/man/man1/kiln-receive.1.gz \
    share/man/man1/kiln-snapshot.1.gz share/man/man5/kiln-vm.yaml.5.gz \
    share/bash-completion/completions/kiln \
    share/kiln/examples/hello.yaml share/kiln/examples/cpu-templates/x86-64-v2.yaml; do
    [ -s "$PREFIX/$file" ] || fail "cmake --install did not install $file: $(cat "$TEST_TMP/install.log")"
done
[ -x "$PREFIX/bin/kiln" ] || fail "installed bin/kiln is not executable"
[ -x "$PREFIX/lib/kiln/kiln-exit" ] || fail "installed kiln-exit is not executable"

KILN=$PREFIX/bin/kiln run_kiln "$TEST_TMP/out" "$TEST_TMP/err" --version
expect_status 0
grep -qE '^kiln [0-9.]+ \(commit [0-9a-z-]+\)$' "$TEST_TMP/out" ||
    fail "installed kiln --version: $(cat "$TEST_TMP/out" "$TEST_TMP/err")"
[ "$(cat "$TEST_TMP/out")" = "$("$BUILD_DIR/kiln" --version)" ] ||
    fail "installed kiln is not the build's: $(cat "$TEST_TMP/out")"

# Each page renders without a warning, and `man kiln` finds the installed page.
for page in man1/kiln.1 man1/kiln-run.1 man1/kiln-test.1 man1/kiln-ctl.1 man1/kiln-ps.1 man1/kiln-restore.1 man1/kiln-receive.1 \
    man1/kiln-snapshot.1 man5/kiln-vm.yaml.5; do
    text=$(zcat "$PREFIX/share/man/$page.gz" | groff -man -Tutf8 -ww 2>&1 >/dev/null) ||
        fail "groff cannot render $page"
    [ -z "$text" ] || fail "groff warns about the installed $page: $text"
done
MANPATH=$PREFIX/share/man MANPAGER=cat man kiln >"$TEST_TMP/man.txt" 2>&1 ||
    fail "man kiln failed: $(head -n 5 "$TEST_TMP/man.txt")"
expect_contains "$TEST_TMP/man.txt" "a small KVM hypervisor"
MANPATH=$PREFIX/share/man MANPAGER=cat man 5 kiln-vm.yaml >"$TEST_TMP/man5.txt" 2>&1 ||
    fail "man 5 kiln-vm.yaml failed: $(head -n 5 "$TEST_TMP/man5.txt")"

# The completion file, as bash-completion loads it.
bash -c ". '$PREFIX/share/bash-completion/completions/kiln' && complete -p kiln" >"$TEST_TMP/complete.txt" 2>&1 ||
    fail "the installed completion does not load: $(cat "$TEST_TMP/complete.txt")"

# kiln-exit is copied into guests' initramfs images, so it must need no libraries.
readelf -d "$PREFIX/lib/kiln/kiln-exit" | grep -q 'no dynamic section' ||
    fail "installed kiln-exit is not static: $(readelf -d "$PREFIX/lib/kiln/kiln-exit" | head -n 5)"

# The installed example finds the installed guest by itself (no KILN_GUEST_DIR), from any folder.
require_kvm
(
    cd "$TEST_TMP" || exit 1
    env -u KILN_GUEST_DIR "$PREFIX/bin/kiln" run "$PREFIX/share/kiln/examples/hello.yaml" \
        >"$TEST_TMP/hello.out" 2>"$TEST_TMP/hello.err" </dev/null
) || fail "installed kiln on the installed hello.yaml: status $?: $(cat "$TEST_TMP/hello.err")"
expect_contains "$TEST_TMP/hello.out" "Hello from the kiln guest kit"
echo "PASS: the installed kiln, man pages, completion, examples and guest files work from $PREFIX"
