#!/usr/bin/env bash
# rtc.elf: the CMOS RTC at 0x70/0x71 reads as the host's UTC time (within 5 s), in BCD 24-hour
# as kiln boots it and again in binary 12-hour after the guest switches Status B.
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest rtc.elf

before=$(date -u +%s)
run_kiln "$TEST_TMP/out" "$TEST_TMP/err" run --kernel "$GUEST_DIR/rtc.elf"
after=$(date -u +%s)
context="guest output: $(head -c 2000 "$TEST_TMP/out"); stderr: $(tail -5 "$TEST_TMP/err")"
expect_status 0 "$context"
expect_contains "$TEST_TMP/out" "rtc: status B 0x2 (BCD, 24-hour)"

line=$(grep -E '^rtc: [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} UTC$' "$TEST_TMP/out") ||
    fail "no 'rtc: YYYY-MM-DD HH:MM:SS UTC' line; $context"
stamp=${line#rtc: }
guest=$(date -u -d "$stamp" +%s) || fail "date cannot parse the guest's time '$stamp'"
# The guest read the clock somewhere between the two host readings.
if [ "$guest" -lt $((before - 5)) ] || [ "$guest" -gt $((after + 5)) ]; then
    fail "guest time $stamp ($guest) is not within 5 s of the host's $before..$after"
fi

# The second reading, binary and 12-hour, must name the same moment (the guest checks it;
# this checks it printed it).
expect_contains "$TEST_TMP/out" "rtc: as binary, 12-hour: "
echo "PASS"
