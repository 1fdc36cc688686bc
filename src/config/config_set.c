/* The setters behind both the CLI flags and the YAML keys: one parser per setting, so a value
 * has the same syntax, range and message however it arrived; and the keywords they accept. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/config/config.h"

static int replace_string(char **slot, const char *value, struct error *err)
{
    char *copy = strdup(value);
    if (!copy)
        return error_fmt(err, -ENOMEM, "out of memory");
    free(*slot);
    *slot = copy;
    return 0;
}

static int bad_value(const char *label, const char *text, const char *what, const char *expected,
                     struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE];
    return error_fmt(err, -EINVAL, "%s: '%s' %s (expected %s)", label,
                     config_quote(text, quoted, sizeof(quoted)), what, expected);
}

int config_set_name(struct vm_config *cfg, const char *label, const char *text, struct error *err)
{
    size_t len = strlen(text);
    /* A name ends up in log lines and, later, socket and file names: keep it to safe bytes. */
    bool ok =
        len >= 1 && len <= CONFIG_MAX_NAME &&
        strspn(text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
    if (!ok)
        return bad_value(
            label, text, "is not a valid name",
            "1 to " CONFIG_STRINGIFY(CONFIG_MAX_NAME) " letters, digits, '.', '_' or '-'", err);
    return replace_string(&cfg->name, text, err);
}

int config_set_kernel(struct vm_config *cfg, const char *label, const char *text, struct error *err)
{
    if (!*text)
        return error_fmt(err, -EINVAL, "%s: empty path (expected " CONFIG_KERNEL_EXPECTED ")",
                         label);
    return replace_string(&cfg->kernel_path, text, err);
}

int config_set_initrd(struct vm_config *cfg, const char *label, const char *text, struct error *err)
{
    if (!*text)
        return error_fmt(err, -EINVAL, "%s: empty path (expected the path of an initial ramdisk)",
                         label);
    return replace_string(&cfg->initrd_path, text, err);
}

int config_set_cmdline(struct vm_config *cfg, const char *label, const char *text,
                       struct error *err)
{
    int r = config_check_cmdline(label, text, err);
    return r < 0 ? r : replace_string(&cfg->cmdline, text, err);
}

/* Digits only: strtoul would also take " 7", "+7" and "-1" (as a huge number). Saturates just
 * above CONFIG_MAX_CPUS so long digit strings cannot overflow. 0 means "not a count". */
/* One console sink, SINK in CONFIG_CONSOLE_SINKS, into *kind and *path (owned). */
static int set_console_sink(enum console_kind *kind, char **path, const char *label,
                            const char *sink, const char *expected, struct error *err)
{
    static const struct {
        const char *word;
        enum console_kind kind;
    } bare[] = {{"stdio", CONSOLE_STDIO}, {"none", CONSOLE_NONE}, {"pty", CONSOLE_PTY}};
    for (size_t i = 0; i < sizeof(bare) / sizeof(bare[0]); i++) {
        if (strcmp(sink, bare[i].word) == 0) {
            *kind = bare[i].kind;
            free(*path);
            *path = NULL;
            return 0;
        }
    }
    static const struct {
        const char *prefix;
        enum console_kind kind;
    } with_path[] = {{"file:", CONSOLE_FILE}, {"socket:", CONSOLE_SOCKET}};
    for (size_t i = 0; i < sizeof(with_path) / sizeof(with_path[0]); i++) {
        size_t n = strlen(with_path[i].prefix);
        if (strncmp(sink, with_path[i].prefix, n) != 0)
            continue;
        if (sink[n] == '\0')
            return error_fmt(err, -EINVAL, "%s: '%s' needs a path (expected %sPATH)", label,
                             with_path[i].prefix, with_path[i].prefix);
        *kind = with_path[i].kind;
        return replace_string(path, sink + n, err);
    }
    return bad_value(label, sink, "is not a console", expected, err);
}

