#!/usr/bin/env bash
# smp.elf: with --cpus N, every vCPU the MADT lists starts through INIT/SIPI and reports its
# APIC ID exactly once (local APIC ID register and CPUID leaf 1 agreeing), IDs 0..N-1.
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest smp.elf

for n in 1 2 4; do
    run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$GUEST_DIR/smp.elf" --cpus "$n"
    context="--cpus $n; guest output: $(head -c 2000 "$TEST_TMP/out"); stderr: $(tail -5 "$TEST_TMP/err")"
    expect_status 0 "$context"
    for id in $(seq 0 $((n - 1))); do
        count=$(grep -cx "smp: cpu $id up" "$TEST_TMP/out")
        [ "$count" -eq 1 ] || fail "expected 'smp: cpu $id up' exactly once, got $count ($context)"
    done
    # Nothing beyond 0..N-1: a report of any other ID, or a second one, fails.
    reports=$(grep -c '^smp: cpu [0-9]* up' "$TEST_TMP/out")
    [ "$reports" -eq "$n" ] || fail "expected $n 'smp: cpu X up' lines, got $reports ($context)"
    expect_contains "$TEST_TMP/out" "smp: all $n cpus up"
done
echo "PASS"
