/* Command-line parsing for `kiln run` and friends: a table of flags, each with a parser that
 * fills struct vm_config, and error lines that name the flag, the value and what was expected. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/cli.h"

#define STRINGIFY_(x) #x
#define STRINGIFY(x)  STRINGIFY_(x)

struct flag_spec {
    const char *name;
    const char *metavar;
    const char *expected; /* what a value looks like, for "missing value" errors */
    const char *help;
    int (*apply)(struct vm_config *cfg, const char *value, struct error *err);
    unsigned options; /* FLAG_* */
};

enum {
    FLAG_REPEATABLE = 1, /* --disk: each use adds one */
    FLAG_NO_VALUE = 2,   /* --rng: a switch; apply gets "" */
};

static int replace_string(char **slot, const char *value, struct error *err)
{
    char *copy = strdup(value);
    if (!copy)
        return error_fmt(err, -ENOMEM, "out of memory");
    free(*slot);
    *slot = copy;
    return 0;
}

static int apply_kernel(struct vm_config *cfg, const char *value, struct error *err)
{
    if (!*value)
        return error_fmt(err, -EINVAL,
                         "--kernel: empty path (expected " CONFIG_KERNEL_EXPECTED ")");
    return replace_string(&cfg->kernel_path, value, err);
}

static int apply_initrd(struct vm_config *cfg, const char *value, struct error *err)
{
    if (!*value)
        return error_fmt(err, -EINVAL,
                         "--initrd: empty path (expected the path of an initial ramdisk)");
    return replace_string(&cfg->initrd_path, value, err);
}

static int apply_cmdline(struct vm_config *cfg, const char *value, struct error *err)
{
    int r = config_check_cmdline(value, err);
    return r < 0 ? r : replace_string(&cfg->cmdline, value, err);
}

/* Digits only: strtoul would also take " 7", "+7" and "-1" (as a huge number). Saturates just
 * above CONFIG_MAX_CPUS so long digit strings cannot overflow. 0 means "not a count". */
static unsigned long parse_cpu_count(const char *text)
{
    if (!*text || strspn(text, "0123456789") != strlen(text))
        return 0;
    unsigned long n = 0;
    for (const char *p = text; *p && n <= CONFIG_MAX_CPUS; p++)
        n = n * 10 + (unsigned long)(*p - '0');
    return n;
}

static int apply_cpus(struct vm_config *cfg, const char *value, struct error *err)
{
    unsigned long n = parse_cpu_count(value);
    int r = config_check_cpus(value, n, err);
    if (r == 0)
        cfg->cpus = (unsigned)n;
    return r;
}

static int apply_memory(struct vm_config *cfg, const char *value, struct error *err)
{
    uint64_t bytes = 0;
    int r = config_parse_size(value, &bytes);
    if (r == -EINVAL) {
        char quoted[CONFIG_QUOTE_SIZE];
        return error_fmt(err, -EINVAL,
                         "--memory: '%s' is not a size (expected a number with an optional K, M "
                         "or G suffix, e.g. 512M)",
                         config_quote(value, quoted, sizeof(quoted)));
    }
    if (r == -ERANGE)
        bytes = UINT64_MAX; /* too big for 64 bits is simply out of range */
    r = config_check_memory(value, bytes, err);
    if (r == 0)
        cfg->memory_bytes = bytes;
    return r;
}

static int apply_console_sink(struct vm_config *cfg, const char *value, struct error *err);

/* --console [virtio:]SINK, or virtio alone (hvc0 on stdio). */
static int apply_console(struct vm_config *cfg, const char *value, struct error *err)
{
    cfg->console_device = CONSOLE_ON_SERIAL;
    if (strcmp(value, "virtio") == 0) {
        cfg->console_device = CONSOLE_ON_VIRTIO;
        value = "stdio";
    } else if (strncmp(value, "virtio:", 7) == 0) {
        cfg->console_device = CONSOLE_ON_VIRTIO;
        value += 7;
    }
    return apply_console_sink(cfg, value, err);
}

