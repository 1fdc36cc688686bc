/* Unit tests for the device flags (--disk, --rng, --device-discovery): every option, every bad
 * value's exact message, the checks across disks, and the virtio_mmio.device= renderer. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/config/cli.h"
#include "kiln/virtio/virtio_cmdline.h"

#define ARGV(...)            ((char *[]){"kiln", __VA_ARGS__, NULL})
#define ARGC(...)            ((int)(sizeof((char *[]){"kiln", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(req, err, ...) cli_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (req), (err))

static void expect_error(int r, const struct error *err, const char *message)
{
    assert_int_equal(r, -EINVAL);
    assert_string_equal(err->msg, message);
}

static void test_disk_defaults_and_options(void **state)
{
    struct cli_request req;
    struct error err;
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "k", "--disk", "a.img",
                           "--disk=b.img,"
                           "readonly,serial=disk-b,cache=unsafe",
                           "--disk",
                           "c.img,ro,cache="
                           "writethrough,queue-size=16"),
                     0);
    assert_int_equal(req.config.ndisks, 3);
    assert_string_equal(req.config.disks[0].path, "a.img");
    assert_false(req.config.disks[0].readonly);
    assert_null(req.config.disks[0].serial);
    assert_int_equal(req.config.disks[0].cache, DISK_CACHE_WRITEBACK);
    assert_int_equal(req.config.disks[0].queue_size, 256);
    assert_string_equal(req.config.disks[1].path, "b.img");
    assert_true(req.config.disks[1].readonly);
    assert_string_equal(req.config.disks[1].serial, "disk-b");
    assert_int_equal(req.config.disks[1].cache, DISK_CACHE_UNSAFE);
    assert_true(req.config.disks[2].readonly);
    assert_int_equal(req.config.disks[2].cache, DISK_CACHE_WRITETHROUGH);
    assert_int_equal(req.config.disks[2].queue_size, 16);
    assert_false(req.config.rng);
    assert_int_equal(req.config.device_discovery, DISCOVERY_ACPI);
    cli_request_free(&req);
}

static void test_rng_and_discovery(void **state)
{
    struct cli_request req;
    struct error err;
    assert_int_equal(
        PARSE(&req, &err, "run", "--rng", "--kernel", "k", "--device-discovery", "cmdline"), 0);
    assert_true(req.config.rng);
    assert_string_equal(req.config.kernel_path, "k"); /* --rng took no value */
    assert_int_equal(req.config.device_discovery, DISCOVERY_CMDLINE);
    cli_request_free(&req);
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "k", "--device-discovery=acpi"), 0);
    assert_int_equal(req.config.device_discovery, DISCOVERY_ACPI);
    cli_request_free(&req);
}