int config_set_console(struct vm_config *cfg, const char *label, const char *text,
                       struct error *err)
{
    enum console_device_kind device = CONSOLE_ON_SERIAL;
    const char *sink = text;
    if (strcmp(text, "virtio") == 0) {
        device = CONSOLE_ON_VIRTIO;
        sink = "stdio";
    } else if (strncmp(text, "virtio:", 7) == 0) {
        device = CONSOLE_ON_VIRTIO;
        sink = text + 7;
    }
    int r = set_console_sink(&cfg->console, &cfg->console_path, label, sink,
                             CONFIG_CONSOLE_SINKS ", optionally after virtio:", err);
    if (r == 0)
        cfg->console_device = device;
    return r;
}

int config_set_vconsole(struct vm_config *cfg, const char *label, const char *text,
                        struct error *err)
{
    int r = set_console_sink(&cfg->vconsole_kind, &cfg->vconsole_path, label, text,
                             CONFIG_CONSOLE_SINKS, err);
    if (r == 0)
        cfg->vconsole = true;
    return r;
}

static int sink_text(const char *device, enum console_kind kind, const char *path, char **text)
{
    static const char *const words[] = {[CONSOLE_STDIO] = "stdio",
                                        [CONSOLE_FILE] = "file:",
                                        [CONSOLE_NONE] = "none",
                                        [CONSOLE_SOCKET] = "socket:",
                                        [CONSOLE_PTY] = "pty"};
    bool has_path = kind == CONSOLE_FILE || kind == CONSOLE_SOCKET;
    if (asprintf(text, "%s%s%s", device, words[kind], has_path && path ? path : "") < 0) {
        *text = NULL;
        return -ENOMEM;
    }
    return 0;
}

int config_console_text(const struct vm_config *cfg, char **text)
{
    const char *device = cfg->console_device == CONSOLE_ON_VIRTIO ? "virtio:" : "";
    return sink_text(device, cfg->console, cfg->console_path, text);
}

int config_vconsole_text(const struct vm_config *cfg, char **text)
{
    *text = NULL;
    return cfg->vconsole ? sink_text("", cfg->vconsole_kind, cfg->vconsole_path, text) : 0;
}

size_t config_sink_path_offset(const char *text)
{
    const char *sink = strncmp(text, "virtio:", 7) == 0 ? text + 7 : text;
    size_t prefix = strncmp(sink, "file:", 5) == 0 ? 5 : strncmp(sink, "socket:", 7) == 0 ? 7 : 0;
    return prefix && sink[prefix] ? (size_t)(sink - text) + prefix : 0;
}

int config_set_log_level(struct vm_config *cfg, const char *label, const char *text,
                         struct error *err)
{
    if (log_level_parse(text, &cfg->log_level) < 0)
        return bad_value(label, text, "is not a log level", "error, warn, info or debug", err);
    return 0;
}

/* Index of text in words (n entries), or -1: for settings that take one of a few keywords. */
static int keyword_index(const char *text, const char *const *words, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(text, words[i]) == 0)
            return i;
    return -1;
}

static const char *const reset_words[] = {"exit", "restart"};
static const char *const host_compat_words[] = {"auto", "on", "off"};
static const char *const seccomp_words[] = {"off", "log", "kill"};
static const char *const discovery_words[] = {"acpi", "cmdline"};
static const char *const cache_words[] = {"writeback", "writethrough", "unsafe"};
static const char *const switch_words[] = {"off", "on"}; /* index: the setting's bool */

_Static_assert(RESET_EXIT == 0 && RESET_RESTART == 1, "reset_words follows enum reset_action");
_Static_assert(HOST_COMPAT_AUTO == 0 && HOST_COMPAT_ON == 1 && HOST_COMPAT_OFF == 2,
               "host_compat_words follows enum host_compat_mode");
_Static_assert(SANDBOX_OFF == 0 && SANDBOX_LOG == 1 && SANDBOX_KILL == 2,
               "seccomp_words follows enum sandbox_mode");
_Static_assert(DISCOVERY_ACPI == 0 && DISCOVERY_CMDLINE == 1,
               "discovery_words follows enum device_discovery");
_Static_assert(DISK_CACHE_WRITEBACK == 0 && DISK_CACHE_WRITETHROUGH == 1 && DISK_CACHE_UNSAFE == 2,
               "cache_words follows enum disk_cache");

