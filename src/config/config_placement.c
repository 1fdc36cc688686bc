/* The placement settings: --memory's backing options, --cpus's pin list, --cpu-quota,
 * --cpu-weight and --nice (docs/placement.md); parsed here, applied by vm/ and jail/. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/config/config.h"
#include "kiln/config/config_settings.h"

#define S(x) CONFIG_STRINGIFY(x)

#define MEMORY_OPTIONS "backing=memfd|anon|hugetlb, prealloc, shared, merge=on|off or thp=on|off"
#define CPU_LIST_EXPECTED                                                                          \
    "CPU numbers and ranges from 0 to " S(CONFIG_MAX_HOST_CPU) ", e.g. 0-3 or 0,2,4-5"

/* A decimal number of at most 9 digits (so it cannot overflow), or -1. */
static long parse_small_number(const char *text, size_t len)
{
    if (len == 0 || len > 9 || strspn(text, "0123456789") < len)
        return -1;
    long n = 0;
    for (size_t i = 0; i < len; i++)
        n = n * 10 + (text[i] - '0');
    return n;
}

static int cpu_list_error(const char *text, const char *what, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE];
    return error_fmt(err, -EINVAL, "pin list '%s' %s (expected " CPU_LIST_EXPECTED ")",
                     config_quote(text, quoted, sizeof(quoted)), what);
}

int config_parse_cpu_list(const char *text, unsigned *cpus, unsigned max, struct error *err)
{
    unsigned count = 0;
    const char *p = text;
    if (!*text)
        return cpu_list_error(text, "is empty", err);
    while (*p) {
        size_t item_len = strcspn(p, ",");
        const char *dash = memchr(p, '-', item_len);
        size_t first_len = dash ? (size_t)(dash - p) : item_len;
        long first = parse_small_number(p, first_len);
        long last = dash ? parse_small_number(dash + 1, item_len - first_len - 1) : first;
        if (first < 0 || last < 0)
            return cpu_list_error(text, "is not a CPU list", err);
        if (last < first)
            return cpu_list_error(text, "has a range that runs backwards", err);
        if (last > CONFIG_MAX_HOST_CPU)
            return cpu_list_error(text, "names a CPU past " S(CONFIG_MAX_HOST_CPU), err);
        for (long cpu = first; cpu <= last; cpu++) {
            if (count == max)
                return cpu_list_error(text, "has more than " S(CONFIG_MAX_PIN_CPUS) " entries",
                                      err);
            cpus[count++] = (unsigned)cpu;
        }
        p += item_len;
        if (*p == ',' && !*++p)
            return cpu_list_error(text, "ends with a comma", err);
    }
    return (int)count;
}

int config_set_cpus(struct vm_config *cfg, const char *label, const char *text, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE];
    size_t count_len = strcspn(text, ",");
    long n = parse_small_number(text, count_len);
    char count_text[CONFIG_QUOTE_SIZE];
    snprintf(count_text, sizeof(count_text), "%.*s", (int)count_len, text);
    int r = config_check_cpus(label, count_text, n < 0 ? 0 : (unsigned long)n, err);
    if (r < 0)
        return r;
    unsigned *pin = NULL;
    int npin = 0;
    if (text[count_len]) {
        const char *option = text + count_len + 1;
        /* pin= is the only option and takes the rest: the list's own commas are its own. */
        if (strncmp(option, "pin=", 4) != 0)
            return error_fmt(err, -EINVAL,
                             "%s: '%s' has an unknown option (expected " CONFIG_CPUS_SPEC
                             ", e.g. 2,pin=0-1)",
                             label, config_quote(text, quoted, sizeof(quoted)));
        pin = calloc(CONFIG_MAX_PIN_CPUS, sizeof(*pin));
        if (!pin)
            return error_fmt(err, -ENOMEM, "out of memory");
        struct error list_err;
        npin = config_parse_cpu_list(option + 4, pin, CONFIG_MAX_PIN_CPUS, &list_err);
        if (npin < 0) {
            free(pin);
            return error_fmt(err, npin, "%s: %s", label, list_err.msg);
        }
    }
    free(cfg->cpu_pin);
    cfg->cpus = (unsigned)n;
    cfg->cpu_pin = pin;
    cfg->ncpu_pin = (unsigned)npin;
    return 0;
}

int config_cpus_text(const struct vm_config *cfg, char **text)
{
    /* Each entry as a number: "2,pin=0,1,2"; ranges are not rebuilt. */
    size_t size = 16 + 6 * (size_t)cfg->ncpu_pin;
    char *out = malloc(size);
    if (!out)
        return -ENOMEM;
    int len = snprintf(out, size, "%u", cfg->cpus);
    for (unsigned i = 0; i < cfg->ncpu_pin; i++)
        len += snprintf(out + len, size - (size_t)len, "%s%u", i ? "," : ",pin=", cfg->cpu_pin[i]);
    *text = out;
    return 0;
}

