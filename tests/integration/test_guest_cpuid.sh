#!/usr/bin/env bash
# CPU templates as a guest sees them: the cpuid guest prints its CPUID feature words under
# --cpu-template host, minimal and a template file; the file's cleared bits read 0 and
# minimal's words are its documented baseline. A snapshot of a minimal VM restores with the
# same words even when its config.yaml is changed to host (the state carries the CPUID), one of
# a file template's VM with the file gone, a live migration keeps them; a template's MSR reaches the guest; bad values, bad files and a bit this host's KVM lacks
# each end in one error line.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest cpuid.elf

GUEST=$GUEST_DIR/cpuid.elf
# words FILE WHEN: the words the guest printed at boot or after the power button.
words() { sed -n "s/^cpuid: $2 //p" "$1" | tail -n 1; }
# word WORDS NAME: one word's hex value ("7.ebx" -> 0x...).
word() { sed -n "s/.*\b$2=\([0-9a-f]\{8\}\).*/0x\1/p" <<<"$1"; }
hex() { printf '%08x' "$1"; }
run_guest() { # run_guest NAME ARGS...: runs the guest to its exit 0, its words in $W
    run_kiln "$TEST_TMP/$1.out" "$TEST_TMP/$1.err" run --kernel "$GUEST" "${@:2}"
    expect_status 0 "$1: $(cat "$TEST_TMP/$1.err")"
    W=$(words "$TEST_TMP/$1.out" boot)
    [ -n "$W" ] || fail "$1: no words from the guest: $(cat "$TEST_TMP/$1.out")"
}

# --- host: what KVM offers, kiln's topology in leaf 1 ------------------------------------------
run_guest host --cpu-template host
HOST=$W
run_guest default
[ "$W" = "$HOST" ] || fail "no --cpu-template is not host: '$W' vs '$HOST'"
# kiln clears HTT for one vCPU: a guest that still sees it gets leaf 1 from the CPU itself (a
# host whose KVM emulates ring 0 honours KVM_SET_CPUID2 for leaf 0x80000001 but not for most of
# leaves 1 and 7, docs/host-compat.md), so leaves 1, 7 and 0xD can only be checked elsewhere.
LEAF1_HONOURED=1
(($(word "$HOST" 1.edx) & (1 << 28))) && LEAF1_HONOURED=0

# --- minimal: the baseline, whatever the host has -----------------------------------------------
run_guest minimal --cpu-template minimal
MIN=$W
[ "$(word "$MIN" 80000001.ecx)" = 0x00000001 ] || fail "minimal: 80000001.ecx is not lahf_lm only: $MIN"
[ "$(word "$MIN" 80000001.edx)" = 0x20100800 ] || fail "minimal: 80000001.edx is not syscall, nx, lm: $MIN"
if ((LEAF1_HONOURED)); then
    [ "$(word "$MIN" 1.edx)" = 0x078bfbff ] || fail "minimal: 1.edx is not the baseline: $MIN"
    # cx16 and hypervisor, and x2apic and the TSC deadline timer as KVM offers them
    [ "$(hex $(($(word "$MIN" 1.ecx) & ~0x01200000)))" = 80002000 ] ||
        fail "minimal: 1.ecx is not cx16 and hypervisor: $MIN"
    for w in 7.eax 7.ebx 7.ecx 7.edx d.eax d.ecx; do
        [ "$(word "$MIN" $w)" = 0x00000000 ] || fail "minimal: $w is not 0: $MIN"
    done
    (($(word "$HOST" 7.ebx) & (1 << 5))) && echo "minimal hides this host's AVX2"
else
    echo "note: this host's KVM does not honour leaf 1/7 CPUID; leaf 0x80000001 checked"
fi

# --- a template file: a bits entry and a named feature cleared, the rest as KVM has it ----------
cat >"$TEST_TMP/clear.yaml" <<'YAML'
cpuid:
  - leaf: 0x80000001
    register: ecx
    bits: 0bxxxxxxxx_xxxxxxxx_xxxxxxxx_xxxxxxx0   # lahf_lm
features:
  clear: [syscall]
YAML
run_guest file --cpu-template "$TEST_TMP/clear.yaml"
[ "$(word "$W" 80000001.ecx)" = "0x$(hex $(($(word "$HOST" 80000001.ecx) & ~1)))" ] ||
    fail "the file's lahf_lm still shows: $W (host: $HOST)"
[ "$(word "$W" 80000001.edx)" = "0x$(hex $(($(word "$HOST" 80000001.edx) & ~0x800)))" ] ||
    fail "the file's syscall still shows: $W (host: $HOST)"
