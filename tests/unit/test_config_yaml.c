/* Unit tests for YAML VM definitions: every key reaches the same struct vm_config field as its
 * flag, relative paths follow the file, `kiln config` output loads back to the same config,
 * and flags given with a file override it (docs/vm-yaml.md, "Precedence"). */
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/config/cli.h"
#include "kiln/config/config_yaml.h"

#define ARGV(...)            ((char *[]){"kiln", __VA_ARGS__, NULL})
#define ARGC(...)            ((int)(sizeof((char *[]){"kiln", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(req, err, ...) cli_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (req), (err))

/* Loads text as "vm.yaml" in folder /vms; fails the test on any problem. */
static void load_ok(const char *text, struct vm_config *cfg)
{
    struct config_yaml_origin origin = {0};
    struct config_problems problems = {.count = 0};
    config_init(cfg);
    int r = config_yaml_load_buffer("vm.yaml", "/vms", text, strlen(text), cfg, &origin, &problems);
    if (r < 0 || problems.count)
        fail_msg("load failed (%d): %s", r, problems.count ? problems.lines[0] : "");
    config_problems_free(&problems);
    config_yaml_origin_free(&origin);
}

static void test_every_key(void **state)
{
    struct vm_config cfg;
    load_ok("name: web-1\n"
            "cpus: 4\n"
            "memory: 2G\n"
            "kernel:\n"
            "  path: vmlinux\n"
            "  initrd: /boot/initrd.img\n"
            "  cmdline: console=ttyS0 quiet\n"
            "console: virtio:file:logs/hvc0.log\n"
            "log-level: debug\n"
            "disks:\n"
            "  - path: root.img\n"
            "  - path: /data/b.img\n"
            "    readonly: true\n"
            "    serial: disk-b\n"
            "    cache: writethrough\n"
            "    queue-size: 16\n"
            "nets:\n"
            "  - tap: kt0\n"
            "  - {tap: kt1, mac: '02:AB:cd:00:00:01'}\n"
            "rng: true\n"
            "device-discovery: cmdline\n"
            "on-reset: restart\n"
            "shutdown-grace: 0\n"
            "host-compat: off\n",
            &cfg);
    assert_string_equal(cfg.name, "web-1");
    assert_int_equal(cfg.cpus, 4);
    assert_int_equal(cfg.memory_bytes, 2ULL << 30);
    assert_string_equal(cfg.kernel_path, "/vms/vmlinux");
    assert_string_equal(cfg.initrd_path, "/boot/initrd.img");
    assert_string_equal(cfg.cmdline, "console=ttyS0 quiet");
    assert_int_equal(cfg.console_device, CONSOLE_ON_VIRTIO);
    assert_int_equal(cfg.console, CONSOLE_FILE);
    assert_string_equal(cfg.console_path, "/vms/logs/hvc0.log");
    assert_int_equal(cfg.log_level, LOG_DEBUG);
    assert_int_equal(cfg.ndisks, 2);
    assert_string_equal(cfg.disks[0].path, "/vms/root.img");
    assert_false(cfg.disks[0].readonly);
    assert_null(cfg.disks[0].serial);
    assert_int_equal(cfg.disks[0].cache, DISK_CACHE_WRITEBACK);
    assert_int_equal(cfg.disks[0].queue_size, 256);
    assert_string_equal(cfg.disks[1].path, "/data/b.img");
    assert_true(cfg.disks[1].readonly);
    assert_string_equal(cfg.disks[1].serial, "disk-b");
    assert_int_equal(cfg.disks[1].cache, DISK_CACHE_WRITETHROUGH);
    assert_int_equal(cfg.disks[1].queue_size, 16);
    assert_int_equal(cfg.nnets, 2);
    assert_string_equal(cfg.nets[0].tap, "kt0");
    assert_false(cfg.nets[0].mac_given);
    assert_string_equal(cfg.nets[1].tap, "kt1");
    assert_true(cfg.nets[1].mac_given);
    const uint8_t mac[6] = {0x02, 0xab, 0xcd, 0, 0, 1};
    assert_memory_equal(cfg.nets[1].mac, mac, 6);
    assert_true(cfg.rng);
    assert_int_equal(cfg.device_discovery, DISCOVERY_CMDLINE);
    assert_int_equal(cfg.on_reset, RESET_RESTART);
    assert_int_equal(cfg.shutdown_grace_seconds, 0);
    assert_int_equal(cfg.host_compat, HOST_COMPAT_OFF);
    config_free(&cfg);
}

