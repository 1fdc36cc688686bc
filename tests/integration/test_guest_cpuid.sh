#!/usr/bin/env bash
# CPU templates as a guest sees them: the cpuid guest prints its CPUID feature words under
# --cpu-template host, minimal and a template file; the file's cleared bits read 0 and
# minimal's words are its documented baseline. A snapshot of a minimal VM restores with the
# same words even when its config.yaml is changed to host (the state carries the CPUID), and
# bad values, bad files and a bit this host's KVM lacks each end in one error line.
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

# --- a snapshot of a minimal VM restores with minimal's words ------------------------------------
SNAP=$TEST_TMP/snap
"$KILN" run --kernel "$GUEST" --cmdline wait --cpu-template minimal --api-socket "$TEST_TMP/orig.sock" \
    >"$TEST_TMP/orig.out" 2>"$TEST_TMP/orig.err" </dev/null &
ORIG=$!
track_pid "$ORIG"
for ((i = 0; i < 300; i++)); do
    grep -q "waiting for the power button" "$TEST_TMP/orig.out" && break
    sleep 0.1
done
expect_contains "$TEST_TMP/orig.out" "cpuid: waiting for the power button"
timeout 60 "$KILN" ctl "$TEST_TMP/orig.sock" snapshot "$SNAP" >"$TEST_TMP/snap.txt" 2>&1 ||
    fail "kiln ctl snapshot: $(cat "$TEST_TMP/snap.txt")"
kill -TERM "$ORIG"
status=0
wait "$ORIG" || status=$?
expect_status 0 "the original after the power button: $(cat "$TEST_TMP/orig.err")"
BEFORE=$(words "$TEST_TMP/orig.out" after)
[ "$BEFORE" = "$MIN" ] || fail "the waiting minimal guest saw '$BEFORE', not minimal's '$MIN'"
# The restore takes the CPUID from the state, not from the config's template.
sed -i 's/^cpu-template: minimal$/cpu-template: host/' "$SNAP/config.yaml"
expect_contains "$SNAP/config.yaml" "cpu-template: host"
"$KILN" restore "$SNAP" --api-socket "$TEST_TMP/restored.sock" >"$TEST_TMP/restored.out" \
    2>"$TEST_TMP/restored.err" </dev/null &
RESTORED=$!
track_pid "$RESTORED"
for ((i = 0; i < 300; i++)); do # the API answers once the restored VM runs
    timeout 10 "$KILN" ctl "$TEST_TMP/restored.sock" status >/dev/null 2>&1 && break
    sleep 0.1
done
timeout 60 "$KILN" ctl "$TEST_TMP/restored.sock" shutdown >"$TEST_TMP/shutdown.txt" 2>&1 ||
    fail "kiln ctl shutdown: $(cat "$TEST_TMP/shutdown.txt") $(cat "$TEST_TMP/restored.err")"
status=0
wait "$RESTORED" || status=$?
expect_status 0 "the restored VM after the power button: $(cat "$TEST_TMP/restored.err")"
AFTER=$(words "$TEST_TMP/restored.out" after)
[ "$AFTER" = "$MIN" ] || fail "the restored minimal VM sees '$AFTER', not '$MIN'"
echo "restored: $AFTER"

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
bad nofile "$TEST_TMP/none.yaml: cannot read the CPU template" \
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
printf 'kernel:\n  path: %s\ncpu-template: ""\n' "$GUEST" >"$TEST_TMP/bad-vm.yaml"
bad yaml "bad-vm.yaml:3:15: cpu-template: empty value" run "$TEST_TMP/bad-vm.yaml"
echo "PASS"
