#!/usr/bin/env bash
# kiln test with malformed test files: every problem one line with FILE:LINE:COLUMN and the
# key, all reported in one run, exit 125, and no VM started. Bad flags likewise.
. "$SOURCE_DIR/tests/integration/lib.sh"
T=$TEST_TMP
cd "$T" || fail "cannot enter $T"
cat >bad.yaml <<'YAML'
timeout: 5 min
cases:
  - name: a b
    vm: {kernel: {path: /k.elf}, cpus: 0}
    steps:
      - expect: "a("
      - send: x
        timeout: 3s
      - expect-exit: 300
      - sleep: 1s
        expect: x
      - {}
      - wiat: 3s
  - name: two
    vm: missing.yaml
    stepz: []
YAML
run_kiln out err test bad.yaml --logs logs
expect_status 125
expect_contains err "kiln: error: bad.yaml:1:10: timeout: '5 min' is not a duration (expected a duration such as 30s, 500ms or 2m)"
expect_contains err "kiln: error: bad.yaml:3:11: cases[0].name: 'a b' is not a valid case name (expected a name of 1 to 64 letters, digits, '.', '_' or '-')"
expect_contains err "kiln: error: bad.yaml:4:40: cases[0].vm.cpus: '0' is not a valid vCPU count (expected 1 to 254)"
expect_contains err "kiln: error: bad.yaml:6:17: cases[0].steps[0].expect: 'a(' is not a valid regular expression"
expect_contains err "kiln: error: bad.yaml:8:18: cases[0].steps[1].timeout: a timeout on a send step (expected it only on expect and expect-exit)"
expect_contains err "kiln: error: bad.yaml:9:22: cases[0].steps[2].expect-exit: '300' is not an exit status (expected 0 to 255)"
expect_contains err "kiln: error: bad.yaml:10:16: cases[0].steps[3]: both expect and sleep (expected one action per step)"
expect_contains err "kiln: error: bad.yaml:12:9: cases[0].steps[4]: no action (expected one of expect, expect-not, send, expect-exit or sleep)"
expect_contains err "kiln: error: bad.yaml:13:9: cases[0].steps[5].wiat: unknown key (expected expect, expect-not, send, expect-exit, sleep or timeout)"
expect_contains err "kiln: error: bad.yaml:16:5: cases[1].stepz: unknown key (did you mean 'steps'?)"
expect_contains err "kiln: error: bad.yaml:15:9: cases[1].vm: 'missing.yaml': No such file or directory (expected a VM definition file)"
expect_lines err 12
[ ! -s out ] || fail "unexpected output: $(cat out)"
[ ! -e logs ] || fail "a logs folder was created for a bad file"

# YAML syntax, the wrong shape, a missing file, a second file's problems in the same run.
printf 'cases: [\n' >syntax.yaml
printf -- '- a\n' >list.yaml
run_kiln out err test syntax.yaml list.yaml nofile.yaml
expect_status 125
expect_contains err "kiln: error: syntax.yaml:2:1: YAML syntax error:"
expect_contains err "kiln: error: list.yaml:1:1: the file is a list (expected a mapping with cases: [...])"
expect_contains err "kiln: error: nofile.yaml: No such file or directory"
expect_lines err 3

# A VM definition file's own problems name that file.
printf 'kernel: {path: /k.elf}\nmemory: 1M\n' >vm.yaml
printf 'cases:\n  - name: x\n    vm: vm.yaml\n    steps: [{expect: x}]\n' >uses-vm.yaml
run_kiln out err test uses-vm.yaml
expect_status 125
expect_contains err "kiln: error: vm.yaml:2:9: memory: '1M' is out of range (expected 4M to 1024G)"

# Without a KVM device every case is skipped, loudly, and that is not a failure.
printf 'cases:\n  - {name: a, vm: {kernel: {path: /k.elf}}, steps: [{expect: x}]}\n' >nokvm.yaml
KILN_KVM_DEVICE=$T/no-kvm run_kiln out err test nokvm.yaml --logs logs
expect_status 0
expect_contains out "SKIP     nokvm/a (no KVM device $T/no-kvm (KILN_KVM_DEVICE))"
expect_contains out "0 passed, 0 failed, 1 skipped"
# The quick form cannot start its VM: kiln run's status, 125.
KILN_KVM_DEVICE=$T/no-kvm run_kiln out err run --kernel "$T/nokvm.yaml" --expect x
expect_status 125
expect_contains err "kiln: --expect: step 1 expect 'x': the VM ended (exit status 125) before the console matched"

# Flags.
run_kiln out err test --jobs 0 uses-vm.yaml
expect_status 125
expect_contains err "kiln: error: --jobs: '0' is not a job count (expected 1 to 64)"
run_kiln out err test uses-vm.yaml --junt x.xml
expect_status 125
expect_contains err "kiln: error: unknown flag '--junt' for 'kiln test' (did you mean '--junit'?)"
run_kiln out err test
expect_status 125
expect_contains err "kiln: error: missing test file"
run_kiln out err test --help
expect_status 0
expect_contains out "usage: kiln test FILE..."
run_kiln out err help test
expect_status 0
expect_contains out "usage: kiln test FILE..."
run_kiln out err --help
expect_contains out "kiln test FILE... [flags]"
run_kiln out err run --kernel /k.elf --timeout 1s
expect_status 125
expect_contains err "kiln: error: --timeout: needs --expect"
run_kiln out err run --kernel /k.elf --expect x --timeout 10y
expect_status 125
expect_contains err "kiln: error: --timeout: '10y' is not a duration (expected a duration such as 30s, 500ms or 2m)"
echo "PASS"