/* A file with only a kernel gets exactly the flags' defaults. */
static void test_defaults_match_flags(void **state)
{
    struct vm_config cfg;
    load_ok("kernel: {path: /k}\n", &cfg);
    struct cli_request req;
    struct error err;
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "/k"), 0);
    struct vm_config *flags = &req.config;
    assert_string_equal(cfg.kernel_path, flags->kernel_path);
    assert_null(cfg.initrd_path);
    assert_null(cfg.name);
    assert_string_equal(cfg.cmdline, flags->cmdline);
    assert_int_equal(cfg.cpus, flags->cpus);
    assert_int_equal(cfg.memory_bytes, flags->memory_bytes);
    assert_int_equal(cfg.console, flags->console);
    assert_int_equal(cfg.console_device, flags->console_device);
    assert_int_equal(cfg.log_level, flags->log_level);
    assert_int_equal(cfg.on_reset, flags->on_reset);
    assert_int_equal(cfg.shutdown_grace_seconds, flags->shutdown_grace_seconds);
    assert_int_equal(cfg.host_compat, flags->host_compat);
    assert_int_equal(cfg.device_discovery, flags->device_discovery);
    assert_int_equal(cfg.ndisks + cfg.nnets, 0);
    assert_false(cfg.rng);
    cli_request_free(&req);
    config_free(&cfg);
}

/* Values are the flags' syntax: sizes, consoles and keywords in every spelling they accept. */
static void test_value_spellings(void **state)
{
    static const struct {
        const char *text;
        uint64_t bytes;
    } sizes[] = {{"512M", 512ULL << 20}, {"536870912", 512ULL << 20}, {"4096K", 4ULL << 20},
                 {"1g", 1ULL << 30},     {"512MiB", 512ULL << 20},    {"'2G'", 2ULL << 30},
                 {"\"8M\"", 8ULL << 20}};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), "kernel: {path: k}\nmemory: %s\n", sizes[i].text);
        struct vm_config cfg;
        load_ok(text, &cfg);
        assert_int_equal(cfg.memory_bytes, sizes[i].bytes);
        config_free(&cfg);
    }
    static const struct {
        const char *text;
        enum console_kind kind;
        enum console_device_kind device;
        const char *path;
    } consoles[] = {
        {"stdio", CONSOLE_STDIO, CONSOLE_ON_SERIAL, NULL},
        {"none", CONSOLE_NONE, CONSOLE_ON_SERIAL, NULL},
        {"virtio", CONSOLE_STDIO, CONSOLE_ON_VIRTIO, NULL},
        {"virtio:none", CONSOLE_NONE, CONSOLE_ON_VIRTIO, NULL},
        {"file:/var/log/vm.log", CONSOLE_FILE, CONSOLE_ON_SERIAL, "/var/log/vm.log"},
        {"file:boot.log", CONSOLE_FILE, CONSOLE_ON_SERIAL, "/vms/boot.log"},
        {"socket:run/vm.sock", CONSOLE_SOCKET, CONSOLE_ON_SERIAL, "/vms/run/vm.sock"},
        {"virtio:socket:/s", CONSOLE_SOCKET, CONSOLE_ON_VIRTIO, "/s"},
        {"pty", CONSOLE_PTY, CONSOLE_ON_SERIAL, NULL},
    };
    for (size_t i = 0; i < sizeof(consoles) / sizeof(consoles[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), "kernel: {path: k}\nconsole: '%s'\n", consoles[i].text);
        struct vm_config cfg;
        load_ok(text, &cfg);
        assert_int_equal(cfg.console, consoles[i].kind);
        assert_int_equal(cfg.console_device, consoles[i].device);
        if (consoles[i].path)
            assert_string_equal(cfg.console_path, consoles[i].path);
        else
            assert_null(cfg.console_path);
        config_free(&cfg);
    }
    struct vm_config cfg;
    /* Booleans in the YAML 1.2 core spellings; empty lists written as nothing or []. */
    load_ok("kernel: {path: k}\nrng: TRUE\ndisks:\nnets: []\n", &cfg);
    assert_true(cfg.rng);
    assert_int_equal(cfg.ndisks + cfg.nnets, 0);
    config_free(&cfg);
    load_ok("kernel: {path: k}\nrng: False\n", &cfg);
    assert_false(cfg.rng);
    assert_false(cfg.balloon.enabled);
    config_free(&cfg);
    /* The balloon: the flag's string; a bare 0 is a YAML integer, taken as its text. */
    load_ok("kernel: {path: k}\nballoon: 128M,deflate-on-oom=on,stats=10\n", &cfg);
    assert_true(cfg.balloon.enabled);
    assert_int_equal(cfg.balloon.target_bytes, 128ULL << 20);
    assert_true(cfg.balloon.deflate_on_oom);
    assert_int_equal(cfg.balloon.stats_seconds, 10);
    assert_false(cfg.balloon.free_page_reporting);
    config_free(&cfg);
    load_ok("kernel: {path: k}\nballoon: 0\n", &cfg);
    assert_true(cfg.balloon.enabled);
    assert_int_equal(cfg.balloon.target_bytes, 0);
    config_free(&cfg);
}

