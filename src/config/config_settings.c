/* The settings table: every `kiln run` flag with its YAML key, setter, getter and texts, in the
 * order of a VM definition; and the parser of --disk/--net values by their entries' keys. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/config/config_limit.h"
#include "kiln/config/config_settings.h"

#define S(x) CONFIG_STRINGIFY(x)

int config_text(const char *value, char **text)
{
    *text = value ? strdup(value) : NULL;
    return value && !*text ? -ENOMEM : 0;
}

int config_text_unsigned(unsigned value, char **text)
{
    char digits[16];
    snprintf(digits, sizeof(digits), "%u", value);
    return config_text(digits, text);
}

static int get_name(const struct vm_config *cfg, char **text)
{
    return config_text(cfg->name, text);
}

static int get_cpu_template(const struct vm_config *cfg, char **text)
{
    return config_text(config_cpu_template(cfg), text);
}

static int get_kernel(const struct vm_config *cfg, char **text)
{
    return config_text(cfg->kernel_path, text);
}

static int get_initrd(const struct vm_config *cfg, char **text)
{
    return config_text(cfg->initrd_path, text);
}

static int get_cmdline(const struct vm_config *cfg, char **text)
{
    return config_text(cfg->cmdline ? cfg->cmdline : "", text);
}

static int get_log_level(const struct vm_config *cfg, char **text)
{
    return config_text(log_level_name(cfg->log_level), text);
}

static int get_rng(const struct vm_config *cfg, char **text)
{
    return config_text(cfg->rng ? "true" : "false", text);
}

static int get_vmgenid(const struct vm_config *cfg, char **text)
{
    return config_text(cfg->vmgenid ? "on" : "off", text);
}

static int get_device_discovery(const struct vm_config *cfg, char **text)
{
    return config_text(config_device_discovery_name(cfg->device_discovery), text);
}

static int get_on_reset(const struct vm_config *cfg, char **text)
{
    return config_text(config_on_reset_name(cfg->on_reset), text);
}

static int get_shutdown_grace(const struct vm_config *cfg, char **text)
{
    return config_text_unsigned(cfg->shutdown_grace_seconds, text);
}

static int get_host_compat(const struct vm_config *cfg, char **text)
{
    return config_text(config_host_compat_name(cfg->host_compat), text);
}

static int get_seccomp(const struct vm_config *cfg, char **text)
{
    return config_text(config_seccomp_name(cfg->seccomp), text);
}

/* --help's continuation lines start under the first line's text (2 + 26 + 1 columns in). */
#define HELP_INDENT "\n                             "