static int apply_console_sink(struct vm_config *cfg, const char *value, struct error *err)
{
    if (strcmp(value, "stdio") == 0 || strcmp(value, "none") == 0) {
        cfg->console = value[0] == 's' ? CONSOLE_STDIO : CONSOLE_NONE;
        free(cfg->console_path);
        cfg->console_path = NULL;
        return 0;
    }
    if (strncmp(value, "file:", 5) == 0) {
        if (value[5] == '\0')
            return error_fmt(err, -EINVAL, "--console: 'file:' needs a path (expected file:PATH)");
        cfg->console = CONSOLE_FILE;
        return replace_string(&cfg->console_path, value + 5, err);
    }
    char quoted[CONFIG_QUOTE_SIZE];
    return error_fmt(err, -EINVAL,
                     "--console: '%s' is not a console (expected stdio, file:PATH or none, "
                     "optionally after virtio:)",
                     config_quote(value, quoted, sizeof(quoted)));
}

static int apply_log_level(struct vm_config *cfg, const char *value, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE];
    if (log_level_parse(value, &cfg->log_level) < 0)
        return error_fmt(err, -EINVAL,
                         "--log-level: '%s' is not a log level (expected error, warn, info or "
                         "debug)",
                         config_quote(value, quoted, sizeof(quoted)));
    return 0;
}

/* Index of value in words (n entries), or -1: for flags that take one of a few keywords. */
static int keyword_index(const char *value, const char *const *words, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(value, words[i]) == 0)
            return i;
    return -1;
}

static int bad_keyword(const char *flag, const char *value, const char *expected, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE];
    return error_fmt(err, -EINVAL, "%s: '%s' is not valid (expected %s)", flag,
                     config_quote(value, quoted, sizeof(quoted)), expected);
}

static int apply_on_reset(struct vm_config *cfg, const char *value, struct error *err)
{
    static const char *const words[] = {"exit", "restart"};
    int i = keyword_index(value, words, 2);
    if (i < 0)
        return bad_keyword("--on-reset", value, "exit or restart", err);
    cfg->on_reset = i == 0 ? RESET_EXIT : RESET_RESTART;
    return 0;
}

static int apply_host_compat(struct vm_config *cfg, const char *value, struct error *err)
{
    static const char *const words[] = {"auto", "on", "off"};
    static const enum host_compat_mode modes[] = {HOST_COMPAT_AUTO, HOST_COMPAT_ON,
                                                  HOST_COMPAT_OFF};
    int i = keyword_index(value, words, 3);
    if (i < 0)
        return bad_keyword("--host-compat", value, "auto, on or off", err);
    cfg->host_compat = modes[i];
    return 0;
}

static int apply_shutdown_grace(struct vm_config *cfg, const char *value, struct error *err)
{
    unsigned long seconds = 0;
    bool digits = *value && strspn(value, "0123456789") == strlen(value) && strlen(value) <= 5;
    if (digits)
        seconds = strtoul(value, NULL, 10);
    if (!digits || seconds > CONFIG_MAX_SHUTDOWN_GRACE)
        return bad_keyword("--shutdown-grace", value,
                           "a number of seconds from 0 to " STRINGIFY(CONFIG_MAX_SHUTDOWN_GRACE),
                           err);
    cfg->shutdown_grace_seconds = (unsigned)seconds;
    return 0;
}

static int apply_disk(struct vm_config *cfg, const char *value, struct error *err)
{
    struct disk_config disk;
    int r = config_parse_disk(value, &disk, err);
    if (r == 0) {
        r = config_add_disk(cfg, &disk, err);
        if (r < 0)
            config_free_disk(&disk);
    }
    return r;
}

static int apply_net(struct vm_config *cfg, const char *value, struct error *err)
{
    struct net_config net;
    int r = config_parse_net(value, &net, err);
    if (r == 0) {
        r = config_add_net(cfg, &net, err);
        if (r < 0)
            config_free_net(&net);
    }
    return r;
}

static int apply_rng(struct vm_config *cfg, const char *value, struct error *err)
{
    cfg->rng = true;
    return 0;
}

static int apply_device_discovery(struct vm_config *cfg, const char *value, struct error *err)
{
    static const char *const words[] = {"acpi", "cmdline"};
    int i = keyword_index(value, words, 2);
    if (i < 0)
        return bad_keyword("--device-discovery", value, "acpi or cmdline", err);
    cfg->device_discovery = i == 0 ? DISCOVERY_ACPI : DISCOVERY_CMDLINE;
    return 0;
}

