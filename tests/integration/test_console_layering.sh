#!/usr/bin/env bash
# The console files' layering: console.c reaches the socket and pty sinks only through their
# struct console_sink_ops, and console_endpoint.c calls nothing of console.c (a new peer goes
# back through console->peer_arrived) nor includes a header that declares console.c's functions.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"

objects=$BUILD_DIR/CMakeFiles/kiln_core.dir/src/host
if [ ! -f "$objects/console.c.o" ] || [ ! -f "$objects/console_endpoint.c.o" ]; then
    skip "no console object files in $objects"
fi
command -v nm >/dev/null || skip "no nm"

defined=$(nm --defined-only --extern-only "$objects/console.c.o" | awk '{print $3}')
[ -n "$defined" ] || fail "nm found nothing defined in console.c.o"
for symbol in $(nm --undefined-only "$objects/console_endpoint.c.o" | awk '{print $2}'); do
    if grep -qxF "$symbol" <<<"$defined"; then
        fail "console_endpoint.c calls $symbol, which console.c defines"
    fi
done
echo "console_endpoint.c.o uses nothing console.c.o defines"

# console_sink.h, shared by both, declares the ops and the sinks, no function of either file.
if grep -nE '^[a-z].*\(.*\);' "$SOURCE_DIR/src/host/console_sink.h"; then
    fail "src/host/console_sink.h declares functions (expected only struct console_sink_ops and the sinks)"
fi
while IFS='"' read -r _ header _; do
    case $header in
    console_sink.h | kiln/*) ;;
    *) fail "console_endpoint.c includes $header (expected console_sink.h and kiln/ headers)" ;;
    esac
done < <(grep '^#include "' "$SOURCE_DIR/src/host/console_endpoint.c")
echo "PASS"