const struct config_setting config_settings[] = {
    {"--name", CONFIG_PLACE_TOP, "name", "NAME",
     "a name of 1 to " S(CONFIG_MAX_NAME) " letters, digits, '.', '_' or '-'",
     "the VM's name, in the effective configuration (default: none)", config_set_name, get_name,
     CONFIG_FIELD_NAME, CONFIG_SETTING_TEXT},
    {"--cpus", CONFIG_PLACE_TOP, "cpus", CONFIG_CPUS_SPEC,
     "a vCPU count from 1 to " S(CONFIG_MAX_CPUS),
     "number of vCPUs, 1-" S(CONFIG_MAX_CPUS) " (default: " S(
         CONFIG_DEFAULT_CPUS) "); pin=LIST pins vCPU i" HELP_INDENT
                              "to the i-th host CPU of LIST (0-3 or 0,2,4-5; last option)",
     config_set_cpus, config_cpus_text, CONFIG_FIELD_CPUS, 0},
    {"--cpu-template", CONFIG_PLACE_TOP, "cpu-template", "T", CONFIG_CPU_TEMPLATE_EXPECTED,
     "the CPU features the guest sees: host (all KVM offers)," HELP_INDENT
     "minimal (the x86-64 baseline) or a template FILE (default: host)",
     config_set_cpu_template, get_cpu_template, CONFIG_FIELD_CPU_TEMPLATE,
     CONFIG_SETTING_PATH | CONFIG_SETTING_CPU_NAMES},
    {"--memory", CONFIG_PLACE_TOP, "memory", "SIZE[,OPTIONS]", "a size such as 512M",
     "guest RAM, e.g. 512M or 2G (default: 256M), then options:" HELP_INDENT
     "backing=memfd|anon|hugetlb, prealloc, shared, merge=, thp=",
     config_set_memory, config_memory_text, CONFIG_FIELD_MEMORY, 0},
    /* CPU placement (docs/placement.md): the cgroup's cpu.max and cpu.weight, the nice value. */
    {"--cpu-quota", CONFIG_PLACE_TOP, "cpu-quota", "PERCENT", CONFIG_CPU_QUOTA_EXPECTED,
     "CPU time limit in % of one host CPU (150: 1.5 CPUs), cgroup v2", config_set_cpu_quota,
     config_cpu_quota_text, CONFIG_FIELD_CPU_QUOTA, 0},
    {"--cpu-weight", CONFIG_PLACE_TOP, "cpu-weight", "W", CONFIG_CPU_WEIGHT_EXPECTED,
     "CPU share against other cgroups, 1-10000 (cgroup default 100)", config_set_cpu_weight,
     config_cpu_weight_text, CONFIG_FIELD_CPU_WEIGHT, 0},
    {"--nice", CONFIG_PLACE_TOP, "nice", "N", CONFIG_NICE_EXPECTED,
     "the VM process's nice value, -20 to 19 (below 0 needs root)", config_set_nice,
     config_nice_text, CONFIG_FIELD_NICE, 0},
    {"--kernel", CONFIG_PLACE_KERNEL, "path", "PATH", CONFIG_KERNEL_EXPECTED,
     "kernel image: bzImage, ELF vmlinux or PVH ELF (required)", config_set_kernel, get_kernel,
     CONFIG_FIELD_KERNEL, CONFIG_SETTING_PATH},
    {"--initrd", CONFIG_PLACE_KERNEL, "initrd", "PATH", "the path of an initial ramdisk",
     "initial ramdisk (default: none)", config_set_initrd, get_initrd, CONFIG_FIELD_INITRD,
     CONFIG_SETTING_PATH},
    {"--cmdline", CONFIG_PLACE_KERNEL, "cmdline", "STR",
     "a kernel command line, e.g. 'console=ttyS0'", "kernel command line (default: empty)",
     config_set_cmdline, get_cmdline, CONFIG_FIELD_CMDLINE, CONFIG_SETTING_TEXT},
    {"--console", CONFIG_PLACE_TOP, "console", "SINK",
     CONFIG_CONSOLE_SINKS ", optionally after virtio:",
     "the console on ttyS0: " CONFIG_CONSOLE_SINKS ";" HELP_INDENT
     "virtio[:SINK] puts it on hvc0 instead (default: stdio)",
     config_set_console, config_console_text, CONFIG_FIELD_CONSOLE, CONFIG_SETTING_SINK},
    {"--vconsole", CONFIG_PLACE_TOP, "vconsole", "SINK", CONFIG_CONSOLE_SINKS,
     "add a virtio-console (hvc0) beside ttyS0, on a sink:" HELP_INDENT CONFIG_CONSOLE_SINKS,
     config_set_vconsole, config_vconsole_text, CONFIG_FIELD_VCONSOLE, CONFIG_SETTING_SINK},
    {"--log-level", CONFIG_PLACE_TOP, "log-level", "LEVEL", "error, warn, info or debug",
     "error, warn, info or debug (default: warn)", config_set_log_level, get_log_level,
     CONFIG_FIELD_LOG_LEVEL, 0},
    /* The spec is too long to start under the text: it gets a line of its own. */
    {"--disk", CONFIG_PLACE_TOP, "disks", "SPEC", CONFIG_DISK_SPEC,
     "virtio-blk disk (raw image or block device), repeatable, first is vda:\n"
     "        PATH[,readonly][,serial=ID][,cache=writeback|writethrough|unsafe][,queue-size=N]\n"
     "        [,bw=RATE][,iops=RATE][,bw-burst=SIZE][,iops-burst=N] (RATE: 50M, 1000, 5M/100ms)",
     config_set_disk, NULL, CONFIG_FIELD_DISK, CONFIG_SETTING_LIST},
    {"--net", CONFIG_PLACE_TOP, "nets", "SPEC", CONFIG_NET_SPEC,
     "virtio-net on a TAP (opened or created), repeatable:\n"
     "        tap=NAME[,mac=MAC][,rx-bw=RATE][,rx-pps=RATE][,tx-bw=RATE][,tx-pps=RATE]\n"
     "        [,rx-bw-burst=SIZE][,rx-pps-burst=N][,tx-bw-burst=SIZE][,tx-pps-burst=N]",
     config_set_net, NULL, CONFIG_FIELD_NET, CONFIG_SETTING_LIST},
    {"--rng", CONFIG_PLACE_TOP, "rng", "", "true or false",
     "add a virtio-rng device (entropy from the host's getrandom)", config_set_rng, get_rng,
     CONFIG_FIELD_RNG, CONFIG_SETTING_SWITCH},
    {"--rng-limit", CONFIG_PLACE_TOP, "rng-limit", "SPEC", CONFIG_RNG_LIMIT_SPEC,
     "the virtio-rng's rate limit (with --rng):" HELP_INDENT CONFIG_RNG_LIMIT_SPEC,
     config_set_rng_limit, config_get_rng_limit, CONFIG_FIELD_RNG_LIMIT, 0},
    {"--balloon", CONFIG_PLACE_TOP, "balloon", "SPEC", CONFIG_BALLOON_SPEC,
     "virtio-balloon, SIZE its first target (kiln ctl balloon changes it):" HELP_INDENT
     "SIZE[,deflate-on-oom=on][,stats=SECONDS][,free-page-reporting=on]",
     config_set_balloon, config_get_balloon, CONFIG_FIELD_BALLOON, 0},
    {"--device-discovery", CONFIG_PLACE_TOP, "device-discovery", "HOW", "acpi or cmdline",
     "where the guest finds virtio devices: acpi or cmdline (default: acpi)",
     config_set_device_discovery, get_device_discovery, CONFIG_FIELD_DEVICE_DISCOVERY, 0},
    {"--vmgenid", CONFIG_PLACE_TOP, "vmgenid", "MODE", "on or off",
     "ACPI VM generation ID, new at each restore: on, off (default: on)", config_set_vmgenid,
     get_vmgenid, CONFIG_FIELD_VMGENID, 0},
    {"--on-reset", CONFIG_PLACE_TOP, "on-reset", "ACTION", "exit or restart",
     "when the guest resets: exit (status 123) or restart it (default: exit)", config_set_on_reset,
     get_on_reset, CONFIG_FIELD_ON_RESET, 0},
    {"--shutdown-grace", CONFIG_PLACE_TOP, "shutdown-grace", "SECONDS",
     "a number of seconds from 0 to " S(CONFIG_MAX_SHUTDOWN_GRACE),
     "power button on SIGTERM/SIGINT, hard stop this much later (default: " S(
         CONFIG_DEFAULT_SHUTDOWN_GRACE) ")",
     config_set_shutdown_grace, get_shutdown_grace, CONFIG_FIELD_SHUTDOWN_GRACE, 0},
    {"--host-compat", CONFIG_PLACE_TOP, "host-compat", "MODE", "auto, on or off",
     "for hosts emulating guest ring 0: auto (probe), on, off (default: auto)",
     config_set_host_compat, get_host_compat, CONFIG_FIELD_HOST_COMPAT, 0},
    {"--seccomp", CONFIG_PLACE_TOP, "seccomp", "MODE", "off, log or kill",
     "system call filters per thread: kill (a forbidden call" HELP_INDENT
     "kills kiln), log (names it on stderr), off (default: kill)",
     config_set_seccomp, get_seccomp, CONFIG_FIELD_SECCOMP, 0},
    /* The jail (docs/security.md): as root, in namespaces, as this user and group. */
    {"--jail", CONFIG_PLACE_TOP, "jail", "DIR", "an existing folder for the jail's root",
     "run jailed (as root): own namespaces, root in DIR/ID, as --uid/--gid", config_set_jail,
     config_get_jail, CONFIG_FIELD_JAIL, CONFIG_SETTING_PATH},
    {"--uid", CONFIG_PLACE_TOP, "uid", "U", "a number from 1 to 4294967294",
     "the user the jailed VM runs as (with --jail)", config_set_jail_uid, config_get_jail_uid,
     CONFIG_FIELD_UID, 0},
    {"--gid", CONFIG_PLACE_TOP, "gid", "G", "a number from 1 to 4294967294",
     "the group the jailed VM runs as (with --jail)", config_set_jail_gid, config_get_jail_gid,
     CONFIG_FIELD_GID, 0},
    /* The control API (docs/api.md): a Unix socket's path, or none. */
    {"--api-socket", CONFIG_PLACE_TOP, "api", "PATH", CONFIG_API_EXPECTED,
     "serve the control API (kiln ctl) on this Unix socket, or none" HELP_INDENT
     "(default: NAME.PID.sock in the run folder)",
     config_set_api, config_get_api, CONFIG_FIELD_API, CONFIG_SETTING_PATH | CONFIG_SETTING_NONE},
};