static void expect_expansion(const char *text, const char *want)
{
    char *out = NULL;
    struct error err;
    if (config_yaml_expand("x", text, &out, &err) < 0)
        fail_msg("'%s': %s", text, err.msg);
    assert_string_equal(out, want);
    free(out);
}

/* ${VAR} from the environment, ${VAR:-DEFAULT} when unset or empty, "$$" for a '$'; any other
 * '$' is kept, so a kernel command line needs no escaping unless it has "${". */
static void test_expand(void **state)
{
    setenv("KILN_TEST_DIR", "/srv/vm", 1);
    setenv("KILN_TEST_EMPTY", "", 1);
    unsetenv("KILN_TEST_UNSET");
    expect_expansion("${KILN_TEST_DIR}/k.elf", "/srv/vm/k.elf");
    expect_expansion("a${KILN_TEST_DIR}b${KILN_TEST_DIR}", "a/srv/vmb/srv/vm");
    expect_expansion("${KILN_TEST_UNSET:-../build}/k", "../build/k");
    expect_expansion("${KILN_TEST_EMPTY:-fallback}", "fallback");
    expect_expansion("${KILN_TEST_EMPTY}", "");
    expect_expansion("${KILN_TEST_DIR:-unused}", "/srv/vm");
    expect_expansion("${KILN_TEST_UNSET:-}", "");
    expect_expansion("$$HOME $HOME $ 5$ $$${KILN_TEST_DIR}", "$HOME $HOME $ 5$ $/srv/vm");
    expect_expansion("$${KILN_TEST_UNSET}", "${KILN_TEST_UNSET}");
    expect_expansion("", "");

    char *out = NULL;
    struct error err;
    setenv("KILN_TEST_BIG", "0123456789abcdef", 1);
    char *many = malloc(20 * 1024 * 16 + 1);
    many[0] = '\0';
    for (int i = 0; i < 20 * 1024; i++)
        strcat(many + i * 16, "${KILN_TEST_BIG}");
    assert_int_equal(config_yaml_expand("x", many, &out, &err), -EINVAL);
    assert_string_equal(err.msg, "x: more than 262144 bytes after expanding ${...} (expected a "
                                 "shorter value)");
    free(many);
    unsetenv("KILN_TEST_DIR");
    unsetenv("KILN_TEST_EMPTY");
    unsetenv("KILN_TEST_BIG");
}

/* In a file, variables work in any value, including numbers and paths (which are then still
 * relative to the file's folder). */
