#!/usr/bin/env bash
# The man pages (docs/man/, written in roff) against the binary and the markdown references:
# every command `kiln --help` lists, every flag `kiln run|test|ctl|ps|restore|receive|snapshot --help`
# print and every key `kiln config` writes is in the man page and in docs/*.md; no man page
# names a flag the binary does not have; and groff renders each page without a warning.
. "$SOURCE_DIR/tests/integration/lib.sh"

MAN=$SOURCE_DIR/docs/man
DOCS=$SOURCE_DIR/docs
# A roff source as plain words: \- is a hyphen, font changes (\fB, \fR, ...) go.
plain() { sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$1"; }
flags_of() { grep -oE -- '(^|[^a-z-])--?[a-zA-Z][a-z-]*' | grep -oE -- '--?[a-zA-Z][a-z-]*' | sort -u; }
# has_word FILE WORD: WORD in FILE, not as part of a longer flag or key.
has_word() { grep -qE -- "(^|[^a-zA-Z0-9-])$2([^a-zA-Z0-9-]|\$)" "$1"; }

problems=0
complain() {
    echo "drift: $*" >&2
    problems=$((problems + 1))
}

for page in kiln.1 kiln-run.1 kiln-test.1 kiln-ctl.1 kiln-ps.1 kiln-restore.1 kiln-receive.1 kiln-snapshot.1 \
    kiln-vm.yaml.5; do
    [ -f "$MAN/$page" ] || fail "no man page $MAN/$page"
    plain "$MAN/$page" >"$TEST_TMP/$page.txt"
    warnings=$(groff -man -ww -z "$MAN/$page" 2>&1) || fail "groff failed on $page: $warnings"
    [ -z "$warnings" ] || complain "groff warns about $page: $warnings"
done

# check_flags COMMAND_HELP_FILE PAGE DOC: both ways between a --help text and a man page.
check_flags() {
    local help=$1 page=$2 doc=$3 flag
    for flag in $(flags_of <"$help" | grep -vx -- --flag); do # "--flag VALUE" explains the form
        has_word "$TEST_TMP/$page.txt" "$flag" || complain "$flag (in its --help) is not in $page"
        has_word "$doc" "$flag" || complain "$flag (in its --help) is not in ${doc#"$SOURCE_DIR"/}"
    done
    # Long flags only (a single dash is often just a hyphen); every command takes --help.
    for flag in $(flags_of <"$TEST_TMP/$page.txt" | grep -- '^--' | grep -vx -- --help); do
        has_word "$help" "$flag" || complain "$page names $flag, which its --help does not"
    done
}
"$KILN" run --help >"$TEST_TMP/run.help" || fail "kiln run --help failed"
"$KILN" test --help >"$TEST_TMP/test.help" || fail "kiln test --help failed"
check_flags "$TEST_TMP/run.help" kiln-run.1 "$DOCS/cli.md"
check_flags "$TEST_TMP/test.help" kiln-test.1 "$DOCS/kiln-test.md"
"$KILN" ctl --help >"$TEST_TMP/ctl.help" || fail "kiln ctl --help failed"
"$KILN" ps --help >"$TEST_TMP/ps.help" || fail "kiln ps --help failed"
check_flags "$TEST_TMP/ctl.help" kiln-ctl.1 "$DOCS/cli.md"
check_flags "$TEST_TMP/ps.help" kiln-ps.1 "$DOCS/cli.md"
"$KILN" restore --help >"$TEST_TMP/restore.help" || fail "kiln restore --help failed"
check_flags "$TEST_TMP/restore.help" kiln-restore.1 "$DOCS/cli.md"
"$KILN" receive --help >"$TEST_TMP/receive.help" || fail "kiln receive --help failed"
check_flags "$TEST_TMP/receive.help" kiln-receive.1 "$DOCS/cli.md"
"$KILN" snapshot --help >"$TEST_TMP/snapshot.help" || fail "kiln snapshot --help failed"
check_flags "$TEST_TMP/snapshot.help" kiln-snapshot.1 "$DOCS/cli.md"

"$KILN" --help >"$TEST_TMP/top.help" || fail "kiln --help failed"
commands=$(sed -nE 's/^  kiln ([a-z]+) .*/\1/p' "$TEST_TMP/top.help" | sort -u)
[ -n "$commands" ] || fail "no commands found in kiln --help: $(cat "$TEST_TMP/top.help")"
for command in $commands; do
    grep -qE "^\.B $command\$" "$TEST_TMP/kiln.1.txt" || complain "command $command is not described in kiln.1"
    grep -qF "kiln $command" "$DOCS/cli.md" || complain "command $command is not in docs/cli.md"
done
for flag in --help -h --version -V; do
    has_word "$TEST_TMP/kiln.1.txt" "$flag" || complain "$flag is not in kiln.1"
done

# Every key of the effective configuration, with every optional part present.
"$KILN" config --kernel vmlinux --initrd initrd --cmdline x --name n --vconsole pty \
    --disk a.img,serial=s --net tap=t0,mac=02:00:00:00:00:01 >"$TEST_TMP/config.yaml" ||
    fail "kiln config failed: $(cat "$TEST_TMP/config.yaml")"
keys=$(sed -nE 's/^[ -]*([a-z][a-z-]*):.*/\1/p' "$TEST_TMP/config.yaml" | sort -u)
[ "$(wc -w <<<"$keys")" -ge 15 ] || fail "too few keys in kiln config's output: $keys"
for key in $keys; do
    grep -qE "^\.B $key\$|^\.B $key |^\.B $key\$" "$TEST_TMP/kiln-vm.yaml.5.txt" ||
        complain "key $key (kiln config prints it) is not in kiln-vm.yaml.5"
    grep -qF "\`$key\`" "$DOCS/vm-yaml.md" || complain "key $key is not in docs/vm-yaml.md"
done

[ "$problems" -eq 0 ] || fail "$problems difference(s) between the man pages, --help and docs/"
echo "PASS: the man pages, kiln's --help texts and docs/ name the same commands, flags and keys"