_Static_assert(sizeof(config_settings) / sizeof(config_settings[0]) == CONFIG_SETTING_COUNT,
               "CONFIG_SETTING_COUNT counts the rows of config_settings");

bool config_setting_is_path(unsigned options, const char *text)
{
    if (!(options & CONFIG_SETTING_PATH))
        return false;
    if ((options & CONFIG_SETTING_NONE) && strcmp(text, "none") == 0)
        return false;
    return !((options & CONFIG_SETTING_CPU_NAMES) &&
             (strcmp(text, "host") == 0 || strcmp(text, "minimal") == 0));
}

const struct config_setting *config_setting_by_flag(const char *flag, size_t len)
{
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++) {
        const char *name = config_settings[i].flag;
        if (strlen(name) == len && strncmp(name, flag, len) == 0)
            return &config_settings[i];
    }
    return NULL;
}

const struct config_setting *config_setting_by_field(enum config_field field)
{
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++)
        if (config_settings[i].field == field)
            return &config_settings[i];
    return NULL;
}

const char *config_setting_key_path(const struct config_setting *setting, char *buf, size_t size)
{
    if (setting->place == CONFIG_PLACE_KERNEL)
        snprintf(buf, size, CONFIG_KERNEL_KEY ".%s", setting->key);
    else
        snprintf(buf, size, "%s", setting->key);
    return buf;
}

