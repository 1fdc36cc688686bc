#!/usr/bin/env bash
# bash completion (completion/kiln.bash): completes the subcommands, every flag `kiln run
# --help` and `kiln test --help` print, the values of fixed-choice flags, and file names after
# path flags and for VM definition files. Sourced into a plain bash, called as bash would.
. "$SOURCE_DIR/tests/integration/lib.sh"

COMPLETION=$SOURCE_DIR/completion/kiln.bash
[ -f "$COMPLETION" ] || fail "no $COMPLETION"
# shellcheck source=/dev/null
. "$COMPLETION"
[ "$(complete -p kiln 2>/dev/null)" = "complete -F _kiln kiln" ] ||
    fail "sourcing $COMPLETION did not register _kiln for kiln: $(complete -p kiln 2>&1)"

# complete_words WORD...: what bash would offer for the last WORD of "kiln WORD...", one a line.
complete_words() {
    COMP_WORDS=(kiln "$@")
    COMP_CWORD=$#
    COMP_LINE="kiln $*"
    COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    _kiln kiln "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    printf '%s\n' "${COMPREPLY[@]}"
}
# expect_offers "WHAT" EXPECTED... -- WORD...: each EXPECTED is among the completions.
expect_offers() {
    local what=$1 want=() got
    shift
    while [ "$1" != -- ]; do
        want+=("$1")
        shift
    done
    shift
    got=$(complete_words "$@")
    for w in "${want[@]}"; do
        grep -qxF -- "$w" <<<"$got" || fail "$what: 'kiln $*<TAB>' does not offer '$w' (offers: $(tr '\n' ' ' <<<"$got"))"
    done
}

expect_offers "subcommands" run validate config test ctl ps restore receive snapshot help version --help --version -- ""
expect_offers "a subcommand's prefix" run restore -- r
[ "$(complete_words ru)" = run ] || fail "'kiln ru<TAB>' should offer only run, got: $(complete_words ru)"

# Every long flag of the help texts (not -h: the completion offers the long spelling).
flags() { grep -oE -- '--[a-z][a-z-]*' | grep -vx -- --flag | sort -u; }
"$KILN" run --help >"$TEST_TMP/run.help" || fail "kiln run --help failed"
"$KILN" test --help >"$TEST_TMP/test.help" || fail "kiln test --help failed"
for command in run validate config; do
    for flag in $(flags <"$TEST_TMP/run.help"); do
        expect_offers "kiln $command's flags" "$flag" -- "$command" --
    done
done
for flag in $(flags <"$TEST_TMP/test.help"); do
    expect_offers "kiln test's flags" "$flag" -- test --
done

expect_offers "--log-level values" error warn info debug -- run --log-level ""
expect_offers "--device-discovery values" acpi cmdline -- run --device-discovery ""
expect_offers "--on-reset values" exit restart -- run --on-reset ""
expect_offers "--host-compat values" auto on off -- run --host-compat ""
expect_offers "--console sinks" stdio file: socket: pty none virtio -- run --console ""
expect_offers "--log-level=VALUE" debug -- run --log-level = d

# File names where a path goes: the kernel, the initrd, a disk, a VM definition, a test file,
# JUnit output, and folders for --logs.
mkdir -p "$TEST_TMP/files/logdir"
touch "$TEST_TMP/files/vmlinux" "$TEST_TMP/files/vm.yaml"
cd "$TEST_TMP/files" || fail "cannot cd to $TEST_TMP/files"
expect_offers "--kernel PATH" vmlinux -- run --kernel vm
expect_offers "--kernel=PATH" vmlinux -- run --kernel = vm
expect_offers "--initrd PATH" vmlinux -- run --initrd v
expect_offers "--disk PATH" vm.yaml -- run --disk vm.
expect_offers "VM.yaml" vm.yaml -- validate vm.
expect_offers "a test file" vm.yaml -- test vm.
expect_offers "--junit PATH" vm.yaml -- test --junit vm.
# As bash splits them at ':' (COMP_WORDBREAKS): the reply completes the part after it.
expect_offers "--console file:PATH" vmlinux -- run --console file : vm
expect_offers "--vconsole virtio:file:PATH" vmlinux -- run --vconsole virtio : file : vm
expect_offers "--console virtio:SINK" file: pty -- run --console virtio : ""
expect_offers "--logs DIR" logdir -- test --logs log
[ -z "$(complete_words test --logs vm)" ] || fail "--logs offers files, not only folders: $(complete_words test --logs vm)"
expect_offers "help's topics" run test ctl ps restore receive snapshot -- help ""

