#!/usr/bin/env bash
# bench/run --quick still runs end to end and prints its table with kiln figures, and leaves
# docs/benchmarks.md alone (only --write-docs writes it): a smoke run, the figures not judged.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest hello.elf
require_guest exit-bench.elf
require_guest serial-echo.elf
require_guest counter.elf
docs=$SOURCE_DIR/docs/benchmarks.md
before=$(sha256sum <"$docs")
status=0
timeout --kill-after=10 600 python3 "$SOURCE_DIR/bench/run" --quick --build "$BUILD_DIR" \
    --blk-image "$TEST_TMP/bench.img" >"$TEST_TMP/out" 2>&1 || status=$?
expect_status 0 "$(cat "$TEST_TMP/out")"
for row in "exec → first serial byte" "VMM overhead: RSS − touched guest RAM" \
    "PIO write exit, CPL0" "MMIO write exit, CPL3" "virtio-blk sequential read" \
    "VM creation rate, sequential" "VM creation rate, 2 in parallel" \
    "snapshot of a running" "restore, exec → first console byte"; do
    # A signed figure: under heavy load a phase can come out faster than its nop baseline.
    grep -qE "^\| ${row}[^|]*\| -?[0-9][0-9.,]* " "$TEST_TMP/out" ||
        fail "no kiln figure for '$row': $(cat "$TEST_TMP/out")"
done
[ "$(sha256sum <"$docs")" = "$before" ] || fail "bench/run --quick changed $docs"
echo "PASS"