const char *config_join_words(const char *const *names, size_t n, const char *last, char *buf,
                              size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s",
                                 i == 0       ? ""
                                 : i + 1 == n ? last
                                              : ", ",
                                 names[i]);
    return buf;
}

const char *config_device_entry_expected(const struct config_device_keys *kind, char *buf,
                                         size_t size)
{
    const char *names[CONFIG_DEVICE_MAX_KEYS] = {NULL};
    size_t n = 0;
    for (size_t i = 1; i < kind->count && n < CONFIG_DEVICE_MAX_KEYS; i++)
        names[n++] = kind->keys[i].key;
    char optional[384];
    snprintf(buf, size, "a mapping with %s%s%s", kind->keys[0].key, n ? " and optionally " : "",
             config_join_words(names, n, ", ", optional, sizeof(optional)));
    return buf;
}

/* The key an option of a flag's value names, with its value in *value: "serial=d1", or a
 * switch's word ("readonly", "ro") meaning "true". NULL for none. */
static const struct config_device_key *find_option(const struct config_device_keys *kind,
                                                   const char *option, const char **value)
{
    for (size_t i = kind->positional ? 1 : 0; i < kind->count; i++) {
        const struct config_device_key *key = &kind->keys[i];
        size_t len = strlen(key->key);
        if (key->options & CONFIG_SETTING_SWITCH) {
            if (strcmp(option, key->key) == 0 || (key->alias && strcmp(option, key->alias) == 0)) {
                *value = "true";
                return key;
            }
        } else if (strncmp(option, key->key, len) == 0 && option[len] == '=') {
            *value = option + len + 1;
            return key;
        }
    }
    return NULL;
}