static void test_disk_errors(void **state)
{
    struct cli_request req;
    struct error err;
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--disk", ",readonly"), &err,
                 "--disk: empty path (expected " CONFIG_DISK_SPEC ")");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--disk", "a.img,rw"), &err,
                 "--disk: unknown option 'rw' in 'a.img,rw' (expected readonly, serial=ID, "
                 "cache=MODE, queue-size=N, bw=RATE, bw-burst=SIZE, iops=RATE or iops-burst=N)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--disk", "a.img,cache=none"), &err,
                 "--disk: cache 'none' in 'a.img,cache=none' is not a cache mode (expected "
                 "writeback, writethrough or unsafe)");
    expect_error(
        PARSE(&req, &err, "run", "--kernel", "k", "--disk", "a.img,serial=123456789012345678901"),
        &err,
        "--disk: serial '123456789012345678901' in 'a.img,serial=123456789012345678901' is 21 "
        "bytes (expected 1 to 20 bytes)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--disk", "a.img,serial="), &err,
                 "--disk: serial '' in 'a.img,serial=' is 0 bytes (expected 1 to 20 bytes)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--disk"), &err,
                 "--disk: missing value (expected " CONFIG_DISK_SPEC ")");
    /* A later bad --disk must not leak the earlier good ones (ASan checks). */
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--disk", "a.img,serial=x", "--disk",
                       "b.img,bogus"),
                 &err,
                 "--disk: unknown option 'bogus' in 'b.img,bogus' (expected readonly, serial=ID, "
                 "cache=MODE, queue-size=N, bw=RATE, bw-burst=SIZE, iops=RATE or iops-burst=N)");
    expect_error(
        PARSE(&req, &err, "run", "--kernel", "k", "--disk", "a.img,queue-size=100"), &err,
        "--disk: queue-size '100' in 'a.img,queue-size=100' is not valid (expected a power of "
        "2 from 2 to 256)");
    expect_error(
        PARSE(&req, &err, "run", "--kernel", "k", "--disk", "a.img,queue-size=512"), &err,
        "--disk: queue-size '512' in 'a.img,queue-size=512' is not valid (expected a power of "
        "2 from 2 to 256)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--disk", "a.img,queue-size=1"), &err,
                 "--disk: queue-size '1' in 'a.img,queue-size=1' is not valid (expected a power of "
                 "2 from 2 to 256)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--disk", "a.img,queue-size="), &err,
                 "--disk: queue-size '' in 'a.img,queue-size=' is not valid (expected a power of "
                 "2 from 2 to 256)");
}

static void test_switch_and_keyword_errors(void **state)
{
    struct cli_request req;
    struct error err;
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--rng=yes"), &err,
                 "--rng takes no value (expected '--rng' alone)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--rng", "--rng"), &err,
                 "--rng given twice (expected it once)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--device-discovery", "dt"), &err,
                 "--device-discovery: 'dt' is not valid (expected acpi or cmdline)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--disc", "a.img"), &err,
                 "unknown flag '--disc' for 'kiln run' (did you mean '--disk'?)");
}

static void test_balloon_flag(void **state)
{
    struct cli_request req;
    struct error err;
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "k", "--balloon", "0"), 0);
    assert_true(req.config.balloon.enabled);
    assert_int_equal(req.config.balloon.target_bytes, 0);
    assert_false(req.config.balloon.deflate_on_oom);
    assert_int_equal(req.config.balloon.stats_seconds, 0);
    assert_false(req.config.balloon.free_page_reporting);
    cli_request_free(&req);
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "k", "--memory", "128M", "--balloon",
                           "64M,deflate-on-oom=on,stats=5,free-page-reporting=on"),
                     0);
    assert_int_equal(req.config.balloon.target_bytes, 64ULL << 20);
    assert_true(req.config.balloon.deflate_on_oom);
    assert_int_equal(req.config.balloon.stats_seconds, 5);
    assert_true(req.config.balloon.free_page_reporting);
    struct config_problems problems = {.count = 0};
    assert_int_equal(config_check_all(&req.config, NULL, false, &problems), 0);
    cli_request_free(&req);

    /* Each bad value: one line naming the option, the whole value and what was expected. */
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--balloon", "lots"), &err,
                 "--balloon: size 'lots' in 'lots' is not a balloon size (expected a whole number "
                 "of MiB such as 0 or 128M, at most the VM's memory)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--balloon", "4097K"), &err,
                 "--balloon: size '4097K' in '4097K' is not a balloon size (expected a whole "
                 "number of MiB such as 0 or 128M, at most the VM's memory)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--balloon", "0,stats=-1"), &err,
                 "--balloon: stats '-1' in '0,stats=-1' is not valid (expected a number of "
                 "seconds from 0 (no statistics) to 3600)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--balloon", "0,stats=3601"), &err,
                 "--balloon: stats '3601' in '0,stats=3601' is not valid (expected a number of "
                 "seconds from 0 (no statistics) to 3600)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--balloon", "0,deflate-on-oom=yes"),
                 &err,
                 "--balloon: deflate-on-oom 'yes' in '0,deflate-on-oom=yes' is not valid "
                 "(expected on or off)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--balloon", "0,hint=on"), &err,
                 "--balloon: unknown option 'hint=on' in '0,hint=on' (expected "
                 "deflate-on-oom=on|off, stats=SECONDS or free-page-reporting=on|off)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--balloon", ",stats=1"), &err,
                 "--balloon: empty size (expected "
                 "SIZE[,deflate-on-oom=on|off][,stats=SECONDS][,free-page-reporting=on|off])");
    /* The target can never be more than the RAM. */
    assert_int_equal(
        PARSE(&req, &err, "run", "--kernel", "k", "--memory", "64M", "--balloon", "65M"), 0);
    assert_int_equal(config_check_all(&req.config, NULL, false, &problems), 1);
    assert_string_equal(problems.lines[0], "--balloon: a balloon of 65M is more than the VM's 64M "
                                           "of memory (expected at most 64M)");
    config_problems_free(&problems);
    cli_request_free(&req);
}