static int bad_memory_option(const char *label, const char *option, const char *spec,
                             const char *what, const char *expected, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE], spec_quoted[CONFIG_QUOTE_SIZE];
    return error_fmt(err, -EINVAL, "%s: '%s' in '%s' %s (expected %s)", label,
                     config_quote(option, quoted, sizeof(quoted)),
                     config_quote(spec, spec_quoted, sizeof(spec_quoted)), what, expected);
}

/* on or off into *value; -EINVAL for anything else. */
static int parse_on_off(const char *text, bool *value)
{
    if (strcmp(text, "on") != 0 && strcmp(text, "off") != 0)
        return -EINVAL;
    *value = strcmp(text, "on") == 0;
    return 0;
}

/* One option of --memory's value into *cfg. */
static int set_memory_option(struct vm_config *cfg, const char *label, char *option,
                             const char *spec, struct error *err)
{
    char *value = strchr(option, '=');
    if (value)
        *value++ = '\0';
    const char *name = option;
    if (strcmp(name, "prealloc") == 0 && !value)
        cfg->memory_prealloc = true;
    else if (strcmp(name, "shared") == 0 && !value)
        cfg->memory_shared = true;
    else if (strcmp(name, "backing") == 0 && value) {
        if (strcmp(value, "memfd") == 0)
            cfg->memory_backing = MEMORY_BACKING_MEMFD;
        else if (strcmp(value, "anon") == 0)
            cfg->memory_backing = MEMORY_BACKING_ANON;
        else if (strcmp(value, "hugetlb") == 0)
            cfg->memory_backing = MEMORY_BACKING_HUGETLB;
        else
            return bad_memory_option(label, value, spec, "is not a backing",
                                     "memfd, anon or hugetlb", err);
    } else if (strcmp(name, "merge") == 0 && value) {
        if (parse_on_off(value, &cfg->memory_merge) < 0)
            return bad_memory_option(label, value, spec, "is not on or off",
                                     "merge=on or merge=off", err);
    } else if (strcmp(name, "thp") == 0 && value) {
        if (parse_on_off(value, &cfg->memory_thp) < 0)
            return bad_memory_option(label, value, spec, "is not on or off", "thp=on or thp=off",
                                     err);
    } else {
        if (value)
            value[-1] = '=';
        return bad_memory_option(label, option, spec, "is not an option", MEMORY_OPTIONS, err);
    }
    return 0;
}

/* The options that only make sense together with others. */
static int check_memory_options(const struct vm_config *cfg, const char *label, const char *spec,
                                struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE];
    config_quote(spec, quoted, sizeof(quoted));
    if (cfg->memory_shared && cfg->memory_backing != MEMORY_BACKING_ANON)
        return error_fmt(err, -EINVAL,
                         "%s: '%s': shared is for backing=anon (memfd and hugetlb memory is "
                         "always shared)",
                         label, quoted);
    if (cfg->memory_merge && (cfg->memory_backing != MEMORY_BACKING_ANON || cfg->memory_shared))
        return error_fmt(err, -EINVAL,
                         "%s: '%s': merge=on needs backing=anon without shared (KSM merges only "
                         "private anonymous memory)",
                         label, quoted);
    if (cfg->memory_backing == MEMORY_BACKING_HUGETLB && cfg->memory_bytes % CONFIG_HUGE_PAGE != 0)
        return error_fmt(err, -EINVAL,
                         "%s: '%s' is not a multiple of 2 MiB (expected whole huge pages with "
                         "backing=hugetlb, e.g. %lluM)",
                         label, quoted,
                         (unsigned long long)((cfg->memory_bytes / CONFIG_HUGE_PAGE + 1) * 2));
    return 0;
}

