#!/usr/bin/env bash
# Every way /dev/kvm can be unusable ends in one clear line and exit status 125:
# missing device, not a KVM device, no permission.
. "$SOURCE_DIR/tests/integration/lib.sh"
require_guest hello.elf

KILN_KVM_DEVICE=/nonexistent/kvm run_kiln "$TEST_TMP/out" "$TEST_TMP/err" \
    run --kernel "$GUEST_DIR/hello.elf"
expect_status 125
expect_lines "$TEST_TMP/err" 1
expect_contains "$TEST_TMP/err" "kiln: error: /nonexistent/kvm: no such device (KVM is not available here"

KILN_KVM_DEVICE=/dev/null run_kiln "$TEST_TMP/out" "$TEST_TMP/err" \
    run --kernel "$GUEST_DIR/hello.elf"
expect_status 125
expect_lines "$TEST_TMP/err" 1
expect_contains "$TEST_TMP/err" "kiln: error: /dev/null: not a KVM device (KVM_GET_API_VERSION failed"

# Permission denied: root bypasses file modes, so run kiln as 'nobody' on a root-only node.
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
    touch "$TEST_TMP/kvm-node" && chmod 600 "$TEST_TMP/kvm-node"
    chmod 755 "$TEST_TMP"
    cp "$GUEST_DIR/hello.elf" "$TEST_TMP/hello.elf" && chmod 644 "$TEST_TMP/hello.elf"
    status=0
    KILN_KVM_DEVICE="$TEST_TMP/kvm-node" setpriv --reuid=65534 --regid=65534 --clear-groups \
        "$KILN" run --kernel "$TEST_TMP/hello.elf" >"$TEST_TMP/out" 2>"$TEST_TMP/err" || status=$?
    expect_status 125 "$(cat "$TEST_TMP/err")"
    expect_lines "$TEST_TMP/err" 1
    expect_contains "$TEST_TMP/err" "kvm-node: permission denied (expected read/write access"
else
    echo "note: permission-denied case needs root and setpriv; not checked"
fi
echo "PASS"
