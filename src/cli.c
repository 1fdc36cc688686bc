/* Command-line parsing for `kiln run`, `kiln validate`, `kiln config` and friends: a table of
 * flags, each naming the config setter it shares with the YAML keys; the optional VM
 * definition file, and the flags applied over it (flags win). */
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
    config_setter apply; /* gets the flag's name as its label */
    enum config_field field;
    unsigned options; /* FLAG_* */
};

enum {
    FLAG_REPEATABLE = 1, /* --disk: each use adds one */
    FLAG_NO_VALUE = 2,   /* --rng: a switch; apply gets "" */
};

static int apply_disk(struct vm_config *cfg, const char *label, const char *value,
                      struct error *err)
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

static int apply_net(struct vm_config *cfg, const char *label, const char *value, struct error *err)
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

static int apply_rng(struct vm_config *cfg, const char *label, const char *value, struct error *err)
{
    cfg->rng = true;
    return 0;
}

/* The order here is the order of `kiln run --help`. */
static const struct flag_spec run_flags[] = {
    {"--kernel", "PATH", CONFIG_KERNEL_EXPECTED,
     "kernel image: bzImage, ELF vmlinux or PVH ELF (required)", config_set_kernel,
     CONFIG_FIELD_KERNEL, 0},
    {"--initrd", "PATH", "the path of an initial ramdisk", "initial ramdisk (default: none)",
     config_set_initrd, CONFIG_FIELD_INITRD, 0},
    {"--cmdline", "STR", "a kernel command line, e.g. 'console=ttyS0'",
     "kernel command line (default: empty)", config_set_cmdline, CONFIG_FIELD_CMDLINE, 0},
    {"--cpus", "N", "a vCPU count from 1 to " STRINGIFY(CONFIG_MAX_CPUS),
     "number of vCPUs, 1-" STRINGIFY(CONFIG_MAX_CPUS) " (default: 1)", config_set_cpus,
     CONFIG_FIELD_CPUS, 0},
    {"--memory", "SIZE", "a size such as 512M", "guest RAM, e.g. 512M or 2G (default: 256M)",
     config_set_memory, CONFIG_FIELD_MEMORY, 0},
    {"--disk", "SPEC", CONFIG_DISK_SPEC,
     "virtio-blk disk (raw image or block device), repeatable, first is vda:\n"
     "        " CONFIG_DISK_SPEC,
     apply_disk, CONFIG_FIELD_DISK, FLAG_REPEATABLE},
    {"--net", "SPEC", CONFIG_NET_SPEC,
     "virtio-net on a TAP (opened or created), repeatable: " CONFIG_NET_SPEC, apply_net,
     CONFIG_FIELD_NET, FLAG_REPEATABLE},
    {"--rng", "", "nothing", "add a virtio-rng device (entropy from the host's getrandom)",
     apply_rng, CONFIG_FIELD_RNG, FLAG_NO_VALUE},
    {"--device-discovery", "HOW", "acpi or cmdline",
     "where the guest finds virtio devices: acpi or cmdline (default: acpi)",
     config_set_device_discovery, CONFIG_FIELD_DEVICE_DISCOVERY, 0},
    {"--console", "SINK", CONFIG_CONSOLE_SINKS ", optionally after virtio:",
     "the console on ttyS0: " CONFIG_CONSOLE_SINKS ";\n"
     "                             virtio[:SINK] puts it on hvc0 instead (default: stdio)",
     config_set_console, CONFIG_FIELD_CONSOLE, 0},
    {"--vconsole", "SINK", CONFIG_CONSOLE_SINKS,
     "add a virtio-console (hvc0) beside ttyS0, on a sink:\n"
     "                             " CONFIG_CONSOLE_SINKS,
     config_set_vconsole, CONFIG_FIELD_VCONSOLE, 0},
    {"--log-level", "LEVEL", "error, warn, info or debug",
     "error, warn, info or debug (default: warn)", config_set_log_level, CONFIG_FIELD_LOG_LEVEL, 0},
    {"--on-reset", "ACTION", "exit or restart",
     "when the guest resets: exit (status 123) or restart it (default: exit)", config_set_on_reset,
     CONFIG_FIELD_ON_RESET, 0},
    {"--shutdown-grace", "SECONDS", "a number of seconds",
     "power button on SIGTERM/SIGINT, hard stop this much later (default: 5)",
     config_set_shutdown_grace, CONFIG_FIELD_SHUTDOWN_GRACE, 0},
    {"--host-compat", "MODE", "auto, on or off",
     "for hosts emulating guest ring 0: auto (probe), on, off (default: auto)",
     config_set_host_compat, CONFIG_FIELD_HOST_COMPAT, 0},
    {"--name", "NAME",
     "a name of 1 to " STRINGIFY(CONFIG_MAX_NAME) " letters, digits, '.', '_' or '-'",
     "the VM's name, in the effective configuration (default: none)", config_set_name,
     CONFIG_FIELD_NAME, 0},
};

#define RUN_FLAG_COUNT (sizeof(run_flags) / sizeof(run_flags[0]))
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