/* The order here is the order of `kiln run --help`. */
static const struct flag_spec run_flags[] = {
    {"--kernel", "PATH", CONFIG_KERNEL_EXPECTED,
     "kernel image: bzImage, ELF vmlinux or PVH ELF (required)", apply_kernel, 0},
    {"--initrd", "PATH", "the path of an initial ramdisk", "initial ramdisk (default: none)",
     apply_initrd, 0},
    {"--cmdline", "STR", "a kernel command line, e.g. 'console=ttyS0'",
     "kernel command line (default: empty)", apply_cmdline, 0},
    {"--cpus", "N", "a vCPU count from 1 to " STRINGIFY(CONFIG_MAX_CPUS),
     "number of vCPUs, 1-" STRINGIFY(CONFIG_MAX_CPUS) " (default: 1)", apply_cpus, 0},
    {"--memory", "SIZE", "a size such as 512M", "guest RAM, e.g. 512M or 2G (default: 256M)",
     apply_memory, 0},
    {"--disk", "SPEC", CONFIG_DISK_SPEC,
     "virtio-blk disk (raw image or block device), repeatable, first is vda:\n"
     "                             " CONFIG_DISK_SPEC,
     apply_disk, FLAG_REPEATABLE},
    {"--net", "SPEC", CONFIG_NET_SPEC,
     "virtio-net on a TAP interface (opened, or created), repeatable: " CONFIG_NET_SPEC, apply_net,
     FLAG_REPEATABLE},
    {"--rng", "", "nothing", "add a virtio-rng device (entropy from the host's getrandom)",
     apply_rng, FLAG_NO_VALUE},
    {"--device-discovery", "HOW", "acpi or cmdline",
     "where the guest finds virtio devices: acpi or cmdline (default: acpi)",
     apply_device_discovery, 0},
    {"--console", "KIND", "stdio, file:PATH or none, optionally after virtio:",
     "console: stdio, file:PATH or none on ttyS0; virtio[:SINK] puts it on hvc0 (default: stdio)",
     apply_console, 0},
    {"--log-level", "LEVEL", "error, warn, info or debug",
     "error, warn, info or debug (default: warn)", apply_log_level, 0},
    {"--on-reset", "ACTION", "exit or restart",
     "when the guest resets: exit (status 123) or restart it (default: exit)", apply_on_reset, 0},
    {"--shutdown-grace", "SECONDS", "a number of seconds",
     "after SIGTERM/SIGINT presses the power button, stop after this long (default: 5)",
     apply_shutdown_grace, 0},
    {"--host-compat", "MODE", "auto, on or off",
     "help for hosts that emulate guest ring 0: auto (probe), on, off (default: auto)",
     apply_host_compat, 0},
};

#define RUN_FLAG_COUNT (sizeof(run_flags) / sizeof(run_flags[0]))
#define NAME_MAX_LEN   32 /* longer words are never near misses of ours */

static size_t edit_distance(const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b);
    if (la > NAME_MAX_LEN || lb > NAME_MAX_LEN)
        return SIZE_MAX;
    size_t row[NAME_MAX_LEN + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t above = row[j];
            size_t best = diagonal + (a[i - 1] != b[j - 1]);
            if (above + 1 < best)
                best = above + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diagonal = above;
        }
    }
    return row[lb];
}

/* A near miss (edit distance <= 2, "--kernal") or an unambiguous abbreviation ("--mem").
 * Abbreviations are only suggested, never accepted: a later flag could make them ambiguous. */
static const char *closest(const char *word, size_t len, const char *const *candidates, size_t n)
{
    const char *best = NULL, *prefix_of = NULL;
    size_t best_distance = 3, prefixes = 0;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, len, candidates[i]);
        if (d < best_distance) {
            best = candidates[i];
            best_distance = d;
        }
        if (len >= 3 && strncmp(candidates[i], word, len) == 0) {
            prefix_of = candidates[i];
            prefixes++;
        }
    }
    /* "--mem" is closer to "--net" by edits, but the user began typing "--memory". */
    return prefixes == 1 ? prefix_of : best;
}

static const struct flag_spec *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < RUN_FLAG_COUNT; i++) {
        if (strlen(run_flags[i].name) == len && strncmp(run_flags[i].name, name, len) == 0)
            return &run_flags[i];
    }
    return NULL;
}

static size_t flag_name_len(const char *arg)
{
    return strcspn(arg, "=");
}

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* The word after a flag is its value unless it is one of our flags itself: `--kernel --cpus 2`
 * is a forgotten path, not a kernel named "--cpus" (`--kernel=--cpus` still says that). */
static const char *next_value(int argc, char **argv, int i)
{
    if (i + 1 >= argc)
        return NULL;
    const char *next = argv[i + 1];
    if (is_help(next) || find_flag(next, flag_name_len(next)))
        return NULL;
    return next;
}