static void test_variables_in_file(void **state)
{
    setenv("KILN_TEST_GUEST", "guests", 1);
    setenv("KILN_TEST_CPUS", "2", 1);
    struct vm_config cfg;
    load_ok("kernel: {path: '${KILN_TEST_GUEST}/hello.elf'}\ncpus: ${KILN_TEST_CPUS}\n", &cfg);
    assert_string_equal(cfg.kernel_path, "/vms/guests/hello.elf");
    assert_int_equal(cfg.cpus, 2);
    config_free(&cfg);
    unsetenv("KILN_TEST_GUEST");
    unsetenv("KILN_TEST_CPUS");
}

/* Anchors and aliases within the limit are plain YAML: they work. */
static void test_aliases_work(void **state)
{
    struct vm_config cfg;
    load_ok("kernel: {path: k}\n"
            "disks: [&d {path: a.img, cache: unsafe}]\n"
            "nets: [{tap: &t kt0}]\n"
            "name: *t\n",
            &cfg);
    assert_string_equal(cfg.name, "kt0");
    assert_int_equal(cfg.disks[0].cache, DISK_CACHE_UNSAFE);
    config_free(&cfg);
}

/* Relative paths are relative to the file's folder; absolute ones are kept. */
static void test_relative_paths(void **state)
{
    struct vm_config cfg;
    config_init(&cfg);
    struct config_yaml_origin origin = {0};
    struct config_problems problems = {.count = 0};
    const char *text = "kernel: {path: guest/k.elf, initrd: /abs/i}\ndisks: [{path: ../d.img}]\n";
    assert_int_equal(
        config_yaml_load_buffer("x", NULL, text, strlen(text), &cfg, &origin, &problems), 0);
    assert_int_equal(problems.count, 0);
    assert_string_equal(cfg.kernel_path, "guest/k.elf"); /* no folder: as written */
    assert_string_equal(cfg.disks[0].path, "../d.img");
    config_free(&cfg);
    config_yaml_origin_free(&origin);

    load_ok(text, &cfg);
    assert_string_equal(cfg.kernel_path, "/vms/guest/k.elf");
    assert_string_equal(cfg.initrd_path, "/abs/i");
    assert_string_equal(cfg.disks[0].path, "/vms/../d.img");
    config_free(&cfg);

    /* The API socket is a path like the others, but "none" is a word, not a file. */
    load_ok("kernel: {path: k}\napi: web.sock\n", &cfg);
    assert_string_equal(cfg.api_socket, "/vms/web.sock");
    config_free(&cfg);
    load_ok("kernel: {path: k}\napi: none\n", &cfg);
    assert_string_equal(cfg.api_socket, "none");
    config_free(&cfg);
}

static char *emit_to_string(const struct vm_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    struct error err;
    int r = config_yaml_emit(cfg, out, &err);
    fclose(out);
    if (r < 0)
        fail_msg("emit failed: %s", err.msg);
    return text;
}

static void assert_same_config(const struct vm_config *a, const struct vm_config *b)
{
    assert_string_equal(a->kernel_path, b->kernel_path);
    if (a->initrd_path || b->initrd_path)
        assert_string_equal(a->initrd_path, b->initrd_path);
    if (a->name || b->name)
        assert_string_equal(a->name, b->name);
    assert_string_equal(a->cmdline, b->cmdline);
    assert_int_equal(a->cpus, b->cpus);
    assert_int_equal(a->memory_bytes, b->memory_bytes);
    assert_int_equal(a->console, b->console);
    assert_int_equal(a->console_device, b->console_device);
    if (a->console_path || b->console_path)
        assert_string_equal(a->console_path, b->console_path);
    assert_int_equal(a->vconsole, b->vconsole);
    assert_int_equal(a->vconsole_kind, b->vconsole_kind);
    if (a->vconsole_path || b->vconsole_path)
        assert_string_equal(a->vconsole_path, b->vconsole_path);
    assert_int_equal(a->log_level, b->log_level);
    assert_int_equal(a->on_reset, b->on_reset);
    assert_int_equal(a->shutdown_grace_seconds, b->shutdown_grace_seconds);
    assert_int_equal(a->host_compat, b->host_compat);
    assert_int_equal(a->device_discovery, b->device_discovery);
    assert_int_equal(a->rng, b->rng);
    assert_int_equal(a->ndisks, b->ndisks);
    for (unsigned i = 0; i < a->ndisks; i++) {
        assert_string_equal(a->disks[i].path, b->disks[i].path);
        assert_int_equal(a->disks[i].readonly, b->disks[i].readonly);
        if (a->disks[i].serial || b->disks[i].serial)
            assert_string_equal(a->disks[i].serial, b->disks[i].serial);
        assert_int_equal(a->disks[i].cache, b->disks[i].cache);
        assert_int_equal(a->disks[i].queue_size, b->disks[i].queue_size);
    }
    assert_int_equal(a->nnets, b->nnets);
    for (unsigned i = 0; i < a->nnets; i++) {
        assert_string_equal(a->nets[i].tap, b->nets[i].tap);
        assert_int_equal(a->nets[i].mac_given, b->nets[i].mac_given);
        assert_memory_equal(a->nets[i].mac, b->nets[i].mac, 6);
    }
}