static int unknown_run_flag(const char *command, const char *arg, struct error *err)
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
    const char *guess = config_closest(arg, len, names, RUN_FLAG_COUNT + 1);
    if (guess)
        return error_fmt(err, -EINVAL, "unknown flag '%s' for 'kiln %s' (did you mean '%s'?)",
                         quoted, command, guess);
    return error_fmt(err, -EINVAL, "unknown flag '%s' for 'kiln %s' (see 'kiln run --help')",
                     quoted, command);
}

static int unexpected_argument(const char *arg, const char *file, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE], file_quoted[CONFIG_QUOTE_SIZE];
    return error_fmt(err, -EINVAL,
                     "unexpected argument '%s' (expected one VM definition file, and '%s' is "
                     "one)",
                     config_quote(arg, quoted, sizeof(quoted)),
                     config_quote(file, file_quoted, sizeof(file_quoted)));
}

static int remember_use(struct cli_request *req, size_t flag, const char *value, struct error *err)
{
    struct cli_flag_use *uses = realloc(req->uses, (req->nuses + 1) * sizeof(*uses));
    if (!uses)
        return error_fmt(err, -ENOMEM, "out of memory");
    req->uses = uses;
    uses[req->nuses].flag = (unsigned)flag;
    uses[req->nuses].value = strdup(value);
    if (!uses[req->nuses].value)
        return error_fmt(err, -ENOMEM, "out of memory");
    req->nuses++;
    return 0;
}

/* Applies argv[*i] (and its value, advancing *i past it) to req->config and remembers it for
 * cli_load; seen[] catches repeats. A word that is no flag names the VM definition file. */
static int apply_run_arg(const char *command, int argc, char **argv, int *i, bool *seen,
                         struct cli_request *req, struct error *err)
{
    const char *arg = argv[*i];
    if (arg[0] != '-') {
        if (req->file)
            return unexpected_argument(arg, req->file, err);
        req->file = strdup(arg);
        return req->file ? 0 : error_fmt(err, -ENOMEM, "out of memory");
    }
    const struct flag_spec *flag = find_flag(arg, flag_name_len(arg));
    if (!flag)
        return unknown_run_flag(command, arg, err);
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
    int r = flag->apply(&req->config, flag->name, value, err);
    return r < 0 ? r : remember_use(req, index, value, err);
}

/* `kiln run|validate|config [VM.yaml] [flags]`: the flags are checked here, the file later. */
static int parse_vm_command(int argc, char **argv, enum cli_action action, struct cli_request *req,
                            struct error *err)
{
    req->action = action;
    if (run_help_requested(argc, argv)) {
        req->action = CLI_ACTION_RUN_HELP;
        return 0;
    }
    bool seen[RUN_FLAG_COUNT] = {false};
    for (int i = 2; i < argc; i++) {
        int r = apply_run_arg(argv[1], argc, argv, &i, seen, req, err);
        if (r < 0)
            return r;
    }
    if (!req->file && !req->config.kernel_path)
        return error_fmt(err, -EINVAL, "--kernel: missing (expected " CONFIG_KERNEL_EXPECTED ")");
    return 0;
}

static const char *const commands[] = {"run", "validate", "config", "test", "help", "version"};
#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static int unknown_command(const char *word, const char *context, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE];
    config_quote(word, quoted, sizeof(quoted));
    const char *guess = config_closest(word, strlen(word), commands, COMMAND_COUNT);
    if (guess)
        return error_fmt(err, -EINVAL, "unknown command '%s'%s (did you mean '%s'?)", quoted,
                         context, guess);
    return error_fmt(err, -EINVAL,
                     "unknown command '%s'%s (expected run, validate or config; see 'kiln "
                     "--help')",
                     quoted, context);
}

/* `kiln help` and `kiln help COMMAND`; run, validate and config share the flags' help. */
static int parse_help(int argc, char **argv, struct cli_request *req, struct error *err)
{
    req->action = CLI_ACTION_HELP;
    if (argc < 3)
        return 0;
    if (strcmp(argv[2], "run") == 0 || strcmp(argv[2], "validate") == 0 ||
        strcmp(argv[2], "config") == 0)
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
    const char *guess = config_closest(arg, len, top_flags, 2);
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
        return parse_vm_command(argc, argv, CLI_ACTION_RUN, req, err);
    if (strcmp(word, "validate") == 0)
        return parse_vm_command(argc, argv, CLI_ACTION_VALIDATE, req, err);
    if (strcmp(word, "config") == 0)
        return parse_vm_command(argc, argv, CLI_ACTION_CONFIG, req, err);
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
    if (r < 0) {
        enum cli_action action = req->action;
        cli_request_free(req);
        req->action = action;
    }
    return r;
}

/* A flag given with a file replaces the file's value, and takes over naming it in messages;
 * --disk and --net replace the file's whole list. */