int config_set_memory(struct vm_config *cfg, const char *label, const char *text, struct error *err)
{
    char *copy = strdup(text);
    if (!copy)
        return error_fmt(err, -ENOMEM, "out of memory");
    char *rest = copy, *size_text = strsep(&rest, ",");
    uint64_t bytes = 0;
    int r = config_parse_size(size_text, &bytes);
    if (r == -EINVAL) {
        char quoted[CONFIG_QUOTE_SIZE];
        r = error_fmt(err, -EINVAL,
                      "%s: '%s' is not a size (expected a number with an optional K, M or G "
                      "suffix, e.g. 512M)",
                      label, config_quote(text, quoted, sizeof(quoted)));
    } else {
        if (r == -ERANGE)
            bytes = UINT64_MAX; /* too big for 64 bits is simply out of range */
        r = config_check_memory(label, size_text, bytes, err);
    }
    /* The options go into a copy, so a bad one leaves cfg as it was. */
    struct vm_config next = *cfg;
    next.memory_bytes = bytes;
    next.memory_backing = MEMORY_BACKING_MEMFD;
    next.memory_shared = next.memory_prealloc = next.memory_merge = false;
    next.memory_thp = true;
    while (r == 0 && rest)
        r = set_memory_option(&next, label, strsep(&rest, ","), text, err);
    if (r == 0)
        r = check_memory_options(&next, label, text, err);
    free(copy);
    if (r == 0) {
        cfg->memory_bytes = next.memory_bytes;
        cfg->memory_backing = next.memory_backing;
        cfg->memory_shared = next.memory_shared;
        cfg->memory_prealloc = next.memory_prealloc;
        cfg->memory_merge = next.memory_merge;
        cfg->memory_thp = next.memory_thp;
    }
    return r;
}

int config_memory_text(const struct vm_config *cfg, char **text)
{
    static const char *const backings[] = {"memfd", "anon", "hugetlb"};
    char size[24], out[160];
    int len =
        snprintf(out, sizeof(out), "%s", config_size_text(cfg->memory_bytes, size, sizeof(size)));
    if (cfg->memory_backing != MEMORY_BACKING_MEMFD)
        len += snprintf(out + len, sizeof(out) - (size_t)len, ",backing=%s",
                        backings[cfg->memory_backing]);
    if (cfg->memory_shared)
        len += snprintf(out + len, sizeof(out) - (size_t)len, ",shared");
    if (cfg->memory_prealloc)
        len += snprintf(out + len, sizeof(out) - (size_t)len, ",prealloc");
    if (cfg->memory_merge)
        len += snprintf(out + len, sizeof(out) - (size_t)len, ",merge=on");
    if (!cfg->memory_thp)
        snprintf(out + len, sizeof(out) - (size_t)len, ",thp=off");
    return config_text(out, text);
}

/* A whole number from min to max, optionally after a '-' (min < 0) or before a '%' (percent). */
static int set_number(const char *label, const char *text, long min, long max, bool percent,
                      const char *expected, long *value, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE];
    size_t len = strlen(text);
    if (percent && len > 0 && text[len - 1] == '%')
        len--;
    bool negative = min < 0 && text[0] == '-';
    long n = parse_small_number(text + negative, len - negative);
    if (n < 0)
        return error_fmt(err, -EINVAL, "%s: '%s' is not a number (expected %s)", label,
                         config_quote(text, quoted, sizeof(quoted)), expected);
    if (negative)
        n = -n;
    if (n < min || n > max)
        return error_fmt(err, -EINVAL, "%s: '%s' is out of range (expected %s)", label,
                         config_quote(text, quoted, sizeof(quoted)), expected);
    *value = n;
    return 0;
}

int config_set_cpu_quota(struct vm_config *cfg, const char *label, const char *text,
                         struct error *err)
{
    long n = 0;
    int r =
        set_number(label, text, 1, CONFIG_MAX_CPU_QUOTA, true, CONFIG_CPU_QUOTA_EXPECTED, &n, err);
    if (r == 0)
        cfg->cpu_quota = (unsigned)n;
    return r;
}

int config_set_cpu_weight(struct vm_config *cfg, const char *label, const char *text,
                          struct error *err)
{
    long n = 0;
    int r = set_number(label, text, 1, CONFIG_MAX_CPU_WEIGHT, false, CONFIG_CPU_WEIGHT_EXPECTED, &n,
                       err);
    if (r == 0)
        cfg->cpu_weight = (unsigned)n;
    return r;
}

int config_set_nice(struct vm_config *cfg, const char *label, const char *text, struct error *err)
{
    long n = 0;
    int r = set_number(label, text, CONFIG_MIN_NICE, CONFIG_MAX_NICE, false, CONFIG_NICE_EXPECTED,
                       &n, err);
    if (r == 0) {
        cfg->nice = (int)n;
        cfg->nice_given = true;
    }
    return r;
}

int config_cpu_quota_text(const struct vm_config *cfg, char **text)
{
    *text = NULL;
    return cfg->cpu_quota ? config_text_unsigned(cfg->cpu_quota, text) : 0;
}

int config_cpu_weight_text(const struct vm_config *cfg, char **text)
{
    *text = NULL;
    return cfg->cpu_weight ? config_text_unsigned(cfg->cpu_weight, text) : 0;
}

int config_nice_text(const struct vm_config *cfg, char **text)
{
    char digits[16];
    *text = NULL;
    if (!cfg->nice_given)
        return 0;
    snprintf(digits, sizeof(digits), "%d", cfg->nice);
    return config_text(digits, text);
}
