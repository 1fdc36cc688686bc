/* Unit tests for the messages of YAML VM definitions: every class of mistake, with its exact
 * text and FILE:LINE:COLUMN, and all of a file's problems reported in one pass. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/config/cli.h"
#include "kiln/config/config_yaml.h"
#include "kiln/config/yaml_walk.h"

/* Loads text as "vm.yaml" and runs the validation pass without the file system, as `kiln
 * config` does; the problems must be exactly the expected lines, in order. */
static void expect_problems_n(const char *text, size_t size, const char *const *lines, size_t n)
{
    struct vm_config cfg;
    config_init(&cfg);
    struct config_yaml_origin origin = {0};
    struct config_problems problems = {.count = 0};
    int r = config_yaml_load_buffer("vm.yaml", NULL, text, size, &cfg, &origin, &problems);
    if (r == 0) {
        struct config_namer namer = {config_yaml_name, &origin};
        config_check_all(&cfg, &namer, false, &problems);
    }
    for (size_t i = 0; i < n || i < problems.count; i++) {
        const char *got = i < problems.count ? problems.lines[i] : "(none)";
        const char *want = i < n ? lines[i] : "(none)";
        if (strcmp(got, want) != 0)
            fail_msg("problem %zu:\n got: %s\nwant: %s", i, got, want);
        assert_null(strchr(got, '\n'));
    }
    assert_int_equal(problems.dropped, 0);
    config_problems_free(&problems);
    config_yaml_origin_free(&origin);
    config_free(&cfg);
}

