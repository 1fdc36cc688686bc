#!/usr/bin/env bash
# Nested tier: kiln's own cgroup for --cpu-quota and --cpu-weight (tests/nested/l1/cpu-quota.sh)
# on a real cgroup v2 with the cpu controller, which our hosts' hybrid cgroups lack. The
# guest-kit counter spins its vCPU under --cpu-quota 20 --cpu-weight 50: kiln's folder holds
# cpu.max, cpu.weight and every thread of kiln, cpu.stat shows it throttled to about 20% of a
# CPU while an unthrottled reference VM beside it uses about a whole one, and the folders are
# gone after the VMs (HOME/kiln with the last).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/nested/lib.sh"
require_guest counter.elf

nested_run kiln_cpu_quota --file "$GUEST_DIR/counter.elf:/nested/guest-kit/counter.elf" -- \
    sh tests/nested/l1/retry-hung.sh tests/nested/l1/cpu-quota.sh \
    --name kiln-cpu-quota --kernel /nested/guest-kit/counter.elf
expect_case kiln-cpu-quota
grep -h '^kiln-check: PASS \(folder\|throttled\|unlimited\|removed\)' "$OUT/kiln-cpu-quota/results.txt" | sed 's/^/  /'
[ "$status" -eq 0 ] || fail "the L1 command exited $status"
echo "PASS: kiln's own cgroup held --cpu-quota 20 and --cpu-weight 50 on L1's cgroup v2, throttled its VM to about 20% of a CPU, and was removed after it"