static void test_net_flag(void **state)
{
    struct cli_request req;
    struct error err;
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "k", "--net", "tap=kt0", "--net",
                           "tap=kt1,mac=02:AB:cd:00:00:01"),
                     0);
    assert_int_equal(req.config.nnets, 2);
    assert_string_equal(req.config.nets[0].tap, "kt0");
    assert_false(req.config.nets[0].mac_given);
    assert_true(req.config.nets[1].mac_given);
    const uint8_t want[6] = {0x02, 0xab, 0xcd, 0, 0, 1};
    assert_memory_equal(req.config.nets[1].mac, want, 6);
    cli_request_free(&req);

    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--net", "mac=02:00:00:00:00:01"), &err,
                 "--net: 'mac=02:00:00:00:00:01' has no tap=NAME (expected " CONFIG_NET_SPEC ")");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--net", "tap=kt0,mac=02:00:00:00:00"),
                 &err,
                 "--net: mac '02:00:00:00:00' in 'tap=kt0,mac=02:00:00:00:00' is not a MAC "
                 "address (expected six hex pairs such as 02:00:00:00:00:01)");
    expect_error(
        PARSE(&req, &err, "run", "--kernel", "k", "--net", "tap=kt0,mac=01:00:5e:00:00:01"), &err,
        "--net: mac '01:00:5e:00:00:01' in 'tap=kt0,mac=01:00:5e:00:00:01' is a "
        "multicast address (expected a unicast MAC: the first byte even)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--net", "tap=a-very-long-tap-name"),
                 &err,
                 "--net: tap 'a-very-long-tap-name' in 'tap=a-very-long-tap-name' is not an "
                 "interface name (expected 1 to 15 bytes, no '/')");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--net", "tap=kt0,vhost=on"), &err,
                 "--net: unknown option 'vhost=on' in 'tap=kt0,vhost=on' (expected tap=NAME, "
                 "mac=MAC, rx-bw=RATE, rx-bw-burst=SIZE, rx-pps=RATE, rx-pps-burst=N, tx-bw=RATE, "
                 "tx-bw-burst=SIZE, tx-pps=RATE or tx-pps-burst=N)");
}

#define BW_ERROR                                                                                   \
    "is not valid (expected bytes a second such as 50M, or SIZE/TIME such as 5M/100ms; 0 for no "  \
    "limit; a time from 1ms to 3600000ms)"
#define OPS_ERROR                                                                                  \
    "is not valid (expected a count a second such as 1000, or COUNT/TIME such as 100/100ms; 0 "    \
    "for no limit; a time from 1ms to 3600000ms)"