# kiln ctl and kiln ps: every flag their --help prints, ctl's commands, and VM names from the
# run folder (NAME.PID.sock) beside socket paths.
"$KILN" ctl --help >"$TEST_TMP/ctl.help" || fail "kiln ctl --help failed"
"$KILN" ps --help >"$TEST_TMP/ps.help" || fail "kiln ps --help failed"
for flag in $(flags <"$TEST_TMP/ctl.help"); do
    expect_offers "kiln ctl's flags" "$flag" -- ctl web1 status --
done
for flag in $(flags <"$TEST_TMP/ps.help"); do
    expect_offers "kiln ps's flags" "$flag" -- ps --
done
for command in $(sed -nE 's/^  ([a-z]+) +.*\((GET|PUT|PATCH) .*/\1/p' "$TEST_TMP/ctl.help"); do
    expect_offers "kiln ctl's commands" "$command" -- ctl web1 ""
done
expect_offers "kiln ctl snapshot DIR" logdir -- ctl web1 snapshot log
[ -z "$(complete_words ctl web1 snapshot vm)" ] ||
    fail "ctl snapshot offers files, not only folders: $(complete_words ctl web1 snapshot vm)"
expect_offers "kiln ctl snapshot DIR --diff BASE" logdir -- ctl web1 snapshot s1 --diff log
expect_offers "kiln ctl snapshot --diff BASE DIR" logdir -- ctl web1 snapshot --diff s0 log
expect_offers "kiln snapshot's commands" merge -- snapshot ""
expect_offers "kiln snapshot merge DIR" logdir -- snapshot merge log

# kiln receive: every flag its --help prints, --listen's schemes.
"$KILN" receive --help >"$TEST_TMP/receive.help" || fail "kiln receive --help failed"
for flag in $(flags <"$TEST_TMP/receive.help"); do
    expect_offers "kiln receive's flags" "$flag" -- receive --
done
expect_offers "--listen schemes" unix: tcp: -- receive --listen ""
expect_offers "kiln ctl migrate ADDRESS" unix: tcp: -- ctl web1 migrate ""
expect_offers "kiln ctl migrate --psk-file FILE" vmlinux -- ctl web1 migrate unix:x --psk-file vm
# kiln restore: every flag its --help prints, --memory-restore's values, the folder.
"$KILN" restore --help >"$TEST_TMP/restore.help" || fail "kiln restore --help failed"
for flag in $(flags <"$TEST_TMP/restore.help"); do
    expect_offers "kiln restore's flags" "$flag" -- restore snap --
done
expect_offers "--memory-restore values" lazy copy -- restore snap --memory-restore ""
expect_offers "kiln restore DIR" logdir -- restore log
export XDG_RUNTIME_DIR=$TEST_TMP/xdg
mkdir -p "$XDG_RUNTIME_DIR/kiln"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
    "$XDG_RUNTIME_DIR/kiln/web1.4242.sock" || fail "could not make a socket in the run folder"
expect_offers "a VM's name" web1 -- ctl w
expect_offers "a socket's path" vm.yaml -- ctl vm
echo "PASS: bash completes kiln's subcommands, every flag its --help prints, fixed values and paths"