int config_set_on_reset(struct vm_config *cfg, const char *label, const char *text,
                        struct error *err)
{
    int i = keyword_index(text, reset_words, 2);
    if (i < 0)
        return bad_value(label, text, "is not valid", "exit or restart", err);
    cfg->on_reset = (enum reset_action)i;
    return 0;
}

int config_set_host_compat(struct vm_config *cfg, const char *label, const char *text,
                           struct error *err)
{
    int i = keyword_index(text, host_compat_words, 3);
    if (i < 0)
        return bad_value(label, text, "is not valid", "auto, on or off", err);
    cfg->host_compat = (enum host_compat_mode)i;
    return 0;
}

int config_set_seccomp(struct vm_config *cfg, const char *label, const char *text,
                       struct error *err)
{
    int i = keyword_index(text, seccomp_words, 3);
    if (i < 0)
        return bad_value(label, text, "is not valid", "off, log or kill", err);
    cfg->seccomp = (enum sandbox_mode)i;
    return 0;
}

int config_set_device_discovery(struct vm_config *cfg, const char *label, const char *text,
                                struct error *err)
{
    int i = keyword_index(text, discovery_words, 2);
    if (i < 0)
        return bad_value(label, text, "is not valid", "acpi or cmdline", err);
    cfg->device_discovery = (enum device_discovery)i;
    return 0;
}

int config_set_vmgenid(struct vm_config *cfg, const char *label, const char *text,
                       struct error *err)
{
    int i = keyword_index(text, switch_words, 2);
    if (i < 0)
        return bad_value(label, text, "is not valid", "on or off", err);
    cfg->vmgenid = i == 1;
    return 0;
}

int config_set_shutdown_grace(struct vm_config *cfg, const char *label, const char *text,
                              struct error *err)
{
    unsigned long seconds = 0;
    bool digits = *text && strspn(text, "0123456789") == strlen(text) && strlen(text) <= 5;
    if (digits)
        seconds = strtoul(text, NULL, 10);
    if (!digits || seconds > CONFIG_MAX_SHUTDOWN_GRACE)
        return bad_value(
            label, text, "is not valid",
            "a number of seconds from 0 to " CONFIG_STRINGIFY(CONFIG_MAX_SHUTDOWN_GRACE), err);
    cfg->shutdown_grace_seconds = (unsigned)seconds;
    return 0;
}

int config_parse_bool(const char *text)
{
    /* YAML 1.2's core spellings only: yes/no/on/off would be a YAML 1.1 habit read wrongly. */
    if (strcmp(text, "true") == 0 || strcmp(text, "True") == 0 || strcmp(text, "TRUE") == 0)
        return 1;
    if (strcmp(text, "false") == 0 || strcmp(text, "False") == 0 || strcmp(text, "FALSE") == 0)
        return 0;
    return -EINVAL;
}

int config_set_rng(struct vm_config *cfg, const char *label, const char *text, struct error *err)
{
    int v = config_parse_bool(text);
    if (v < 0)
        return bad_value(label, text, "is not valid", "true or false", err);
    cfg->rng = v;
    return 0;
}

int config_disk_parse_cache(const char *text, enum disk_cache *cache)
{
    int i = keyword_index(text, cache_words, 3);
    if (i < 0)
        return -EINVAL;
    *cache = (enum disk_cache)i;
    return 0;
}

const char *config_on_reset_name(enum reset_action action)
{
    return reset_words[action == RESET_RESTART];
}

const char *config_host_compat_name(enum host_compat_mode mode)
{
    return (unsigned)mode < 3 ? host_compat_words[mode] : "auto";
}

const char *config_seccomp_name(enum sandbox_mode mode)
{
    return (unsigned)mode < 3 ? seccomp_words[mode] : "kill";
}

const char *config_device_discovery_name(enum device_discovery discovery)
{
    return discovery_words[discovery == DISCOVERY_CMDLINE];
}

const char *config_disk_cache_name(enum disk_cache cache)
{
    return (unsigned)cache < 3 ? cache_words[cache] : "writeback";
}