# The same file through a VM file's cpu-template key, relative to the VM file's folder.
printf 'kernel:\n  path: %s\ncpu-template: clear.yaml\n' "$GUEST" >"$TEST_TMP/vm.yaml"
FILE_WORDS=$W
run_kiln "$TEST_TMP/yaml.out" "$TEST_TMP/yaml.err" run "$TEST_TMP/vm.yaml"
expect_status 0 "cpu-template in a VM file: $(cat "$TEST_TMP/yaml.err")"
[ "$(words "$TEST_TMP/yaml.out" boot)" = "$FILE_WORDS" ] || fail "cpu-template: clear.yaml gave other words"

# --- a template's MSRs: every vCPU starts with them ---------------------------------------------
# KERNEL_GS_BASE holds any canonical address and nothing in the kit touches it.
printf 'msrs:\n  - index: 0xc0000102\n    value: 0x123456789a\n' >"$TEST_TMP/msr.yaml"
run_guest msr --cpu-template "$TEST_TMP/msr.yaml" --cmdline msr=0xc0000102
expect_contains "$TEST_TMP/msr.out" "cpuid: msr 0xc0000102 = 0x123456789a"
run_guest no-msr --cmdline msr=0xc0000102
expect_contains "$TEST_TMP/no-msr.out" "cpuid: msr 0xc0000102 = 0x0"

# --- snapshots: a restored VM gets its saved CPUID, not what its config would give ----------------
# saved NAME TEMPLATE: a waiting guest run with --cpu-template TEMPLATE, snapshotted into
# $TEST_TMP/NAME and then stopped; the words it saw are in $SAVED.
# start_waiting NAME TEMPLATE: the guest waiting for its power button, API on NAME.sock, pid
# in $PID.
start_waiting() {
    "$KILN" run --kernel "$GUEST" --cmdline wait --cpu-template "$2" --api-socket "$TEST_TMP/$1.sock" \
        >"$TEST_TMP/$1.out" 2>"$TEST_TMP/$1.err" </dev/null &
    PID=$!
    track_pid "$PID"
    for ((i = 0; i < 300; i++)); do
        grep -q "waiting for the power button" "$TEST_TMP/$1.out" && break
        sleep 0.1
    done
    expect_contains "$TEST_TMP/$1.out" "cpuid: waiting for the power button"
}
# press NAME PID: the power button through NAME.sock once the API answers; the VM must end 0
# after printing its words again, which are then in $W.
press() {
    for ((i = 0; i < 300; i++)); do # the API answers once a restored or received VM runs
        timeout 10 "$KILN" ctl "$TEST_TMP/$1.sock" status >/dev/null 2>&1 && break
        sleep 0.1
    done
    timeout 60 "$KILN" ctl "$TEST_TMP/$1.sock" shutdown >"$TEST_TMP/$1.ctl" 2>&1 ||
        fail "kiln ctl shutdown: $(cat "$TEST_TMP/$1.ctl") $(cat "$TEST_TMP/$1.err")"
    status=0
    wait "$2" || status=$?
    expect_status 0 "$1 after the power button: $(cat "$TEST_TMP/$1.err")"
    W=$(words "$TEST_TMP/$1.out" after)
}
saved() {
    local name=$1
    start_waiting "$name" "$2"
    local pid=$PID
    timeout 60 "$KILN" ctl "$TEST_TMP/$name.sock" snapshot "$TEST_TMP/$name" >"$TEST_TMP/$name.snap" 2>&1 ||
        fail "kiln ctl snapshot: $(cat "$TEST_TMP/$name.snap")"
    kill -TERM "$pid"
    status=0
    wait "$pid" || status=$?
    expect_status 0 "$name after the power button: $(cat "$TEST_TMP/$name.err")"
    SAVED=$(words "$TEST_TMP/$name.out" after)
}
# restored NAME: restores $TEST_TMP/NAME, presses its power button; the words it saw in $W.
restored() {
    "$KILN" restore "$TEST_TMP/$1" --api-socket "$TEST_TMP/$1-r.sock" >"$TEST_TMP/$1-r.out" \
        2>"$TEST_TMP/$1-r.err" </dev/null &
    local pid=$!
    track_pid "$pid"
    press "$1-r" "$pid"
}
saved snap-minimal minimal
[ "$SAVED" = "$MIN" ] || fail "the waiting minimal guest saw '$SAVED', not minimal's '$MIN'"
# The restore takes the CPUID from the state, not from the config's template.
sed -i 's/^cpu-template: minimal$/cpu-template: host/' "$TEST_TMP/snap-minimal/config.yaml"
expect_contains "$TEST_TMP/snap-minimal/config.yaml" "cpu-template: host"
restored snap-minimal
[ "$W" = "$MIN" ] || fail "the restored minimal VM sees '$W', not '$MIN'"
echo "restored minimal: $W"
# A file template's VM restores without its file: the state has all it needs.
cp "$TEST_TMP/clear.yaml" "$TEST_TMP/gone.yaml"
saved snap-file "$TEST_TMP/gone.yaml"
[ "$SAVED" = "$FILE_WORDS" ] || fail "the waiting guest saw '$SAVED', not the file's '$FILE_WORDS'"
rm "$TEST_TMP/gone.yaml"
restored snap-file
[ "$W" = "$FILE_WORDS" ] || fail "the restored VM sees '$W', not the file's '$FILE_WORDS'"

