/* Command-line parsing for `kiln run` and friends: a table of flags, each with a parser that
 * fills struct vm_config, and error lines that name the flag, the value and what was expected. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/cli.h"

struct flag_spec {
    const char *name;
    const char *metavar;
    const char *help;
    int (*apply)(struct vm_config *cfg, const char *flag, const char *value, struct error *err);
};

static int replace_string(char **slot, const char *value, const char *flag, struct error *err)
{
    char *copy = strdup(value);
    if (!copy)
        return error_fmt(err, -ENOMEM, "%s: out of memory", flag);
    free(*slot);
    *slot = copy;
    return 0;
}

static int apply_kernel(struct vm_config *cfg, const char *flag, const char *value,
                        struct error *err)
{
    if (!*value)
        return error_fmt(err, -EINVAL, "%s: empty path (expected the path of a kernel image)",
                         flag);
    return replace_string(&cfg->kernel_path, value, flag, err);
}

static int apply_initrd(struct vm_config *cfg, const char *flag, const char *value,
                        struct error *err)
{
    if (!*value)
        return error_fmt(err, -EINVAL, "%s: empty path (expected the path of an initrd)", flag);
    return replace_string(&cfg->initrd_path, value, flag, err);
}

#define CLI_CMDLINE_MAX 65535

static int apply_cmdline(struct vm_config *cfg, const char *flag, const char *value,
                         struct error *err)
{
    size_t len = strlen(value);
    if (len > CLI_CMDLINE_MAX)
        return error_fmt(err, -E2BIG, "%s: %zu bytes is too long (expected at most %d)", flag, len,
                         CLI_CMDLINE_MAX);
    return replace_string(&cfg->cmdline, value, flag, err);
}

static int apply_cpus(struct vm_config *cfg, const char *flag, const char *value, struct error *err)
{
    char *end = NULL;
    errno = 0;
    unsigned long n = (*value >= '0' && *value <= '9') ? strtoul(value, &end, 10) : 0;
    if (!end || *end != '\0' || errno != 0 || n < 1 || n > CONFIG_MAX_CPUS)
        return error_fmt(err, -EINVAL, "%s: '%s' is not a valid vCPU count (expected 1 to %d)",
                         flag, value, CONFIG_MAX_CPUS);
    cfg->cpus = (unsigned)n;
    return 0;
}

static int apply_memory(struct vm_config *cfg, const char *flag, const char *value,
                        struct error *err)
{
    uint64_t bytes;
    int r = config_parse_size(value, &bytes);
    if (r < 0)
        return error_fmt(err, -EINVAL,
                         "%s: '%s' is not a size (expected a number with an optional K, M or G "
                         "suffix, e.g. 512M)",
                         flag, value);
    if (bytes < CONFIG_MIN_MEMORY || bytes > CONFIG_MAX_MEMORY)
        return error_fmt(err, -ERANGE, "%s: '%s' is out of range (expected 4M to 1024G)", flag,
                         value);
    if (bytes % 4096 != 0)
        return error_fmt(err, -EINVAL, "%s: '%s' is not a multiple of 4 KiB (expected e.g. 512M)",
                         flag, value);
    cfg->memory_bytes = bytes;
    return 0;
}

static int apply_console(struct vm_config *cfg, const char *flag, const char *value,
                         struct error *err)
{
    if (strcmp(value, "stdio") == 0 || strcmp(value, "none") == 0) {
        cfg->console = value[0] == 's' ? CONSOLE_STDIO : CONSOLE_NONE;
        free(cfg->console_path);
        cfg->console_path = NULL;
        return 0;
    }
    if (strncmp(value, "file:", 5) == 0) {
        if (value[5] == '\0')
            return error_fmt(err, -EINVAL, "%s: 'file:' needs a path (expected file:PATH)", flag);
        cfg->console = CONSOLE_FILE;
        return replace_string(&cfg->console_path, value + 5, flag, err);
    }
    return error_fmt(err, -EINVAL, "%s: '%s' is not a console (expected stdio, file:PATH or none)",
                     flag, value);
}

static int apply_log_level(struct vm_config *cfg, const char *flag, const char *value,
                           struct error *err)
{
    if (log_level_parse(value, &cfg->log_level) < 0)
        return error_fmt(err, -EINVAL,
                         "%s: '%s' is not a log level (expected error, warn, info or debug)", flag,
                         value);
    return 0;
}

static const struct flag_spec run_flags[] = {
    {"--kernel", "PATH", "kernel image: bzImage, ELF vmlinux or PVH ELF (required)", apply_kernel},
    {"--initrd", "PATH", "initial ramdisk (default: none)", apply_initrd},
    {"--cmdline", "STR", "kernel command line (default: empty)", apply_cmdline},
    {"--cpus", "N", "number of vCPUs, 1-254 (default: 1)", apply_cpus},
    {"--memory", "SIZE", "guest RAM, e.g. 512M or 2G (default: 256M)", apply_memory},
    {"--console", "KIND", "serial console: stdio, file:PATH or none (default: stdio)",
     apply_console},
    {"--log-level", "LEVEL", "error, warn, info or debug (default: warn)", apply_log_level},
};

#define RUN_FLAG_COUNT (sizeof(run_flags) / sizeof(run_flags[0]))

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32)
        return 99;
    size_t row[33];
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

static const char *closest(const char *word, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    size_t best_distance = 3; /* suggest only near misses */
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, candidates[i]);
        if (d < best_distance) {
            best = candidates[i];
            best_distance = d;
        }
    }
    return best;
}

