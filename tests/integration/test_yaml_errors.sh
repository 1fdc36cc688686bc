#!/usr/bin/env bash
# Mistakes in YAML VM definitions through the kiln binary: every problem of a file on its own
# "kiln: error: FILE:LINE:COLUMN: KEY: ..." line in one run, exit 1 from validate and config and
# 125 from run, and nothing started.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"

[ -x "$KILN" ] || fail "kiln binary '$KILN' is missing or not executable"
cd "$TEST_TMP" || fail "no $TEST_TMP"
touch k.elf
truncate -s 1M a.img

# check STATUS COMMAND...: runs kiln, expects STATUS; stdout and stderr land in out/err.
check() {
    local want=$1
    shift
    status=0
    "$KILN" "$@" >out 2>err </dev/null || status=$?
    expect_status "$want" "kiln $*: $(cat err)"
}

cat >bad.yaml <<'YAML'
cpus: 0
memroy: 1G
kernel:
  path: k.elf
  initrd: missing.cpio
disks:
  - {path: a.img, cache: never}
rng: yes
YAML
cat >want <<'TEXT'
kiln: error: bad.yaml:1:7: cpus: '0' is not a valid vCPU count (expected 1 to 254)
kiln: error: bad.yaml:2:1: memroy: unknown key (did you mean 'memory'?)
kiln: error: bad.yaml:7:26: disks[0].cache: 'never' is not a cache mode (expected writeback, writethrough or unsafe)
kiln: error: bad.yaml:8:6: rng: 'yes' is not valid (expected true or false)
kiln: error: bad.yaml:5:11: kernel.initrd: 'missing.cpio': No such file or directory (expected an initrd file)
TEXT
check 1 validate bad.yaml
diff -u want err || fail "kiln validate: unexpected messages"
[ ! -s out ] || fail "kiln validate printed on stdout: $(cat out)"
check 125 run bad.yaml
diff -u want err || fail "kiln run: unexpected messages"
[ ! -s out ] || fail "kiln run started something: $(cat out)"
# config does not look at files: the missing initrd is not its business.
check 1 config bad.yaml
head -n 4 want | diff -u - err || fail "kiln config: unexpected messages"

# The file must be right as written; flags then replace its values, and the result is checked.
check 1 validate bad.yaml --initrd k.elf
grep -v "initrd" want | diff -u - err || fail "--initrd did not replace the file's initrd"

printf 'kernel: {path: k.elf}\n' >good.yaml
check 0 validate good.yaml
[ "$(cat out)" = "good.yaml: valid" ] || fail "unexpected stdout: $(cat out)"
[ ! -s err ] || fail "unexpected stderr: $(cat err)"
check 0 validate --kernel k.elf
[ "$(cat out)" = "the flags: valid" ] || fail "unexpected stdout: $(cat out)"

check 1 validate nope.yaml
[ "$(cat err)" = "kiln: error: nope.yaml: No such file or directory (expected a YAML VM definition file)" ] || fail "got: $(cat err)"
check 125 run nope.yaml
check 1 validate good.yaml --cpus=lots
[ "$(cat err)" = "kiln: error: --cpus: 'lots' is not a valid vCPU count (expected 1 to 254)" ] || fail "got: $(cat err)"
check 1 config good.yaml other.yaml
[ "$(cat err)" = "kiln: error: unexpected argument 'other.yaml' (expected one VM definition file, and 'good.yaml' is one)" ] ||
    fail "got: $(cat err)"

# An unset variable, non-UTF-8, a billion laughs and a huge file: one line each.
unset KILN_DISK
check 1 validate "$SOURCE_DIR/configs/blk-rng.yaml"
expect_contains err "blk-rng.yaml:15:11: disks[0].path: environment variable KILN_DISK is not set (expected it set, or \${KILN_DISK:-DEFAULT})"
printf 'kernel: {path: k\xff.elf}\n' >latin1.yaml
check 1 validate latin1.yaml
[ "$(cat err)" = "kiln: error: latin1.yaml:1:17: byte 0xff is not UTF-8 (expected a UTF-8 text file)" ] || fail "got: $(cat err)"
{
    echo 'kernel: {path: k.elf}'
    echo 'a: &a [x, x, x, x, x, x, x, x, x, x]'
    for n in b c d e f g h i; do
        prev=$(printf '%s' abcdefghi | cut -c"$(($(printf '%d' "'$n") - 97))")
        printf '%s: &%s [' "$n" "$n"
        for _ in 1 2 3 4 5 6 7 8 9; do printf '*%s, ' "$prev"; done
        printf '*%s]\n' "$prev"
    done
} >lol.yaml
check 1 validate lol.yaml
expect_lines err 1
expect_contains err "lol.yaml:4:"
expect_contains err "expands the file past 1000 nodes (expected at most 1000 nodes with aliases expanded)"
head -c 2000000 /dev/zero | tr '\0' '#' >big.yaml
check 1 validate big.yaml
[ "$(cat err)" = "kiln: error: big.yaml: 2000000 bytes is too big (expected at most 1048576)" ] || fail "got: $(cat err)"
# From a pipe (bash process substitution) too: read up to the limit, and refused past it.
status=0
"$KILN" config <(printf 'kernel: {path: /k.elf}\n') >out 2>err || status=$?
expect_status 0 "$(cat err)"
expect_contains out 'path: "/k.elf"'
status=0
"$KILN" validate <(head -c 2000000 /dev/zero | tr '\0' '#') >out 2>err || status=$?
expect_status 1
expect_contains err ": more than 1048576 bytes is too big (expected at most 1048576)"
echo "PASS"