/* `kiln run --cpus zero --help` prints help: a user asking for help gets it. No value needs
 * skipping: next_value never takes "-h" or "--help" as a value (write --cmdline=-h for that). */
static bool run_help_requested(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        if (is_help(argv[i]))
            return true;
    }
    return false;
}

static int unknown_run_flag(const char *arg, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE];
    size_t len = flag_name_len(arg);
    char name[CONFIG_QUOTE_SIZE];
    snprintf(name, sizeof(name), "%.*s", (int)len, arg);
    config_quote(name, quoted, sizeof(quoted));
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        return error_fmt(err, -EINVAL, "%s takes no value (expected '%s' alone)", name, name);
    const char *names[RUN_FLAG_COUNT + 1];
    for (size_t i = 0; i < RUN_FLAG_COUNT; i++)
        names[i] = run_flags[i].name;
    names[RUN_FLAG_COUNT] = "--help";
    const char *guess = closest(arg, len, names, RUN_FLAG_COUNT + 1);
    if (guess)
        return error_fmt(err, -EINVAL, "unknown flag '%s' for 'kiln run' (did you mean '%s'?)",
                         quoted, guess);
    return error_fmt(err, -EINVAL, "unknown flag '%s' for 'kiln run' (see 'kiln run --help')",
                     quoted);
}

static int unexpected_argument(const char *arg, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE];
    return error_fmt(err, -EINVAL,
                     "unexpected argument '%s' (YAML VM definitions are not supported yet; use "
                     "flags such as --kernel PATH)",
                     config_quote(arg, quoted, sizeof(quoted)));
}

/* Applies argv[*i] (and its value, advancing *i past it); seen[] catches repeats. */
static int apply_run_arg(int argc, char **argv, int *i, bool *seen, struct vm_config *cfg,
                         struct error *err)
{
    const char *arg = argv[*i];
    if (arg[0] != '-')
        return unexpected_argument(arg, err);
    const struct flag_spec *flag = find_flag(arg, flag_name_len(arg));
    if (!flag)
        return unknown_run_flag(arg, err);
    const char *equals = strchr(arg, '=');
    if ((flag->options & FLAG_NO_VALUE) && equals)
        return error_fmt(err, -EINVAL, "%s takes no value (expected '%s' alone)", flag->name,
                         flag->name);
    const char *value = (flag->options & FLAG_NO_VALUE) ? ""
                        : equals                        ? equals + 1
                                                        : next_value(argc, argv, *i);
    if (!value)
        return error_fmt(err, -EINVAL, "%s: missing value (expected %s)", flag->name,
                         flag->expected);
    if (!equals && !(flag->options & FLAG_NO_VALUE))
        (*i)++;
    size_t index = (size_t)(flag - run_flags);
    if (seen[index] && !(flag->options & FLAG_REPEATABLE))
        return error_fmt(err, -EINVAL, "%s given twice (expected it once)", flag->name);
    seen[index] = true;
    return flag->apply(cfg, value, err);
}

static int parse_run(int argc, char **argv, struct cli_request *req, struct error *err)
{
    if (run_help_requested(argc, argv)) {
        req->action = CLI_ACTION_RUN_HELP;
        return 0;
    }
    bool seen[RUN_FLAG_COUNT] = {false};
    for (int i = 2; i < argc; i++) {
        int r = apply_run_arg(argc, argv, &i, seen, &req->config, err);
        if (r < 0)
            return r;
    }
    if (!req->config.kernel_path)
        return error_fmt(err, -EINVAL, "--kernel: missing (expected " CONFIG_KERNEL_EXPECTED ")");
    req->action = CLI_ACTION_RUN;
    return 0;
}

static const char *const commands[] = {"run", "help", "version"};
#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static int unknown_command(const char *word, const char *context, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE];
    config_quote(word, quoted, sizeof(quoted));
    const char *guess = closest(word, strlen(word), commands, COMMAND_COUNT);
    if (guess)
        return error_fmt(err, -EINVAL, "unknown command '%s'%s (did you mean '%s'?)", quoted,
                         context, guess);
    return error_fmt(err, -EINVAL, "unknown command '%s'%s (expected 'run'; see 'kiln --help')",
                     quoted, context);
}

/* `kiln help` and `kiln help COMMAND`; only `run` has a help text of its own. */
static int parse_help(int argc, char **argv, struct cli_request *req, struct error *err)
{
    req->action = CLI_ACTION_HELP;
    if (argc < 3)
        return 0;
    if (strcmp(argv[2], "run") == 0)
        req->action = CLI_ACTION_RUN_HELP;
    else if (strcmp(argv[2], "help") != 0 && strcmp(argv[2], "version") != 0)
        return unknown_command(argv[2], " for 'kiln help'", err);
    return 0;
}