static void forget_file_value(struct cli_request *req, enum config_field field)
{
    struct config_yaml_origin *origin = &req->origin;
    memset(&origin->field[field], 0, sizeof(origin->field[field]));
    if (field == CONFIG_FIELD_DISK)
        memset(origin->disk, 0, sizeof(origin->disk));
    if (field == CONFIG_FIELD_NET)
        memset(origin->net, 0, sizeof(origin->net));
    if (field == CONFIG_FIELD_DISK || field == CONFIG_FIELD_NET || field == CONFIG_FIELD_RNG ||
        field == CONFIG_FIELD_CONSOLE)
        memset(&origin->field[CONFIG_FIELD_DEVICES], 0, sizeof(origin->field[0]));
}

static void apply_uses(struct cli_request *req, struct vm_config *cfg,
                       struct config_problems *problems)
{
    bool disks_replaced = false, nets_replaced = false;
    for (unsigned i = 0; i < req->nuses; i++) {
        const struct flag_spec *flag = &run_flags[req->uses[i].flag];
        if (flag->field == CONFIG_FIELD_DISK && !disks_replaced) {
            for (unsigned d = 0; d < cfg->ndisks; d++)
                config_free_disk(&cfg->disks[d]);
            cfg->ndisks = 0;
            disks_replaced = true;
        }
        if (flag->field == CONFIG_FIELD_NET && !nets_replaced) {
            for (unsigned n = 0; n < cfg->nnets; n++)
                config_free_net(&cfg->nets[n]);
            cfg->nnets = 0;
            nets_replaced = true;
        }
        struct error err;
        int r = flag->apply(cfg, flag->name, req->uses[i].value, &err);
        if (r < 0) /* it applied once already: only memory can run out */
            config_problems_add(problems, r, err.msg);
        forget_file_value(req, flag->field);
    }
}

static bool request_label(const void *ctx, enum config_field field, unsigned index, char *buf,
                          size_t size)
{
    const struct cli_request *req = ctx;
    int from_file = config_yaml_label(&req->origin, field, index, buf, size);
    if (from_file == 0)
        snprintf(buf, size, "%s", config_field_flag(field));
    return from_file >= 0;
}

int cli_load(struct cli_request *req, bool check_files, struct config_problems *problems)
{
    if (req->file) {
        struct vm_config cfg;
        config_init(&cfg);
        config_yaml_origin_free(&req->origin);
        int r = cfg.cmdline ? config_yaml_load(req->file, &cfg, &req->origin, problems) : -ENOMEM;
        if (r < 0) {
            if (!cfg.cmdline)
                config_problems_add(problems, r, "out of memory");
            config_free(&cfg);
            return r;
        }
        apply_uses(req, &cfg, problems);
        config_free(&req->config);
        req->config = cfg;
    }
    struct config_namer namer = {request_label, req};
    config_check_all(&req->config, &namer, check_files, problems);
    return problems->first_code;
}

void cli_request_free(struct cli_request *req)
{
    if (!req)
        return;
    config_free(&req->config);
    free(req->file);
    for (unsigned i = 0; i < req->nuses; i++)
        free(req->uses[i].value);
    free(req->uses);
    config_yaml_origin_free(&req->origin);
    memset(req, 0, sizeof(*req));
}

void cli_print_help(FILE *out)
{
    fprintf(
        out,
        "kiln %s: a small KVM hypervisor\n"
        "\n"
        "usage:\n"
        "  kiln run --kernel PATH [flags]   boot a VM (see 'kiln run --help')\n"
        "  kiln run VM.yaml [flags]         boot the VM a YAML file defines (flags override it)\n"
        "  kiln validate VM.yaml [flags]    check a VM definition, start nothing (exit 0 or 1)\n"
        "  kiln config VM.yaml [flags]      print the effective configuration as YAML\n"
        "  kiln test FILE... [flags]        run scripted test boots (see 'kiln test --help')\n"
        "  kiln help [COMMAND]              this text, or the text of 'kiln run --help'\n"
        "  kiln --help, -h                  this text\n"
        "  kiln --version, -V               print the version\n"
        "\n"
        "environment:\n"
        "  KILN_KVM_DEVICE   KVM device to open (default: /dev/kvm)\n",
        KILN_VERSION);
}

void cli_print_run_help(FILE *out)
{
    fprintf(out, "usage: kiln run --kernel PATH [flags]\n"
                 "       kiln run|validate|config VM.yaml [flags]\n"
                 "\n"
                 "VM.yaml is a VM definition (docs/vm-yaml.md); flags given with it override its\n"
                 "values, and --disk/--net replace its lists.\n"
                 "\n"
                 "flags (--flag VALUE or --flag=VALUE):\n");
    for (size_t i = 0; i < RUN_FLAG_COUNT; i++) {
        char left[32];
        snprintf(left, sizeof(left), "%s %s", run_flags[i].name, run_flags[i].metavar);
        fprintf(out, "  %-26s %s\n", left, run_flags[i].help);
    }
    fprintf(out, "  %-26s %s\n", "--expect REGEX", "exit 0 once the console matches, else 1");
    fprintf(out, "  %-26s %s\n", "--timeout DURATION",
            "with --expect: give up after (default: 60s)");
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