/* Rate limits: the short form, a refill time, bursts, and each bad value in one line. */
static void test_rate_limits(void **state)
{
    struct cli_request req;
    struct error err;
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "k", "--disk",
                           "a.img,bw=50M,iops=2000/100ms,bw-burst=1G", "--net",
                           "tap=kt0,rx-bw=1M,tx-pps=10,tx-pps-burst=5", "--rng", "--rng-limit",
                           "ops=4"),
                     0);
    const struct rate_limit_config *disk = &req.config.disks[0].limit;
    assert_int_equal(disk->bytes.size, 50 << 20);
    assert_int_equal(disk->bytes.refill_time_ms, 1000);
    assert_int_equal(disk->bytes.one_time_burst, 1ULL << 30);
    assert_int_equal(disk->ops.size, 2000);
    assert_int_equal(disk->ops.refill_time_ms, 100);
    assert_int_equal(req.config.nets[0].rx_limit.bytes.size, 1 << 20);
    assert_int_equal(req.config.nets[0].rx_limit.ops.size, 0);
    assert_int_equal(req.config.nets[0].tx_limit.ops.size, 10);
    assert_int_equal(req.config.nets[0].tx_limit.ops.one_time_burst, 5);
    assert_int_equal(req.config.rng_limit.ops.size, 4);
    assert_int_equal(req.config.rng_limit.bytes.size, 0);
    cli_request_free(&req);

    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--disk", "a.img,bw=fast"), &err,
                 "--disk: bw 'fast' in 'a.img,bw=fast' " BW_ERROR);
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--disk", "a.img,bw=5M/0ms"), &err,
                 "--disk: bw '5M/0ms' in 'a.img,bw=5M/0ms' " BW_ERROR);
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--disk", "a.img,bw=5M/2h"), &err,
                 "--disk: bw '5M/2h' in 'a.img,bw=5M/2h' " BW_ERROR);
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--disk", "a.img,bw=5M/3600001ms"), &err,
                 "--disk: bw '5M/3600001ms' in 'a.img,bw=5M/3600001ms' " BW_ERROR);
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--disk", "a.img,iops=10K"), &err,
                 "--disk: iops '10K' in 'a.img,iops=10K' " OPS_ERROR);
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--disk", "a.img,iops=-1"), &err,
                 "--disk: iops '-1' in 'a.img,iops=-1' " OPS_ERROR);
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--disk", "a.img,bw-burst=1M/10ms"),
                 &err,
                 "--disk: bw-burst '1M/10ms' in 'a.img,bw-burst=1M/10ms' is not valid (expected a "
                 "size such as 100M, spent once before the rate; a time from 1ms to 3600000ms)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--net", "tap=kt0,rx-pps="), &err,
                 "--net: rx-pps '' in 'tap=kt0,rx-pps=' " OPS_ERROR);
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--rng", "--rng-limit", "bw=1M,iops=3"),
                 &err,
                 "--rng-limit: unknown option 'iops=3' in 'bw=1M,iops=3' (expected bw=RATE, "
                 "bw-burst=SIZE, ops=RATE or ops-burst=N)");
}

/* What only the validation pass sees: a burst without its rate, a limit without a device. */
static void test_rate_limit_checks(void **state)
{
    struct cli_request req;
    struct error err;
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "/dev/null", "--disk",
                           "/dev/null,readonly,iops-burst=5", "--rng-limit", "bw=1M"),
                     0);
    struct config_problems problems = {.count = 0};
    config_check_all(&req.config, NULL, false, &problems);
    assert_int_equal(problems.count, 2);
    assert_string_equal(problems.lines[0],
                        "--disk: iops-burst without iops (expected the rate the burst goes with)");
    assert_string_equal(problems.lines[1],
                        "--rng-limit: there is no virtio-rng to limit (expected --rng too)");
    config_problems_free(&problems);
    cli_request_free(&req);
}

static void test_default_mac(void **state)
{
    uint8_t a[6], b[6], c[6];
    config_default_mac("kt0", 0, a);
    config_default_mac("kt0", 0, b);
    config_default_mac("kt1", 0, c);
    assert_memory_equal(a, b, 6);     /* stable */
    assert_memory_not_equal(a, c, 6); /* per TAP */
    assert_int_equal(a[0] & 3, 2);    /* locally administered, unicast */
}