/* `kiln config` output loads back to the same config, and prints the same text again. Values
 * that YAML would read as something else ("true", "", '$', quotes, '#') survive. */
static void test_round_trip(void **state)
{
    struct vm_config cfg;
    config_init(&cfg);
    struct error err;
    assert_int_equal(config_set_kernel(&cfg, "--kernel", "/boot/vm linux: #1", &err), 0);
    assert_int_equal(config_set_initrd(&cfg, "--initrd", "/boot/true", &err), 0);
    assert_int_equal(config_set_cmdline(&cfg, "--cmdline",
                                        "console=ttyS0 $HOME ${X} \"q\" 'a' # not a comment: x",
                                        &err),
                     0);
    assert_int_equal(config_set_name(&cfg, "--name", "null", &err), 0);
    assert_int_equal(config_set_cpus(&cfg, "--cpus", "3", &err), 0);
    assert_int_equal(config_set_memory(&cfg, "--memory", "8196K", &err), 0);
    assert_int_equal(config_set_console(&cfg, "--console", "virtio:file:/tmp/héllo.log", &err), 0);
    assert_int_equal(config_set_vconsole(&cfg, "--vconsole", "socket:/tmp/hvc 0.sock", &err), 0);
    assert_int_equal(config_set_log_level(&cfg, "--log-level", "info", &err), 0);
    assert_int_equal(config_set_on_reset(&cfg, "--on-reset", "restart", &err), 0);
    assert_int_equal(config_set_shutdown_grace(&cfg, "--shutdown-grace", "3600", &err), 0);
    assert_int_equal(config_set_host_compat(&cfg, "--host-compat", "on", &err), 0);
    assert_int_equal(config_set_device_discovery(&cfg, "--device-discovery", "cmdline", &err), 0);
    struct disk_config disk;
    assert_int_equal(
        config_parse_disk("/d/a.img,ro,serial=0123,cache=unsafe,queue-size=2", &disk, &err), 0);
    assert_int_equal(config_add_disk(&cfg, &disk, &err), 0);
    assert_int_equal(config_parse_disk("/d/b.img", &disk, &err), 0);
    assert_int_equal(config_add_disk(&cfg, &disk, &err), 0);
    struct net_config net;
    assert_int_equal(config_parse_net("tap=kt0,mac=02:00:00:00:00:0a", &net, &err), 0);
    assert_int_equal(config_add_net(&cfg, &net, &err), 0);
    assert_int_equal(config_parse_net("tap=true", &net, &err), 0);
    assert_int_equal(config_add_net(&cfg, &net, &err), 0);
    cfg.rng = true;

    char *text = emit_to_string(&cfg);
    struct vm_config again;
    config_init(&again);
    struct config_yaml_origin origin = {0};
    struct config_problems problems = {.count = 0};
    /* Another folder: the printed paths are absolute, so they do not move. */
    assert_int_equal(config_yaml_load_buffer("printed.yaml", "/elsewhere", text, strlen(text),
                                             &again, &origin, &problems),
                     0);
    if (problems.count)
        fail_msg("%s\nin:\n%s", problems.lines[0], text);
    assert_same_config(&cfg, &again);
    char *text_again = emit_to_string(&again);
    assert_string_equal(text, text_again);

    free(text);
    free(text_again);
    config_yaml_origin_free(&origin);
    config_free(&again);
    config_free(&cfg);
}

