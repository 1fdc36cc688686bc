#!/bin/sh
# Runs in the nested tier's L1: runs a case script (linux-checks.sh, reboot.sh) and, when the
# environment stopped its boot (exit 75: the VMM still ran when its time was up, it ended
# before the guest's init ran, or the case failed with the guest triple-faulting), boots it
# once more.
#
# Why: QEMU TCG's emulated SVM, the tier's L0, now and then stops an L2 boot for good or resets
# the guest early, on kiln and on QEMU microvm alike (docs/nested.md). One retry keeps that
# from failing CI; a second time, or any other failed check after init ran, still fails the case.
# Every retry is printed as "l1: RETRY", and the first attempt's files stay in /out/NAME.hung.
#
# Usage: retry-hung.sh SCRIPT --name NAME [the script's other arguments]
# shellcheck shell=sh
. /nested/repo/tests/nested/l1/lib.sh

script=$1
shift
name=''
prev=''
for arg in "$@"; do
    [ "$prev" = --name ] && name=$arg
    prev=$arg
done
[ -n "$name" ] || die "usage: retry-hung.sh SCRIPT --name NAME ..."

sh "$script" "$@"
status=$?
[ "$status" -eq "$HUNG_STATUS" ] || exit "$status"
echo "l1: RETRY: case $name: $(sed -n 's/^kiln-check: FAIL \(hung\|early-end\|triple-fault\): //p' "/out/$name/results.txt" | head -n 1); booting it once more"
rm -rf "/out/$name.hung"
mv "/out/$name" "/out/$name.hung"
sh "$script" "$@"
status=$?
[ "$status" -eq "$HUNG_STATUS" ] && status=1
exit "$status"