static int unknown_option(const struct config_device_keys *kind, const char *option,
                          const char *spec_quoted, struct error *err)
{
    char words[CONFIG_DEVICE_MAX_KEYS][32], list[512], quoted[CONFIG_QUOTE_SIZE];
    const char *names[CONFIG_DEVICE_MAX_KEYS] = {NULL};
    size_t n = 0;
    for (size_t i = kind->positional ? 1 : 0; i < kind->count && n < CONFIG_DEVICE_MAX_KEYS;
         i++, n++) {
        const struct config_device_key *key = &kind->keys[i];
        snprintf(words[n], sizeof(words[n]), "%s%s%s", key->key,
                 (key->options & CONFIG_SETTING_SWITCH) ? "" : "=", key->metavar);
        names[n] = words[n];
    }
    return error_fmt(err, -EINVAL, "%s: unknown option '%s' in '%s' (expected %s)", kind->flag,
                     config_quote(option, quoted, sizeof(quoted)), spec_quoted,
                     config_join_words(names, n, " or ", list, sizeof(list)));
}

/* Hands one option's value to its key's setter, the message naming both: "--disk: serial 'x'
 * in 'a.img,serial=x' is ...". */
static int set_option(const struct config_device_keys *kind, const struct config_device_key *key,
                      const char *value, const char *spec_quoted, void *device, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE], subject[2 * CONFIG_QUOTE_SIZE + 48];
    snprintf(subject, sizeof(subject), "%s: %s '%s' in '%s'", kind->flag, key->key,
             config_quote(value, quoted, sizeof(quoted)), spec_quoted);
    return key->set(device, subject, value, err);
}

int config_parse_device_spec(const struct config_device_keys *kind, const char *spec, void *device,
                             struct error *err)
{
    char spec_quoted[CONFIG_QUOTE_SIZE];
    config_quote(spec, spec_quoted, sizeof(spec_quoted));
    char *copy = strdup(spec);
    if (!copy)
        return error_fmt(err, -ENOMEM, "out of memory");
    char *rest = copy;
    const struct config_device_key *first = &kind->keys[0];
    bool first_given = false;
    int r = 0;
    if (kind->positional) {
        char *value = strsep(&rest, ",");
        if (!*value)
            r = error_fmt(err, -EINVAL, "%s: empty %s (expected %s)", kind->flag, first->key,
                          kind->spec);
        else
            r = set_option(kind, first, value, spec_quoted, device, err);
        first_given = true;
    }
    while (r == 0 && rest) {
        char *option = strsep(&rest, ",");
        const char *value = NULL;
        const struct config_device_key *key = find_option(kind, option, &value);
        if (!key)
            r = unknown_option(kind, option, spec_quoted, err);
        else
            r = set_option(kind, key, value, spec_quoted, device, err);
        first_given = first_given || key == first;
    }
    free(copy);
    if (r == 0 && !first_given && !kind->all_optional)
        r = error_fmt(err, -EINVAL, "%s: '%s' has no %s=%s (expected %s)", kind->flag, spec_quoted,
                      first->key, first->metavar, kind->spec);
    return r;
}