static int unknown_flag(const char *name, struct error *err)
{
    const char *names[RUN_FLAG_COUNT + 1];
    for (size_t i = 0; i < RUN_FLAG_COUNT; i++)
        names[i] = run_flags[i].name;
    names[RUN_FLAG_COUNT] = "--help";
    const char *guess = closest(name, names, RUN_FLAG_COUNT + 1);
    if (guess)
        return error_fmt(err, -EINVAL, "unknown flag '%s' for 'kiln run' (did you mean '%s'?)",
                         name, guess);
    return error_fmt(err, -EINVAL, "unknown flag '%s' for 'kiln run' (see 'kiln run --help')",
                     name);
}

static const struct flag_spec *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < RUN_FLAG_COUNT; i++) {
        if (strlen(run_flags[i].name) == len && strncmp(run_flags[i].name, name, len) == 0)
            return &run_flags[i];
    }
    return NULL;
}

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

static int parse_run(int argc, char **argv, struct cli_request *req, struct error *err)
{
    bool seen[RUN_FLAG_COUNT] = {false};
    for (int i = 2; i < argc; i++) {
        if (is_help(argv[i])) {
            req->action = CLI_ACTION_RUN_HELP;
            return 0;
        }
    }
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-')
            return error_fmt(err, -EINVAL,
                             "unexpected argument '%s' (YAML VM definitions are not supported "
                             "yet; use flags such as --kernel PATH)",
                             arg);
        const char *equals = strchr(arg, '=');
        size_t name_len = equals ? (size_t)(equals - arg) : strlen(arg);
        const struct flag_spec *flag = find_flag(arg, name_len);
        if (!flag) {
            char name[64];
            snprintf(name, sizeof(name), "%.*s", (int)name_len, arg);
            return unknown_flag(name, err);
        }
        const char *value = equals ? equals + 1 : NULL;
        if (!value) {
            if (i + 1 >= argc)
                return error_fmt(err, -EINVAL, "%s: missing value (expected %s)", flag->name,
                                 flag->metavar);
            value = argv[++i];
        }
        size_t index = (size_t)(flag - run_flags);
        if (seen[index])
            return error_fmt(err, -EINVAL, "%s given twice (expected it once)", flag->name);
        seen[index] = true;
        int r = flag->apply(&req->config, flag->name, value, err);
        if (r < 0)
            return r;
    }
    if (!req->config.kernel_path)
        return error_fmt(err, -EINVAL,
                         "--kernel: missing (expected the path of a kernel image: bzImage, ELF "
                         "vmlinux or PVH ELF)");
    req->action = CLI_ACTION_RUN;
    return 0;
}

int cli_parse(int argc, char **argv, struct cli_request *req, struct error *err)
{
    memset(req, 0, sizeof(*req));
    config_init(&req->config);
    if (!req->config.cmdline)
        return error_fmt(err, -ENOMEM, "out of memory");
    int r = 0;
    if (argc < 2) {
        r = error_fmt(err, -EINVAL,
                      "missing command (expected 'kiln run --kernel PATH ...'; "
                      "see 'kiln --help')");
    } else if (is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        req->action = CLI_ACTION_HELP;
    } else if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0 ||
               strcmp(argv[1], "version") == 0) {
        req->action = CLI_ACTION_VERSION;
    } else if (strcmp(argv[1], "run") == 0) {
        r = parse_run(argc, argv, req, err);
    } else if (argv[1][0] == '-') {
        r = error_fmt(err, -EINVAL,
                      "unknown flag '%s' for 'kiln' (expected a command such as 'run', or "
                      "--help / --version)",
                      argv[1]);
    } else {
        static const char *const commands[] = {"run", "help", "version"};
        const char *guess = closest(argv[1], commands, 3);
        r = guess ? error_fmt(err, -EINVAL, "unknown command '%s' (did you mean '%s'?)", argv[1],
                              guess)
                  : error_fmt(err, -EINVAL,
                              "unknown command '%s' (expected 'run'; see 'kiln "
                              "--help')",
                              argv[1]);
    }
    if (r < 0)
        cli_request_free(req);
    return r;
}

void cli_request_free(struct cli_request *req)
{
    config_free(&req->config);
}

void cli_print_help(FILE *out)
{
    fprintf(out,
            "kiln %s: a small KVM hypervisor\n\n"
            "usage:\n"
            "  kiln run --kernel PATH [flags]   boot a VM (see 'kiln run --help')\n"
            "  kiln --help                      this text\n"
            "  kiln --version                   print the version\n\n"
            "environment:\n"
            "  KILN_KVM_DEVICE   KVM device to open (default /dev/kvm)\n",
            KILN_VERSION);
}

void cli_print_run_help(FILE *out)
{
    fprintf(out, "usage: kiln run --kernel PATH [flags]\n\nflags:\n");
    for (size_t i = 0; i < RUN_FLAG_COUNT; i++) {
        char left[32];
        snprintf(left, sizeof(left), "%s %s", run_flags[i].name, run_flags[i].metavar);
        fprintf(out, "  %-20s %s\n", left, run_flags[i].help);
    }
    fprintf(out, "  %-20s %s\n", "--help", "this text");
    fprintf(out,
            "\nSIZE is a number of bytes with an optional K, M or G suffix (powers of 1024).\n"
            "On a terminal the console is raw: keys go to the guest; Ctrl-A x quits.\n\n"
            "exit status:\n"
            "  0        guest powered off, or wrote 0 to the test-exit port\n"
            "  N        guest wrote status N to the test-exit port (0xf4)\n"
            "  123      guest reset (i8042, triple fault)\n"
            "  125      kiln could not start the VM (bad flag, bad image, no KVM)\n"
            "  126      the VM stopped on an exit kiln cannot handle (emulation failure, ...)\n"
            "  130/143  stopped by SIGINT (or Ctrl-A x) / SIGTERM\n");
}
