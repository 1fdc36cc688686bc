#!/usr/bin/env bash
# A net device's rate limits through the control API, as root (a TAP in a namespace): PATCH by
# TAP name and by index, in the short and the long form, each direction on its own; bad bodies
# refused whole with 400 and an unknown device with 404; the counters show both directions.
# (The rates themselves are measured by bench/ratelimit.)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"
require_kvm
require_guest counter.elf
[ "$(id -u)" -eq 0 ] || skip "network namespaces and TAPs need root"
command -v ip >/dev/null || skip "iproute2 is needed"
[ -e /dev/net/tun ] || skip "no /dev/net/tun"

NS=kiln-rl-$$
trap 'cleanup; ip netns del "$NS" 2>/dev/null' EXIT
ip netns add "$NS" || fail "cannot create network namespace $NS"
ip -n "$NS" tuntap add dev kt0 mode tap || fail "cannot create a TAP in $NS"
SOCK=$TEST_TMP/api.sock
ip netns exec "$NS" "$KILN" run --kernel "$GUEST_DIR/counter.elf" --cmdline every=1000 \
    --net tap=kt0,rx-pps=1000,tx-bw=8M/100ms --api-socket "$SOCK" >"$TEST_TMP/out" 2>"$TEST_TMP/err" \
    </dev/null &
track_pid $!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || fail "no API socket: $(cat "$TEST_TMP/err")"

python3 - "$SOCK" <<'PY' || fail "the net PATCH checks failed"
import http.client, json, socket, sys

class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.unix_path)

def api(method, path, body=None):
    conn = UnixHTTP(sys.argv[1])
    conn.request(method, path, body=None if body is None else json.dumps(body))
    reply = conn.getresponse()
    raw = reply.read()
    return reply.status, json.loads(raw) if raw else None

def expect(path, body, status, want):
    got, reply = api("PATCH", path, body)
    ok = got == status and (reply == want if isinstance(want, dict) else want in reply["error"])
    if not ok:
        print(f"FAIL: PATCH {path} {json.dumps(body)}: {got} {reply} (expected {status} {want})")
        sys.exit(1)

# The configured limits, by TAP name: an empty PATCH is refused, so ask with a no-op change.
expect("/vm/nets/kt0", {"rx-pps": "1000"}, 200, {"rx-pps": "1000", "tx-bw": "8M/100ms"})
# The long form, one direction; the other is left as it was.
expect("/vm/nets/0", {"rx": {"bandwidth": {"size": 1048576, "refill_time_ms": 100,
                                           "one_time_burst": 4096}, "ops": None}}, 200,
       {"rx-bw": "1M/100ms", "rx-bw-burst": "4K", "tx-bw": "8M/100ms"})
expect("/vm/nets/0", {"tx-bw": 0, "tx-pps": 500, "tx-pps-burst": "50"}, 200,
       {"rx-bw": "1M/100ms", "rx-bw-burst": "4K", "tx-pps": "500", "tx-pps-burst": "50"})
expect("/vm/nets/1", {"tx-bw": "1M"}, 404, "no net '1' (expected a net device's TAP name or its index in --net order)")
expect("/vm/nets/kt9", {"tx-bw": "1M"}, 404, "no net 'kt9'")
expect("/vm/nets/0", {"bandwidth": {"size": 1, "refill_time_ms": 1}}, 400,
       "bandwidth: unknown key (expected rx-bw, rx-bw-burst, rx-pps, rx-pps-burst, tx-bw, "
       "tx-bw-burst, tx-pps, tx-pps-burst, rx or tx)")
expect("/vm/nets/0", {"rx": {"speed": 1}}, 400, "rx.speed: unknown key (expected bandwidth or ops)")
expect("/vm/nets/0", {"tx": 5}, 400, "tx: expected {\"bandwidth\"")
expect("/vm/nets/0", {"tx-pps": "5/0s", "rx-bw": 0}, 400, "tx-pps '5/0s' is not valid")
expect("/vm/nets/0", {"rx-bw": 0}, 400, "a burst without its rate")
# Nothing of the refused bodies was applied.
expect("/vm/nets/kt0", {"tx-pps": 500}, 200,
       {"rx-bw": "1M/100ms", "rx-bw-burst": "4K", "tx-pps": "500", "tx-pps-burst": "50"})
_, counters = api("GET", "/vm/counters")
net = next(d for d in counters["devices"] if d["name"] == "virtio-net 0")["counters"]
for name in ("rx_throttled", "rx_throttled_ms", "rx_bw_tokens", "rx_ops_tokens",
             "tx_throttled", "tx_throttled_ms", "tx_bw_tokens", "tx_ops_tokens"):
    if name not in net:
        print(f"FAIL: virtio-net 0 has no counter {name}: {net}")
        sys.exit(1)
print("net PATCH checks passed")
PY
echo "PASS"