static int unknown_top_flag(const char *arg, struct error *err)
{
    static const char *const top_flags[] = {"--help", "--version"};
    char quoted[CONFIG_QUOTE_SIZE];
    size_t len = flag_name_len(arg);
    config_quote(arg, quoted, sizeof(quoted));
    if (find_flag(arg, len))
        return error_fmt(err, -EINVAL, "unknown flag '%s' for 'kiln' (did you mean 'kiln run %s'?)",
                         quoted, quoted);
    const char *guess = closest(arg, len, top_flags, 2);
    if (guess)
        return error_fmt(err, -EINVAL, "unknown flag '%s' for 'kiln' (did you mean '%s'?)", quoted,
                         guess);
    return error_fmt(err, -EINVAL,
                     "unknown flag '%s' for 'kiln' (expected a command such as 'run', or --help "
                     "/ --version)",
                     quoted);
}

static int parse_command(int argc, char **argv, struct cli_request *req, struct error *err)
{
    const char *word = argv[1];
    if (is_help(word)) {
        req->action = CLI_ACTION_HELP;
        return 0;
    }
    if (strcmp(word, "--version") == 0 || strcmp(word, "-V") == 0 || strcmp(word, "version") == 0) {
        req->action = CLI_ACTION_VERSION;
        return 0;
    }
    if (strcmp(word, "run") == 0)
        return parse_run(argc, argv, req, err);
    if (strcmp(word, "help") == 0)
        return parse_help(argc, argv, req, err);
    if (word[0] == '-')
        return unknown_top_flag(word, err);
    return unknown_command(word, "", err);
}

int cli_parse(int argc, char **argv, struct cli_request *req, struct error *err)
{
    memset(req, 0, sizeof(*req));
    config_init(&req->config);
    int r;
    if (!req->config.cmdline)
        r = error_fmt(err, -ENOMEM, "out of memory");
    else if (argc < 2)
        r = error_fmt(err, -EINVAL,
                      "missing command (expected 'kiln run --kernel PATH ...'; see 'kiln --help')");
    else
        r = parse_command(argc, argv, req, err);
    if (r < 0)
        cli_request_free(req);
    return r;
}

void cli_request_free(struct cli_request *req)
{
    if (req)
        config_free(&req->config);
}

void cli_print_help(FILE *out)
{
    fprintf(out,
            "kiln %s: a small KVM hypervisor\n"
            "\n"
            "usage:\n"
            "  kiln run --kernel PATH [flags]   boot a VM (see 'kiln run --help')\n"
            "  kiln help [run]                  this text, or the text of 'kiln run --help'\n"
            "  kiln --help, -h                  this text\n"
            "  kiln --version, -V               print the version\n"
            "\n"
            "environment:\n"
            "  KILN_KVM_DEVICE   KVM device to open (default: /dev/kvm)\n",
            KILN_VERSION);
}

void cli_print_run_help(FILE *out)
{
    fprintf(out,
            "usage: kiln run --kernel PATH [flags]\n\nflags (--flag VALUE or --flag=VALUE):\n");
    for (size_t i = 0; i < RUN_FLAG_COUNT; i++) {
        char left[32];
        snprintf(left, sizeof(left), "%s %s", run_flags[i].name, run_flags[i].metavar);
        fprintf(out, "  %-26s %s\n", left, run_flags[i].help);
    }
    fprintf(out, "  %-26s %s\n", "--help, -h", "this text");
    fprintf(out,
            "\n"
            "SIZE is a number of bytes with an optional K, M or G suffix (powers of 1024),\n"
            "e.g. 512M; it must be a multiple of 4 KiB, within 4M to 1024G.\n"
            "On a terminal the console is raw: keys go to the guest; Ctrl-A x quits.\n"
            "\n"
            "exit status:\n"
            "  0        guest powered off, or wrote 0 to the test-exit port\n"
            "  N        guest wrote status N to the test-exit port (0xf4)\n"
            "  123      guest reset (ACPI reset register, i8042, triple fault)\n"
            "  125      kiln could not start the VM (bad flag, bad image, no KVM)\n"
            "  126      the VM stopped on an exit kiln cannot handle (emulation failure, ...)\n"
            "  130/143  stopped by SIGINT (or Ctrl-A x) / SIGTERM\n");
}
