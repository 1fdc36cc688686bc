#!/usr/bin/env bash
# Nested tier: Linux's virtio_balloon driver on kiln (tests/nested/l1/balloon.sh). Debian's cloud
# kernel frees 128 MiB it had written; free page reporting must give at least half of it back
# to L1 (the VMM's resident guest RAM falls). `kiln ctl balloon 160M` must take 160 MiB from the
# guest (its MemTotal falls, the API's actual size follows, its statistics arrive), and
# `kiln ctl balloon 0` must give it all back.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/nested/lib.sh"

nested_run kiln_balloon -- sh tests/nested/l1/retry-hung.sh tests/nested/l1/balloon.sh \
    --name kiln-balloon --kernel /nested/cache/linux-guest/vmlinux
expect_case kiln-balloon
grep -h '^kiln-check: PASS \(reporting\|inflate\|deflate\)' "$OUT/kiln-balloon/results.txt" | sed 's/^/  /'
[ "$status" -eq 0 ] || fail "the L1 command exited $status"
echo "PASS: Linux's balloon driver inflated and deflated under kiln ctl, and free page reporting gave memory back"