/* Paths become absolute in the output, so it means the same from any folder. */
static void test_emit_absolute_paths(void **state)
{
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    char dir[] = "/tmp/kiln-test-yaml-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chdir(dir), 0);
    char *real = realpath(".", NULL);
    int fd = open("k.elf", O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(mkdir("sub", 0700), 0);

    struct vm_config cfg;
    config_init(&cfg);
    struct error err;
    assert_int_equal(config_set_kernel(&cfg, "--kernel", "sub/../k.elf", &err), 0);
    assert_int_equal(config_set_console(&cfg, "--console", "file:out.log", &err), 0);
    char *text = emit_to_string(&cfg);
    char expected[8192];
    snprintf(expected, sizeof(expected),
             "cpus: 1\n"
             "cpu-template: host\n"
             "memory: 256M\n"
             "kernel:\n"
             "  path: \"%s/k.elf\"\n"
             "  cmdline: \"\"\n"
             "console: \"file:%s/out.log\"\n"
             "log-level: warn\n"
             "disks: []\n"
             "nets: []\n"
             "rng: false\n"
             "device-discovery: acpi\n"
             "vmgenid: on\n"
             "on-reset: exit\n"
             "shutdown-grace: 5\n"
             "host-compat: auto\n"
             "seccomp: kill\n",
             real, real);
    assert_string_equal(text, expected);
    free(text);
    config_free(&cfg);

    unlink("k.elf");
    rmdir("sub");
    assert_int_equal(chdir(cwd), 0);
    rmdir(dir);
    free(real);
}

static void test_emit_refuses_non_utf8(void **state)
{
    struct vm_config cfg;
    config_init(&cfg);
    struct error err;
    assert_int_equal(config_set_kernel(&cfg, "--kernel", "/k", &err), 0);
    assert_int_equal(config_set_cmdline(&cfg, "--cmdline", "a\xff", &err), 0);
    FILE *out = fopen("/dev/null", "w");
    assert_int_equal(config_yaml_emit(&cfg, out, &err), -EILSEQ);
    fclose(out);
    assert_string_equal(err.msg, "kernel.cmdline: 'a\xff' is not UTF-8 (expected text a YAML "
                                 "file can hold)");
    config_free(&cfg);
}

struct files {
    char dir[64];
    char yaml[96];
};

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

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

/* Loads f->yaml under the flags; returns cli_load's result. */
static int load_request(struct cli_request *req, struct config_problems *problems, int argc,
                        char **argv)
{
    struct error err;
    assert_int_equal(cli_parse(argc, argv, req, &err), 0);
    memset(problems, 0, sizeof(*problems));
    return cli_load(req, false, problems);
}

static void test_flags_override_file(void **state)
{
    struct files *f = *state;
    write_text(f->yaml, "kernel: {path: k.elf, cmdline: from-file}\n"
                        "cpus: 2\n"
                        "memory: 1G\n"
                        "disks: [{path: a.img}, {path: b.img}]\n"
                        "nets: [{tap: kt0}]\n"
                        "console: none\n"
                        "rng: false\n");
    struct cli_request req;
    struct config_problems problems;
    /* The flags come before and after the file: position does not matter, flags win. */
    assert_int_equal(load_request(&req, &problems,
                                  ARGC("run", "--cpus", "3", f->yaml, "--disk", "c.img,ro", "--rng",
                                       "--kernel", "/other/k"),
                                  ARGV("run", "--cpus", "3", f->yaml, "--disk", "c.img,ro", "--rng",
                                       "--kernel", "/other/k")),
                     0);
    assert_int_equal(req.action, CLI_ACTION_RUN);
    assert_int_equal(req.config.cpus, 3);                    /* flag */
    assert_int_equal(req.config.memory_bytes, 1ULL << 30);   /* file */
    assert_string_equal(req.config.kernel_path, "/other/k"); /* flag */
    assert_string_equal(req.config.cmdline, "from-file");    /* file: kernel.* are separate */
    assert_int_equal(req.config.ndisks, 1);                  /* --disk replaces the list */
    assert_string_equal(req.config.disks[0].path, "c.img");  /* relative to the cwd */
    assert_true(req.config.disks[0].readonly);
    assert_int_equal(req.config.nnets, 1);              /* the file's, untouched */
    assert_int_equal(req.config.console, CONSOLE_NONE); /* file */
    assert_true(req.config.rng);                        /* flag */
    config_problems_free(&problems);
    cli_request_free(&req);

    /* Without flags the file's values stand, paths relative to its folder. */
    assert_int_equal(
        load_request(&req, &problems, ARGC("config", f->yaml), ARGV("config", f->yaml)), 0);
    assert_int_equal(req.action, CLI_ACTION_CONFIG);
    assert_int_equal(req.config.cpus, 2);
    char expected[160];
    snprintf(expected, sizeof(expected), "%s/k.elf", f->dir);
    assert_string_equal(req.config.kernel_path, expected);
    assert_int_equal(req.config.ndisks, 2);
    config_problems_free(&problems);
    cli_request_free(&req);
}

/* The flags are applied once, when they are parsed; the file goes under them: its values for
 * the settings the flags gave are checked (and their problems reported) but never reach the
 * config, not even partly (a file's virtio console under --console none). */
static void test_file_goes_under_the_flags(void **state)
{
    struct files *f = *state;
    write_text(f->yaml, "kernel: {path: k.elf, cmdline: from-file}\n"
                        "console: virtio:pty\n"
                        "vconsole: pty\n"
                        "disks: [{path: a.img, serial: a-serial-that-is-too-long}]\n"
                        "rng: yes\n");
    struct cli_request req;
    struct error err;
    assert_int_equal(PARSE(&req, &err, "config", f->yaml, "--console", "none", "--disk", "c.img",
                           "--rng", "--vconsole", "file:hvc.log"),
                     0);
    /* Parsing applied them: the values cli_load finds are these, not parsed again. */
    assert_int_equal(req.config.ndisks, 1);
    const struct disk_config *disks = req.config.disks;
    const char *disk_path = disks[0].path, *vconsole_path = req.config.vconsole_path;
    struct config_problems problems = {.count = 0};
    assert_int_equal(cli_load(&req, false, &problems), -EINVAL);
    assert_ptr_equal(req.config.disks, disks);
    assert_ptr_equal(req.config.disks[0].path, disk_path);
    assert_ptr_equal(req.config.vconsole_path, vconsole_path);
    assert_int_equal(req.config.ndisks, 1);
    assert_int_equal(req.config.console, CONSOLE_NONE);
    assert_int_equal(req.config.console_device, CONSOLE_ON_SERIAL);
    assert_int_equal(req.config.vconsole_kind, CONSOLE_FILE);
    assert_true(req.config.rng);
    assert_string_equal(req.config.cmdline, "from-file"); /* no flag: the file's */
    /* The file must be right as written, even where a flag replaces it. */
    assert_int_equal(problems.count, 2);
    char expected[256];
    snprintf(expected, sizeof(expected),
             "%s:4:31: disks[0].serial: 'a-serial-that-is-too-long' is 25 bytes (expected 1 "
             "to 20 bytes)",
             f->yaml);
    assert_string_equal(problems.lines[0], expected);
    snprintf(expected, sizeof(expected), "%s:5:6: rng: 'yes' is not valid (expected true or false)",
             f->yaml);
    assert_string_equal(problems.lines[1], expected);
    config_problems_free(&problems);
    cli_request_free(&req);
}

/* A problem with a value a flag replaced names the flag; the file's own values keep their
 * place in the file. */
static void test_messages_name_the_source(void **state)
{
    struct files *f = *state;
    write_text(f->yaml, "kernel: {path: k.elf}\ncpus: 2\n");
    struct cli_request req;
    struct config_problems problems;
    struct error err;
    assert_int_equal(PARSE(&req, &err, "validate", f->yaml, "--initrd", "/nonexistent/i"), 0);
    memset(&problems, 0, sizeof(problems));
    assert_int_equal(cli_load(&req, true, &problems), -ENOENT);
    assert_int_equal(problems.count, 2);
    char expected[256];
    snprintf(expected, sizeof(expected),
             "%s:1:16: kernel.path: '%s/k.elf': No such file or "
             "directory (expected a kernel image file)",
             f->yaml, f->dir);
    assert_string_equal(problems.lines[0], expected);
    assert_string_equal(problems.lines[1], "--initrd: '/nonexistent/i': No such file or directory "
                                           "(expected an initrd file)");
    config_problems_free(&problems);
    cli_request_free(&req);

    /* The file has no kernel; --kernel gives one. */
    write_text(f->yaml, "cpus: 2\n");
    assert_int_equal(load_request(&req, &problems, ARGC("config", f->yaml, "--kernel", "k"),
                                  ARGV("config", f->yaml, "--kernel", "k")),
                     0);
    config_problems_free(&problems);
    cli_request_free(&req);
    assert_int_equal(
        load_request(&req, &problems, ARGC("config", f->yaml), ARGV("config", f->yaml)), -EINVAL);
    snprintf(expected, sizeof(expected),
             "%s:1:1: kernel.path: missing (expected the path of a kernel image: bzImage, ELF "
             "vmlinux or PVH ELF)",
             f->yaml);
    assert_int_equal(problems.count, 1);
    assert_string_equal(problems.lines[0], expected);
    config_problems_free(&problems);
    cli_request_free(&req);
}

/* The --name flag, new with the name key, behaves like every other flag. */
static void test_name_flag(void **state)
{
    struct cli_request req;
    struct error err;
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "k", "--name=vm_1.a-b"), 0);
    assert_string_equal(req.config.name, "vm_1.a-b");
    cli_request_free(&req);
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "k", "--name", "my vm"), -EINVAL);
    assert_string_equal(err.msg, "--name: 'my vm' is not a valid name (expected 1 to 64 letters, "
                                 "digits, '.', '_' or '-')");
    assert_int_equal(PARSE(&req, &err, "validate", "--kernel", "k", "--nmae", "x"), -EINVAL);
    assert_string_equal(err.msg, "unknown flag '--nmae' for 'kiln validate' (did you mean "
                                 "'--name'?)");
    assert_int_equal(req.action, CLI_ACTION_VALIDATE); /* main answers 1, not 125 */
}