#define EXPECT(text, ...)                                                                          \
    expect_problems_n((text), strlen(text), (const char *const[]){__VA_ARGS__},                    \
                      sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

#define KERNEL "kernel: {path: /k}\n"

static void test_unknown_keys(void **state)
{
    EXPECT(KERNEL "memroy: 1G\n", "vm.yaml:2:1: memroy: unknown key (did you mean 'memory'?)");
    EXPECT(KERNEL "mem: 1G\n", "vm.yaml:2:1: mem: unknown key (did you mean 'memory'?)");
    EXPECT(KERNEL "turbo: on\n",
           "vm.yaml:2:1: turbo: unknown key (expected name, cpus, cpu-template, memory, "
           "cpu-quota, cpu-weight, nice, kernel, console, vconsole, log-level, disks, nets, rng, "
           "rng-limit, balloon, device-discovery, vmgenid, on-reset, "
           "shutdown-grace, host-compat, seccomp, jail, uid, gid or api)");
    EXPECT("kernel:\n  path: /k\n  cmdlin: quiet\n",
           "vm.yaml:3:3: kernel.cmdlin: unknown key (did you mean 'cmdline'?)");
    EXPECT(KERNEL "disks:\n  - path: /a\n    chache: unsafe\n",
           "vm.yaml:4:5: disks[0].chache: unknown key (did you mean 'cache'?)");
    EXPECT(KERNEL "nets: [{tap: kt0, vhost: on}]\n",
           "vm.yaml:2:19: nets[0].vhost: unknown key (expected tap, mac, rx-bw, rx-bw-burst, "
           "rx-pps, rx-pps-burst, tx-bw, tx-bw-burst, tx-pps or tx-pps-burst)");
    /* A key must be a name, not a list or mapping. */
    EXPECT(KERNEL "[a]: 1\n", "vm.yaml:2:1: a list is not a key (expected a name such as name)");
}

/* The jail's settings: uid and gid need a jail and a jail needs both, never root's ids, and
 * the console sinks that live outside the jail's root are refused in it. */
static void test_jail_settings(void **state)
{
    (void)state;
    EXPECT(KERNEL "jail: /srv/j\ngid: 7\n",
           "vm.yaml:2:7: jail: the jail needs a uid and a gid (expected --uid U and --gid G, "
           "numbers from 1 to 4294967294)");
    EXPECT(KERNEL "uid: 65534\ngid: 65534\n",
           "vm.yaml:2:6: uid: given without --jail (expected --jail DIR too)",
           "vm.yaml:3:6: gid: given without --jail (expected --jail DIR too)");
    EXPECT(KERNEL "jail: /j\nuid: 0\ngid: 65534\n",
           "vm.yaml:3:6: uid: '0' cannot be used (expected a number from 1 to 4294967294)");
    EXPECT(KERNEL "jail: /j\nuid: 1\ngid: 4294967295\n",
           "vm.yaml:4:6: gid: '4294967295' cannot be used (expected a number from 1 to "
           "4294967294)");
    EXPECT(KERNEL "jail: /j\nuid: nobody\ngid: 1\n",
           "vm.yaml:3:6: uid: 'nobody' cannot be used (expected a number from 1 to 4294967294)");
    EXPECT(KERNEL "jail: /j\nuid: 1\ngid: 1\nconsole: pty\n",
           "vm.yaml:5:10: console: a pty cannot be used with --jail (expected stdio, file:PATH "
           "or none)");
    EXPECT(KERNEL "jail: /j\nuid: 1\ngid: 1\nvconsole: socket:/tmp/s\n",
           "vm.yaml:5:11: vconsole: a socket cannot be used with --jail (expected stdio, "
           "file:PATH or none)");
    EXPECT(KERNEL "jail: /j\nuid: 1\ngid: 1\nconsole: file:/tmp/c.log\n");
}

static void test_wrong_types(void **state)
{
    EXPECT(KERNEL "cpus: [2]\n",
           "vm.yaml:2:7: cpus: a list is not valid here (expected a vCPU count from 1 to 254)");
    EXPECT(KERNEL "memory: {size: 1G}\n",
           "vm.yaml:2:9: memory: a mapping is not valid here (expected a size such as 512M)");
    EXPECT("kernel: /boot/vmlinux\n",
           "vm.yaml:1:9: kernel: '/boot/vmlinux' is not valid here (expected a mapping with "
           "path, initrd and cmdline)");
    EXPECT(
        KERNEL "disks: a.img\n",
        "vm.yaml:2:8: disks: 'a.img' is not valid here (expected a list of disks, each a "
        "mapping with path and optionally readonly, serial, cache, queue-size, bw, bw-burst, iops, "
        "iops-burst)");
    EXPECT(KERNEL "disks: [a.img]\n",
           "vm.yaml:2:9: disks[0]: 'a.img' is not valid here (expected a mapping with path and "
           "optionally readonly, serial, cache, queue-size, bw, bw-burst, iops, iops-burst)");
    EXPECT(KERNEL "nets: {tap: kt0}\n",
           "vm.yaml:2:7: nets: a mapping is not valid here (expected a list of network devices, "
           "each a mapping with tap and optionally mac, rx-bw, rx-bw-burst, rx-pps, rx-pps-burst, "
           "tx-bw, tx-bw-burst, tx-pps, tx-pps-burst)");
    EXPECT(KERNEL "rng: [true]\n",
           "vm.yaml:2:6: rng: a list is not valid here (expected true or false)");
    EXPECT(KERNEL "cpus:\n", "vm.yaml:2:6: cpus: no value (expected a vCPU count from 1 to 254)");
    EXPECT(KERNEL "console: ~\n", "vm.yaml:2:10: console: no value (expected stdio, file:PATH, "
                                  "socket:PATH, pty or none, optionally after "
                                  "virtio:)");
    EXPECT(KERNEL "name: \"a\\0b\"\n",
           "vm.yaml:2:7: name: a NUL byte in the value (expected a name of 1 to 64 letters, "
           "digits, '.', '_' or '-')");
}

/* The same checks and words as the flags, after "FILE:LINE:COLUMN: KEY:". */
static void test_bad_values(void **state)
{
    EXPECT(KERNEL "cpus: 0\n",
           "vm.yaml:2:7: cpus: '0' is not a valid vCPU count (expected 1 to 254)");
    EXPECT(KERNEL "disks: [{path: a.img, bw: fast}]\n",
           "vm.yaml:2:27: disks[0].bw: 'fast' is not valid (expected bytes a second such as 50M, "
           "or SIZE/TIME such as 5M/100ms; 0 for no limit; a time from 1ms to 3600000ms)");
    EXPECT(KERNEL "nets: [{tap: kt0, tx-pps: 10/1h}]\n",
           "vm.yaml:2:27: nets[0].tx-pps: '10/1h' is not valid (expected a count a second such as "
           "1000, or COUNT/TIME such as 100/100ms; 0 for no limit; a time from 1ms to 3600000ms)");
    EXPECT(KERNEL "rng: true\nrng-limit: bw=1M,speed=2\n",
           "vm.yaml:3:12: rng-limit: unknown option 'speed=2' in 'bw=1M,speed=2' (expected "
           "bw=RATE, "
           "bw-burst=SIZE, ops=RATE or ops-burst=N)");
    EXPECT(KERNEL "cpus: 2.0\n",
           "vm.yaml:2:7: cpus: '2.0' is not a valid vCPU count (expected 1 to 254)");
    EXPECT(KERNEL "memory: 1M\n",
           "vm.yaml:2:9: memory: '1M' is out of range (expected 4M to 1024G)");
    EXPECT(KERNEL "memory: 12Q\n",
           "vm.yaml:2:9: memory: '12Q' is not a size (expected a number with an optional K, M or "
           "G suffix, e.g. 512M)");
    EXPECT(KERNEL "memory: 8388609\n",
           "vm.yaml:2:9: memory: '8388609' is not a multiple of 4 KiB (expected whole pages, e.g. "
           "8392704)");
    EXPECT(KERNEL "console: serial\n", "vm.yaml:2:10: console: 'serial' is not a console (expected "
                                       "stdio, file:PATH, socket:PATH, pty or none, "
                                       "optionally after virtio:)");
    EXPECT(KERNEL "console: 'file:'\n",
           "vm.yaml:2:10: console: 'file:' needs a path (expected file:PATH)");
    EXPECT(KERNEL "log-level: loud\n",
           "vm.yaml:2:12: log-level: 'loud' is not a log level (expected error, warn, info or "
           "debug)");
    EXPECT(KERNEL "on-reset: reboot\n",
           "vm.yaml:2:11: on-reset: 'reboot' is not valid (expected exit or restart)");
    EXPECT(KERNEL "shutdown-grace: 3601\n",
           "vm.yaml:2:17: shutdown-grace: '3601' is not valid (expected a number of seconds from "
           "0 to 3600)");
    EXPECT(KERNEL "host-compat: yes\n",
           "vm.yaml:2:14: host-compat: 'yes' is not valid (expected auto, on or off)");
    EXPECT(KERNEL "seccomp: strict\n",
           "vm.yaml:2:10: seccomp: 'strict' is not valid (expected off, log or kill)");
    EXPECT(KERNEL "device-discovery: dt\n",
           "vm.yaml:2:19: device-discovery: 'dt' is not valid (expected acpi or cmdline)");
    EXPECT(KERNEL "rng: yes\n", "vm.yaml:2:6: rng: 'yes' is not valid (expected true or false)");
    EXPECT(
        KERNEL "balloon: 0,stats=often\n",
        "vm.yaml:2:10: balloon: stats 'often' in '0,stats=often' is not valid (expected a number "
        "of seconds from 0 (no statistics) to 3600)");
    EXPECT(KERNEL "memory: 64M\nballoon: 1G\n",
           "vm.yaml:3:10: balloon: a balloon of 1G is more than the VM's 64M of memory (expected "
           "at most 64M)");
    EXPECT(KERNEL "vmgenid: false\n",
           "vm.yaml:2:10: vmgenid: 'false' is not valid (expected on or off)");
    EXPECT(KERNEL "name: my vm\n",
           "vm.yaml:2:7: name: 'my vm' is not a valid name (expected 1 to 64 letters, digits, "
           "'.', '_' or '-')");
    EXPECT("kernel: {path: ''}\n",
           "vm.yaml:1:16: kernel.path: empty path (expected the path of a kernel image: bzImage, "
           "ELF vmlinux or PVH ELF)");
    EXPECT(KERNEL "disks:\n"
                  "  - path: /a\n"
                  "    serial: 123456789012345678901\n"
                  "    cache: none\n"
                  "    queue-size: 100\n"
                  "    readonly: 1\n",
           "vm.yaml:4:13: disks[0].serial: '123456789012345678901' is 21 bytes (expected 1 to 20 "
           "bytes)",
           "vm.yaml:5:12: disks[0].cache: 'none' is not a cache mode (expected writeback, "
           "writethrough or unsafe)",
           "vm.yaml:6:17: disks[0].queue-size: '100' is not valid (expected a power of 2 from 2 "
           "to 256)",
           "vm.yaml:7:15: disks[0].readonly: '1' is not valid (expected true or false)");
    EXPECT(KERNEL "disks: [{path: ''}]\n",
           "vm.yaml:2:16: disks[0].path: empty path (expected the path of a raw disk image or "
           "block device)");
    EXPECT(KERNEL "nets: [{tap: a-very-long-tap-name, mac: '01:00:5e:00:00:01'}, {tap: k, mac: "
                  "x}]\n",
           "vm.yaml:2:14: nets[0].tap: 'a-very-long-tap-name' is not an interface name (expected "
           "1 to 15 bytes, no '/')",
           "vm.yaml:2:41: nets[0].mac: '01:00:5e:00:00:01' is a multicast address (expected a "
           "unicast MAC: the first byte even)",
           "vm.yaml:2:77: nets[1].mac: 'x' is not a MAC address (expected six hex pairs such as "
           "02:00:00:00:00:01)");

    char *text = malloc(CONFIG_MAX_CMDLINE + 64);
    int n = sprintf(text, "kernel:\n  path: /k\n  cmdline: ");
    memset(text + n, 'a', CONFIG_MAX_CMDLINE + 1);
    strcpy(text + n + CONFIG_MAX_CMDLINE + 1, "\n");
    EXPECT(text, "vm.yaml:3:12: kernel.cmdline: 65536 bytes is too long (expected at most 65535)");
    free(text);
}

static void test_duplicate_keys(void **state)
{
    EXPECT(KERNEL "cpus: 2\ncpus: 3\n",
           "vm.yaml:3:1: cpus: duplicate key (expected each key once; the first is at 2:1)");
    EXPECT("kernel:\n  path: /k\n  path: /j\n",
           "vm.yaml:3:3: kernel.path: duplicate key (expected each key once; the first is at "
           "2:3)");
    EXPECT(KERNEL "disks: [{path: /a, path: /b}]\n",
           "vm.yaml:2:20: disks[0].path: duplicate key (expected each key once; the first is at "
           "2:10)");
}

static void test_missing_keys(void **state)
{
    EXPECT("cpus: 2\n", "vm.yaml:1:1: kernel.path: missing (expected the path of a kernel image: "
                        "bzImage, ELF vmlinux or PVH ELF)");
    EXPECT("cpus: 2\nkernel:\n  cmdline: quiet\n",
           "vm.yaml:3:3: kernel.path: missing (expected the path of a kernel image: bzImage, ELF "
           "vmlinux or PVH ELF)");
    EXPECT(KERNEL "disks:\n  - readonly: true\n",
           "vm.yaml:3:5: disks[0].path: missing (expected the path of a raw disk image or block "
           "device)");
    EXPECT(KERNEL "nets: [{mac: '02:00:00:00:00:01'}]\n",
           "vm.yaml:2:8: nets[0].tap: missing (expected the name of a TAP interface)");
}

static void test_device_limits(void **state)
{
    EXPECT(KERNEL "disks: [{path: /1}, {path: /2}, {path: /3}, {path: /4}, {path: /5}, {path: "
                  "/6}, {path: /7}, {path: /8}, {path: /9}]\n",
           "vm.yaml:2:105: disks[8]: 9 disks (expected at most 8 virtio devices in total)");
    EXPECT(KERNEL "disks: [{path: /1}, {path: /2}, {path: /3}, {path: /4}, {path: /5}, {path: "
                  "/6}]\n"
                  "nets: [{tap: a}, {tap: b}]\n"
                  "rng: true\n",
           "vm.yaml:4:6: rng: 9 virtio devices (expected at most 8 in total)");
}

static void test_syntax_and_documents(void **state)
{
    EXPECT(KERNEL "cpus: [2\n",
           "vm.yaml:3:1: YAML syntax error: did not find expected ',' or ']' (while parsing a flow "
           "sequence at 2:7)");
    EXPECT(KERNEL "  cpus: 2\n",
           "vm.yaml:2:3: YAML syntax error: did not find expected key (while parsing a block "
           "mapping at 1:1)");
    EXPECT(KERNEL "---\ncpus: 2\n",
           "vm.yaml:2:1: a second YAML document (expected one VM definition per file)");
    EXPECT("", "vm.yaml:1:1: no settings (expected a mapping with at least kernel: {path: ...})");
    EXPECT("# only a comment\n",
           "vm.yaml:1:1: no settings (expected a mapping with at least kernel: {path: ...})");
    EXPECT("- kernel\n",
           "vm.yaml:1:1: the file is a list (expected a mapping of settings such as 'cpus: 2')");
    EXPECT("vmlinux\n",
           "vm.yaml:1:1: the file is 'vmlinux' (expected a mapping of settings such as 'cpus: "
           "2')");
    EXPECT(KERNEL "name: \"\x01\"\n",
           "vm.yaml:2:8: YAML syntax error: control characters are not allowed");
}

/* Billion laughs: the expansion is counted before anything walks the document. */
static void test_alias_limits(void **state)
{
    EXPECT(KERNEL "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                  "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                  "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                  "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
           "vm.yaml:4:36: alias '*b' expands the file past 1000 nodes (expected at most 1000 "
           "nodes with aliases expanded)");
    EXPECT(KERNEL "a: &a [*a]\n",
           "vm.yaml:2:8: alias '*a' has no anchor before it (expected '&a' on an earlier node "
           "that does not contain the alias)");
    EXPECT(KERNEL "cpus: *nope\n",
           "vm.yaml:2:7: alias '*nope' has no anchor before it (expected '&nope' on an earlier "
           "node that does not contain the alias)");
    /* Without aliases the same bound holds: a VM definition is short. */
    char *text = malloc(20000);
    size_t n = (size_t)sprintf(text, "x: [");
    for (int i = 0; i < 1000; i++)
        n += (size_t)sprintf(text + n, "%d, ", i);
    strcpy(text + n, "]\n");
    EXPECT(text, "vm.yaml:1:4880: more than 1000 YAML nodes (expected a shorter VM definition)");
    free(text);
    char deep[200] = "x: ";
    for (int i = 0; i < 40; i++)
        strcat(deep, "[");
    EXPECT(deep, "vm.yaml:1:35: nested more than 32 levels deep (expected a flatter VM "
                 "definition)");
}

static void test_encoding_and_size(void **state)
{
    EXPECT(KERNEL "name: caf\xc3\xa9\xff\n",
           "vm.yaml:2:11: byte 0xff is not UTF-8 (expected a UTF-8 text file)");
    EXPECT("\xff\xfe"
           "k\0e\0",
           "vm.yaml:1:1: byte 0xff is not UTF-8 (expected a UTF-8 text file)");
    EXPECT(KERNEL "name: \xed\xa0\x80\n", /* a UTF-16 surrogate */
           "vm.yaml:2:7: byte 0xed is not UTF-8 (expected a UTF-8 text file)");
    EXPECT(KERNEL "name: \xc0\xaf\n", /* an overlong '/' */
           "vm.yaml:2:7: byte 0xc0 is not UTF-8 (expected a UTF-8 text file)");
    /* Non-ASCII text is fine, and columns count characters. */
    EXPECT(KERNEL "# é\nname: é\n",
           "vm.yaml:3:7: name: '\xc3\xa9' is not a valid name (expected 1 to 64 letters, digits, "
           "'.', '_' or '-')");

    size_t size = CONFIG_YAML_MAX_BYTES + 1;
    char *big = malloc(size);
    memset(big, '#', size);
    expect_problems_n(big, size,
                      (const char *const[]){"vm.yaml: 1048577 bytes is too big (expected at most "
                                            "1048576)"},
                      1);
    free(big);
}

static void test_environment(void **state)
{
    unsetenv("KILN_TEST_UNSET");
    EXPECT("kernel: {path: '${KILN_TEST_UNSET}/vmlinux'}\n",
           "vm.yaml:1:16: kernel.path: environment variable KILN_TEST_UNSET is not set (expected "
           "it set, or ${KILN_TEST_UNSET:-DEFAULT})");
    EXPECT(KERNEL "cpus: ${1X}\n",
           "vm.yaml:2:7: cpus: '${1X}' is not a variable reference (expected ${NAME} or "
           "${NAME:-DEFAULT}, NAME of letters, digits and '_')");
    EXPECT(KERNEL "name: ${KILN\n",
           "vm.yaml:2:7: name: '${KILN' has no closing '}' (expected ${NAME})");
    setenv("KILN_TEST_CPUS", "300", 1);
    EXPECT(KERNEL "cpus: ${KILN_TEST_CPUS}\n",
           "vm.yaml:2:7: cpus: '300' is not a valid vCPU count (expected 1 to 254)");
    unsetenv("KILN_TEST_CPUS");
}

static void test_all_problems_in_one_pass(void **state)
{
    EXPECT("cpus: 0\n"
           "memroy: 1G\n"
           "kernel:\n"
           "  initrd: [x]\n"
           "disks:\n"
           "  - {path: /a, cache: never}\n"
           "  - {readonly: maybe}\n"
           "rng: yes\n"
           "cpus: 3\n",
           "vm.yaml:1:7: cpus: '0' is not a valid vCPU count (expected 1 to 254)",
           "vm.yaml:2:1: memroy: unknown key (did you mean 'memory'?)",
           "vm.yaml:4:11: kernel.initrd: a list is not valid here (expected the path of an initial "
           "ramdisk)",
           "vm.yaml:6:23: disks[0].cache: 'never' is not a cache mode (expected writeback, "
           "writethrough or unsafe)",
           "vm.yaml:7:16: disks[1].readonly: 'maybe' is not valid (expected true or false)",
           "vm.yaml:7:5: disks[1].path: missing (expected the path of a raw disk image or block "
           "device)",
           "vm.yaml:8:6: rng: 'yes' is not valid (expected true or false)",
           "vm.yaml:9:1: cpus: duplicate key (expected each key once; the first is at 1:1)",
           "vm.yaml:4:3: kernel.path: missing (expected the path of a kernel image: bzImage, ELF "
           "vmlinux or PVH ELF)");
}

/* Problems past CONFIG_MAX_PROBLEMS are counted, not kept. */
static void test_many_problems(void **state)
{
    char text[4096] = KERNEL;
    for (int i = 0; i < 60; i++)
        sprintf(text + strlen(text), "bogus%d: 1\n", i);
    struct vm_config cfg;
    config_init(&cfg);
    struct config_yaml_origin origin = {0};
    struct config_problems problems = {.count = 0};
    assert_int_equal(
        config_yaml_load_buffer("vm.yaml", NULL, text, strlen(text), &cfg, &origin, &problems), 0);
    assert_int_equal(problems.count, CONFIG_MAX_PROBLEMS);
    assert_int_equal(problems.dropped, 60 - CONFIG_MAX_PROBLEMS);
    assert_int_equal(config_problems_total(&problems), 60);
    config_problems_free(&problems);
    config_yaml_origin_free(&origin);
    config_free(&cfg);
}

struct files {
    char dir[64];
    char yaml[96];
};

static int make_dir(void **state)
{
    struct files *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/kiln-test-yaml-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->yaml, sizeof(f->yaml), "%s/vm.yaml", f->dir);
    *state = f;
    return 0;
}