/* mac= wins; a named VM's MACs follow its name and index, not the TAP; unnamed, the TAP's. */
static void test_mac_of_each_device(void **state)
{
    struct vm_config cfg;
    config_init(&cfg);
    struct net_config net = {.tap = strdup("kt0")};
    struct error err;
    assert_int_equal(config_add_net(&cfg, &net, &err), 0);
    net = (struct net_config){.tap = strdup("kt1"), .mac = {2, 0, 0, 0, 0, 7}, .mac_given = true};
    assert_int_equal(config_add_net(&cfg, &net, &err), 0);
    uint8_t mac[6], want[6];
    config_net_mac(&cfg, 0, mac);
    config_default_mac("kt0", 0, want);
    assert_memory_equal(mac, want, 6);
    config_net_mac(&cfg, 1, mac);
    assert_memory_equal(mac, ((uint8_t[]){2, 0, 0, 0, 0, 7}), 6);

    cfg.name = strdup("web-1");
    config_net_mac(&cfg, 0, mac);
    config_default_mac("web-1", 0, want);
    assert_memory_equal(mac, want, 6);
    free(cfg.nets[0].tap);
    cfg.nets[0].tap = strdup("other");
    uint8_t again[6];
    config_net_mac(&cfg, 0, again);
    assert_memory_equal(again, mac, 6); /* same VM on another TAP: same MAC */
    config_free(&cfg);
}

/* kiln restore --clone: each NIC gets a MAC of its own, unless the restore's own --net gave
 * mac=; from a new name (stable), else random; and the MAC is then the config's. */
static void test_clone_macs(void **state)
{
    struct vm_config cfg;
    config_init(&cfg);
    cfg.name = strdup("web-1");
    struct error err;
    struct net_config net = {.tap = strdup("kt0")};
    assert_int_equal(config_add_net(&cfg, &net, &err), 0);
    net = (struct net_config){.tap = strdup("kt1"), .mac = {2, 0, 0, 0, 0, 7}, .mac_given = true};
    assert_int_equal(config_add_net(&cfg, &net, &err), 0);
    uint8_t original[2][6], first[2][6], second[2][6], want[6];
    for (unsigned i = 0; i < 2; i++)
        config_net_mac(&cfg, i, original[i]);

    /* The snapshot's own NICs (no --net at the restore), the same name: random MACs, the
     * snapshot's explicit mac= replaced too, and different at each clone. */
    assert_int_equal(config_net_clone_macs(&cfg, false, false, &err), 0);
    for (unsigned i = 0; i < 2; i++) {
        assert_true(cfg.nets[i].mac_given);
        config_net_mac(&cfg, i, first[i]);
        assert_memory_not_equal(first[i], original[i], 6);
        assert_int_equal(first[i][0], 0x02); /* locally administered, unicast */
        assert_int_equal(first[i][1], 0x4b);
    }
    assert_memory_not_equal(first[0], first[1], 6);
    assert_int_equal(config_net_clone_macs(&cfg, false, false, &err), 0);
    config_net_mac(&cfg, 0, second[0]);
    assert_memory_not_equal(second[0], first[0], 6);

    /* --net ...,mac= at the restore is kept; a new --name derives the others from it. */
    free(cfg.name);
    cfg.name = strdup("web-2");
    memcpy(cfg.nets[1].mac, original[1], 6);
    assert_int_equal(config_net_clone_macs(&cfg, true, true, &err), 0);
    config_net_mac(&cfg, 1, second[1]);
    assert_memory_equal(second[1], original[1], 6);
    cfg.nets[0].mac_given = false;
    assert_int_equal(config_net_clone_macs(&cfg, true, true, &err), 0);
    config_net_mac(&cfg, 0, second[0]);
    config_default_mac("web-2", 0, want);
    assert_memory_equal(second[0], want, 6);
    config_free(&cfg);
}