# --- live migration: the received VM goes on with minimal's words -------------------------------
start_waiting mig-src minimal
SRC=$PID
"$KILN" receive --listen "unix:$TEST_TMP/mig.sock" --api-socket "$TEST_TMP/mig-dst.sock" \
    >"$TEST_TMP/mig-dst.out" 2>"$TEST_TMP/mig-dst.err" </dev/null &
DST=$!
track_pid "$DST"
for ((i = 0; i < 300; i++)); do
    [ -S "$TEST_TMP/mig.sock" ] && break
    sleep 0.1
done
timeout 120 "$KILN" ctl "$TEST_TMP/mig-src.sock" migrate "unix:$TEST_TMP/mig.sock" >"$TEST_TMP/mig.ctl" 2>&1 ||
    fail "kiln ctl migrate: $(cat "$TEST_TMP/mig.ctl") $(cat "$TEST_TMP/mig-dst.err")"
wait "$SRC" || fail "the source did not end 0 after the migration: $(cat "$TEST_TMP/mig-src.err")"
press mig-dst "$DST"
[ "$W" = "$MIN" ] || fail "the migrated minimal VM sees '$W', not '$MIN'"

# --- bad values, bad files, a bit the host lacks: one line each, nothing run --------------------
bad() { # bad NAME EXPECTED-TEXT ARGS...: kiln refuses with one line holding the text
    run_kiln "$TEST_TMP/$1.out" "$TEST_TMP/$1.err" "${@:3}"
    expect_status 125 "$1"
    expect_lines "$TEST_TMP/$1.err" 1
    expect_contains "$TEST_TMP/$1.err" "$2"
    expect_not_contains "$TEST_TMP/$1.out" "cpuid:"
}
bad empty "--cpu-template: empty value (expected host, minimal or a CPU template file's path)" \
    run --kernel "$GUEST" --cpu-template ""
bad missing "--cpu-template: missing value" run --kernel "$GUEST" --cpu-template
bad nofile "--cpu-template: '$TEST_TMP/none.yaml': No such file or directory (expected host, minimal or a CPU template file)" \
    run --kernel "$GUEST" --cpu-template "$TEST_TMP/none.yaml"
printf 'cpuid:\n  - leaf: 7\n    register: ebx\n    bits: 0b0101\n' >"$TEST_TMP/short.yaml"
bad short "short.yaml:4: bits: '0b0101' has fewer than 32 bits" \
    run --kernel "$GUEST" --cpu-template "$TEST_TMP/short.yaml"
printf 'features:\n  clear: [avx3]\n' >"$TEST_TMP/name.yaml"
bad name "name.yaml:2: features: clear: unknown CPU feature 'avx3'" \
    run --kernel "$GUEST" --cpu-template "$TEST_TMP/name.yaml"
# PN (leaf 1 EDX bit 18) was on the Pentium III only: no KVM offers it.
printf 'features:\n  set: [pn]\n' >"$TEST_TMP/pn.yaml"
bad lacking "pn.yaml:2: needs CPUID leaf 0x1 subleaf 0 EDX bit 18 (pn), which this host's KVM does not offer" \
    run --kernel "$GUEST" --cpu-template "$TEST_TMP/pn.yaml"
printf 'msrs:\n  - index: 0x12345678\n    value: 1\n' >"$TEST_TMP/no-such-msr.yaml"
bad msr "no-such-msr.yaml:2: KVM refused MSR 0x12345678 = 0x1 on vCPU 0" \
    run --kernel "$GUEST" --cpu-template "$TEST_TMP/no-such-msr.yaml"
printf 'kernel:\n  path: %s\ncpu-template: ""\n' "$GUEST" >"$TEST_TMP/bad-vm.yaml"
bad yaml "bad-vm.yaml:3:15: cpu-template: empty value" run "$TEST_TMP/bad-vm.yaml"
echo "PASS"