static int remove_dir(void **state)
{
    struct files *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* `kiln validate FILE`: the loader and the file checks, one problem per line. */
static void validate_file(const char *path, const char *const *lines, size_t n)
{
    struct cli_request req;
    struct error err;
    char *argv[] = {"kiln", "validate", (char *)path, NULL};
    assert_int_equal(cli_parse(3, argv, &req, &err), 0);
    struct config_problems problems = {.count = 0};
    int r = cli_load(&req, true, &problems);
    assert_int_equal(r<0, n> 0);
    for (size_t i = 0; i < n || i < problems.count; i++) {
        const char *got = i < problems.count ? problems.lines[i] : "(none)";
        const char *want = i < n ? lines[i] : "(none)";
        if (strcmp(got, want) != 0)
            fail_msg("problem %zu:\n got: %s\nwant: %s", i, got, want);
    }
    config_problems_free(&problems);
    cli_request_free(&req);
}

static void test_files(void **state)
{
    struct files *f = *state;
    char expected[4][512], path[128];

    snprintf(path, sizeof(path), "%s/nope.yaml", f->dir);
    snprintf(expected[0], sizeof(expected[0]),
             "%s: No such file or directory (expected a YAML VM definition file)", path);
    validate_file(path, (const char *const[]){expected[0]}, 1);

    snprintf(expected[0], sizeof(expected[0]),
             "%s: is a directory (expected a YAML VM definition file)", f->dir);
    validate_file(f->dir, (const char *const[]){expected[0]}, 1);

    /* Paths are relative to the file's folder; what does not exist is named with where it was
     * written. */
    snprintf(path, sizeof(path), "%s/k.elf", f->dir);
    write_text(path, "kernel");
    snprintf(path, sizeof(path), "%s/a.img", f->dir);
    write_text(path, "");
    write_text(f->yaml, "kernel:\n"
                        "  path: k.elf\n"
                        "  initrd: missing.cpio\n"
                        "disks:\n"
                        "  - path: a.img\n"
                        "  - path: ./a.img\n"
                        "  - path: nope.img\n"
                        "  - path: .\n");
    snprintf(expected[0], sizeof(expected[0]),
             "%s:3:11: kernel.initrd: '%s/missing.cpio': No such file or directory "
             "(expected an initrd file)",
             f->yaml, f->dir);
    snprintf(expected[1], sizeof(expected[1]),
             "%s:7:11: disks[2].path: '%s/nope.img': No such file or directory "
             "(expected a raw disk image or block device)",
             f->yaml, f->dir);
    snprintf(expected[2], sizeof(expected[2]),
             "%s:8:11: disks[3].path: '%s/.' is a directory (expected a raw disk image "
             "or block device)",
             f->yaml, f->dir);
    snprintf(expected[3], sizeof(expected[3]),
             "%s:6:11: disks[1].path: '%s/./a.img' is the same image as disk 0 (expected each "
             "image once)",
             f->yaml, f->dir);
    validate_file(f->yaml,
                  (const char *const[]){expected[0], expected[1], expected[2], expected[3]}, 4);

    write_text(f->yaml, "kernel: {path: k.elf}\ndisks: [{path: a.img}]\n");
    validate_file(f->yaml, NULL, 0);

    /* A file over the size limit is refused before it is read. */
    FILE *big = fopen(f->yaml, "w");
    assert_non_null(big);
    assert_int_equal(ftruncate(fileno(big), CONFIG_YAML_MAX_BYTES + 1), 0);
    fclose(big);
    snprintf(expected[0], sizeof(expected[0]),
             "%s: 1048577 bytes is too big (expected at most 1048576)", f->yaml);
    validate_file(f->yaml, (const char *const[]){expected[0]}, 1);
}

static void handler_never_called(struct yaml_walk *w, void *target, size_t key, yaml_node_t *value,
                                 const char *path)
{
    fail_msg("the handler got a key whose path was cut short: %s", path);
}

/* A key whose path (the prefix, '.', the key) would not fit the walk's buffer is refused with
 * one problem, not handed on under a cut path that names another key. No VM definition nests
 * that deep (kiln test files give the longest prefixes); the long prefix stands for one. */
static void test_key_path_too_long(void **state)
{
    static const char text[] = "cpus: 1\n";
    char file[] = "vm.yaml";
    struct config_yaml_origin origin = {.file = file};
    struct config_problems problems = {.count = 0};
    yaml_document_t doc;
    assert_int_equal(
        yaml_load_checked(&origin, &problems, text, strlen(text), 100, "VM definition", &doc), 0);
    struct yaml_walk walk = {.doc = &doc, .origin = &origin, .problems = &problems};
    char prefix[256];
    memset(prefix, 'a', sizeof(prefix) - 1);
    prefix[sizeof(prefix) - 1] = '\0';
    static const char *const names[] = {"cpus"};
    yaml_walk_pairs(&walk, yaml_document_get_root_node(&doc), prefix, names, 1,
                    handler_never_called, NULL);
    assert_int_equal(problems.count, 1);
    assert_non_null(strstr(problems.lines[0], "vm.yaml:1:1: aaaaaaaa"));
    assert_non_null(
        strstr(problems.lines[0], "a...: key path too long (expected at most 191 bytes)"));
    yaml_document_delete(&doc);
    config_problems_free(&problems);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_jail_settings),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_missing_keys),
        cmocka_unit_test(test_device_limits),
        cmocka_unit_test(test_syntax_and_documents),
        cmocka_unit_test(test_alias_limits),
        cmocka_unit_test(test_encoding_and_size),
        cmocka_unit_test(test_environment),
        cmocka_unit_test(test_all_problems_in_one_pass),
        cmocka_unit_test(test_many_problems),
        cmocka_unit_test(test_key_path_too_long),
        cmocka_unit_test_setup_teardown(test_files, make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