static char *make_file(const char *name)
{
    char *path = malloc(64);
    snprintf(path, 64, "/tmp/kiln-test-%d-%s", (int)getpid(), name);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    assert_true(fd >= 0);
    close(fd);
    return path;
}

static void test_checks_across_disks(void **state)
{
    char *kernel = make_file("k"), *a = make_file("a.img");
    char link_path[80];
    snprintf(link_path, sizeof(link_path), "%s-link", a);
    unlink(link_path);
    assert_int_equal(symlink(a, link_path), 0);

    struct cli_request req;
    struct error err;
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", kernel, "--disk", a, "--disk", link_path),
                     0);
    assert_int_equal(config_validate(&req.config, &err), -EINVAL);
    char expected[256];
    snprintf(expected, sizeof(expected),
             "--disk: '%s' is the same image as disk 0 (expected each image once)", link_path);
    assert_string_equal(err.msg, expected);
    cli_request_free(&req);

    char *argv[32] = {"kiln", "run", "--kernel", kernel, "--rng"};
    int argc = 5;
    for (int i = 0; i < 8; i++) {
        argv[argc++] = "--disk";
        argv[argc++] = a;
    }
    assert_int_equal(cli_parse(argc, argv, &req, &err), 0);
    assert_int_equal(config_validate(&req.config, &err), -EINVAL);
    assert_string_equal(
        err.msg, "--disk/--net/--rng/--balloon: 9 virtio devices (expected at most 8 in total)");
    cli_request_free(&req);

    unlink(link_path);
    unlink(a);
    unlink(kernel);
    free(a);
    free(kernel);
}

static void test_cmdline_renderer(void **state)
{
    const struct acpi_virtio_device devs[] = {
        {.base = 0xd0000000, .size = 0x1000, .gsi = 16},
        {.base = 0xd0001000, .size = 0x1000, .gsi = 17},
        {.base = 0xd0002000, .size = 0x200, .gsi = 18},
    };
    char *out = NULL;
    assert_int_equal(virtio_cmdline_append("console=ttyS0", devs, 3, &out), 0);
    assert_string_equal(out, "console=ttyS0 virtio_mmio.device=4K@0xd0000000:16 "
                             "virtio_mmio.device=4K@0xd0001000:17 "
                             "virtio_mmio.device=512@0xd0002000:18 acpi=off");
    free(out);
    assert_int_equal(virtio_cmdline_append("", devs, 1, &out), 0);
    assert_string_equal(out, "virtio_mmio.device=4K@0xd0000000:16 acpi=off");
    free(out);
    /* The user's acpi= wins; init's arguments after "--" stay last and untouched. */
    assert_int_equal(virtio_cmdline_append("acpi=force quiet -- acpi=x", devs, 1, &out), 0);
    assert_string_equal(out, "acpi=force quiet virtio_mmio.device=4K@0xd0000000:16 -- acpi=x");
    free(out);
    /* No devices: the line is unchanged, and ACPI stays on. */
    assert_int_equal(virtio_cmdline_append("quiet", devs, 0, &out), 0);
    assert_string_equal(out, "quiet");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disk_defaults_and_options),
        cmocka_unit_test(test_rng_and_discovery),
        cmocka_unit_test(test_disk_errors),
        cmocka_unit_test(test_switch_and_keyword_errors),
        cmocka_unit_test(test_checks_across_disks),
        cmocka_unit_test(test_cmdline_renderer),
        cmocka_unit_test(test_net_flag),
        cmocka_unit_test(test_rate_limits),
        cmocka_unit_test(test_rate_limit_checks),
        cmocka_unit_test(test_balloon_flag),
        cmocka_unit_test(test_default_mac),
        cmocka_unit_test(test_mac_of_each_device),
        cmocka_unit_test(test_clone_macs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
