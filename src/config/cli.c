/* Command-line parsing for `kiln run`, `kiln validate`, `kiln config` and friends: the flags of
 * the settings table (config_settings.c), whose setters the YAML keys share, each applied once;
 * the optional VM definition file, loaded under them (flags win). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/config/cli.h"
#include "kiln/config/config_settings.h"

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
    if (is_help(next) || config_setting_by_flag(next, flag_name_len(next)))
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
    const char *names[CONFIG_SETTING_COUNT + 1];
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++)
        names[i] = config_settings[i].flag;
    names[CONFIG_SETTING_COUNT] = "--help";
    const char *guess = config_closest(arg, len, names, CONFIG_SETTING_COUNT + 1);
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

/* Applies argv[*i] (and its value, advancing *i past it) to req->config, once: a file goes
 * under the flags later. A word that is no flag names the VM definition file. */
static int apply_run_arg(const char *command, int argc, char **argv, int *i,
                         struct cli_request *req, struct error *err)
{
    const char *arg = argv[*i];
    if (arg[0] != '-') {
        if (req->file)
            return unexpected_argument(arg, req->file, err);
        req->file = strdup(arg);
        return req->file ? 0 : error_fmt(err, -ENOMEM, "out of memory");
    }
    const struct config_setting *flag = config_setting_by_flag(arg, flag_name_len(arg));
    if (!flag)
        return unknown_run_flag(command, arg, err);
    const char *equals = strchr(arg, '=');
    bool is_switch = flag->options & CONFIG_SETTING_SWITCH;
    if (is_switch && equals)
        return error_fmt(err, -EINVAL, "%s takes no value (expected '%s' alone)", flag->flag,
                         flag->flag);
    const char *value = is_switch ? "true" : equals ? equals + 1 : next_value(argc, argv, *i);
    if (!value)
        return error_fmt(err, -EINVAL, "%s: missing value (expected %s)", flag->flag,
                         flag->expected);
    if (!equals && !is_switch)
        (*i)++;
    if (req->given[flag->field] && !(flag->options & CONFIG_SETTING_LIST))
        return error_fmt(err, -EINVAL, "%s given twice (expected it once)", flag->flag);
    req->given[flag->field] = true;
    return flag->set(&req->config, flag->flag, value, err);
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
    for (int i = 2; i < argc; i++) {
        int r = apply_run_arg(argv[1], argc, argv, &i, req, err);
        if (r < 0)
            return r;
    }
    if (!req->file && !req->config.kernel_path)
        return error_fmt(err, -EINVAL, "--kernel: missing (expected " CONFIG_KERNEL_EXPECTED ")");
    return 0;
}

static const char *const commands[] = {"run", "validate", "config",   "test", "ctl",
                                       "ps",  "restore",  "snapshot", "help", "version"};
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
    if (config_setting_by_flag(arg, len))
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

/* A flag given with a file replaced the file's value, and names it in messages; --disk and
 * --net replaced the file's whole list. */
static void forget_file_value(struct cli_request *req, enum config_field field)
{
    struct config_yaml_origin *origin = &req->origin;
    memset(&origin->field[field], 0, sizeof(origin->field[field]));
    if (field == CONFIG_FIELD_DISK)
        memset(origin->disk, 0, sizeof(origin->disk));
    if (field == CONFIG_FIELD_NET)
        memset(origin->net, 0, sizeof(origin->net));
    if (field == CONFIG_FIELD_DISK || field == CONFIG_FIELD_NET || field == CONFIG_FIELD_RNG ||
        field == CONFIG_FIELD_BALLOON || field == CONFIG_FIELD_CONSOLE)
        memset(&origin->field[CONFIG_FIELD_DEVICES], 0, sizeof(origin->field[0]));
}

int cli_load(struct cli_request *req, bool check_files, struct config_problems *problems)
{
    if (req->file) {
        /* The file fills what the flags left: its values for the settings they gave are
         * checked (a bad value is reported even so) but not kept. */
        config_yaml_origin_free(&req->origin);
        int r = config_yaml_load_under(req->file, &req->config, req->given, &req->origin, problems);
        if (r < 0)
            return r;
        for (int field = 0; field < CONFIG_FIELD_COUNT; field++)
            if (req->given[field])
                forget_file_value(req, (enum config_field)field);
    }
    struct config_namer namer = {config_yaml_name, &req->origin};
    config_check_all(&req->config, &namer, check_files, problems);
    return problems->first_code;
}

void cli_request_free(struct cli_request *req)
{
    if (!req)
        return;
    config_free(&req->config);
    free(req->file);
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
        "  kiln ctl SOCKET COMMAND [flags]  control a running VM (see 'kiln ctl --help')\n"
        "  kiln ps [flags]                  list the running VMs and their API sockets\n"
        "  kiln restore DIR [flags]         run a VM from a snapshot (see 'kiln restore --help')\n"
        "  kiln receive --listen ADDRESS    run a VM another kiln migrates here ('kiln receive "
        "-h')\n"
        "  kiln snapshot merge DIR          fold a diff snapshot into its base\n"
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
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++) {
        const struct config_setting *flag = &config_settings[i];
        char left[32];
        snprintf(left, sizeof(left), "%s%s%s", flag->flag, *flag->metavar ? " " : "",
                 flag->metavar);
        fprintf(out, "  %-26s %s\n", left, flag->help);
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
            "  130/143  stopped by SIGINT (or Ctrl-A x) / SIGTERM\n"
            "  159      killed by its seccomp filter (SIGSYS): rerun with --seccomp log\n");
}