static void test_commands(void **state)
{
    struct cli_request req;
    struct error err;
    assert_int_equal(PARSE(&req, &err, "validate", "vm.yaml"), 0);
    assert_int_equal(req.action, CLI_ACTION_VALIDATE);
    assert_string_equal(req.file, "vm.yaml");
    cli_request_free(&req);
    assert_int_equal(PARSE(&req, &err, "config", "--kernel", "k"), 0); /* flags alone */
    assert_int_equal(req.action, CLI_ACTION_CONFIG);
    assert_null(req.file);
    cli_request_free(&req);
    assert_int_equal(PARSE(&req, &err, "config", "vm.yaml", "--help"), 0);
    assert_int_equal(req.action, CLI_ACTION_RUN_HELP);
    cli_request_free(&req);
    assert_int_equal(PARSE(&req, &err, "help", "validate"), 0);
    assert_int_equal(req.action, CLI_ACTION_RUN_HELP);
    cli_request_free(&req);
    assert_int_equal(PARSE(&req, &err, "valdate", "vm.yaml"), -EINVAL);
    assert_string_equal(err.msg, "unknown command 'valdate' (did you mean 'validate'?)");
    assert_int_equal(PARSE(&req, &err, "config"), -EINVAL);
    assert_string_equal(err.msg, "--kernel: missing (expected the path of a kernel image: "
                                 "bzImage, ELF vmlinux or PVH ELF)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_defaults_match_flags),
        cmocka_unit_test(test_value_spellings),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_variables_in_file),
        cmocka_unit_test(test_aliases_work),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_emit_absolute_paths),
        cmocka_unit_test(test_emit_refuses_non_utf8),
        cmocka_unit_test_setup_teardown(test_flags_override_file, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_file_goes_under_the_flags, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_messages_name_the_source, make_dir, remove_dir),
        cmocka_unit_test(test_name_flag),
        cmocka_unit_test(test_commands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
