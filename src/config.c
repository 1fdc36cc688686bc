/* struct vm_config defaults, SIZE parsing and the validation pass shared by every way a
 * config is filled (CLI today, YAML later): one place decides what a valid VM is. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/config.h"
#include "kiln/layout.h"

_Static_assert(CONFIG_MAX_CMDLINE == LAYOUT_CMDLINE_MAX - 1,
               "the CLI must accept exactly what the boot loader has room for");
_Static_assert(CONFIG_MIN_MEMORY % CONFIG_MEMORY_ALIGN == 0 &&
                   CONFIG_MAX_MEMORY % CONFIG_MEMORY_ALIGN == 0,
               "the memory range must start and end on a page");

void config_init(struct vm_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->cmdline = strdup("");
    cfg->cpus = CONFIG_DEFAULT_CPUS;
    cfg->memory_bytes = CONFIG_DEFAULT_MEMORY;
    cfg->console = CONSOLE_STDIO;
    cfg->log_level = LOG_WARN;
    cfg->on_reset = RESET_EXIT;
    cfg->shutdown_grace_seconds = CONFIG_DEFAULT_SHUTDOWN_GRACE;
    cfg->host_compat = HOST_COMPAT_AUTO;
}

void config_free(struct vm_config *cfg)
{
    free(cfg->kernel_path);
    free(cfg->initrd_path);
    free(cfg->cmdline);
    free(cfg->console_path);
    for (unsigned i = 0; i < cfg->ndisks; i++)
        config_free_disk(&cfg->disks[i]);
    free(cfg->disks);
    for (unsigned i = 0; i < cfg->nnets; i++)
        config_free_net(&cfg->nets[i]);
    free(cfg->nets);
    memset(cfg, 0, sizeof(*cfg));
}

static unsigned size_unit_shift(char unit)
{
    switch (unit) {
    case 'k':
    case 'K':
        return 10;
    case 'm':
    case 'M':
        return 20;
    case 'g':
    case 'G':
        return 30;
    default:
        return 0;
    }
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int config_parse_size(const char *text, uint64_t *bytes)
{
    if (!text || !is_digit(*text))
        return -EINVAL;
    const char *suffix = text;
    while (is_digit(*suffix))
        suffix++;
    unsigned shift = size_unit_shift(*suffix);
    if (shift) {
        const char *rest = suffix + 1;
        /* "512MB" and "512MiB" are what people type; both mean 512 * 2^20 here. */
        if (*rest && strcasecmp(rest, "B") != 0 && strcasecmp(rest, "iB") != 0)
            return -EINVAL;
    } else if (*suffix) {
        return -EINVAL;
    }
    /* Syntax first, so "99999999999999999999X" is a syntax error rather than an overflow. */
    uint64_t value = 0;
    for (const char *p = text; p < suffix; p++) {
        uint64_t digit = (uint64_t)(*p - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return -ERANGE;
        value = value * 10 + digit;
    }
    if (value > (UINT64_MAX >> shift))
        return -ERANGE;
    *bytes = value << shift;
    return 0;
}

const char *config_size_text(uint64_t bytes, char *buf, size_t size)
{
    static const char suffixes[] = "GMK";
    static const unsigned shifts[] = {30, 20, 10};
    for (size_t i = 0; i < sizeof(shifts) / sizeof(shifts[0]); i++) {
        uint64_t unit = 1ULL << shifts[i];
        if (bytes != 0 && bytes % unit == 0) {
            snprintf(buf, size, "%llu%c", (unsigned long long)(bytes / unit), suffixes[i]);
            return buf;
        }
    }
    snprintf(buf, size, "%llu", (unsigned long long)bytes);
    return buf;
}

static size_t escape_byte(unsigned char c, char piece[5])
{
    if (c == '\n')
        return (size_t)snprintf(piece, 5, "\\n");
    if (c == '\t')
        return (size_t)snprintf(piece, 5, "\\t");
    if (c < 0x20 || c == 0x7f)
        return (size_t)snprintf(piece, 5, "\\x%02x", c);
    piece[0] = (char)c;
    piece[1] = '\0';
    return 1;
}

const char *config_quote(const char *text, char *buf, size_t size)
{
    static const char ellipsis[] = "...";
    if (size < sizeof(ellipsis)) {
        if (size)
            buf[0] = '\0';
        return buf;
    }
    size_t out = 0;
    size_t cut = 0; /* where "..." still fits, never inside a UTF-8 sequence */
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        char piece[5];
        size_t n = escape_byte(*p, piece);
        if (out + n + 1 > size) {
            memcpy(buf + cut, ellipsis, sizeof(ellipsis));
            return buf;
        }
        memcpy(buf + out, piece, n);
        out += n;
        if (out + sizeof(ellipsis) <= size && (p[1] & 0xc0) != 0x80)
            cut = out;
    }
    buf[out] = '\0';
    return buf;
}

int config_check_cpus(const char *text, unsigned long cpus, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE];
    if (cpus < 1 || cpus > CONFIG_MAX_CPUS)
        return error_fmt(err, -EINVAL, "--cpus: '%s' is not a valid vCPU count (expected 1 to %d)",
                         config_quote(text, quoted, sizeof(quoted)), CONFIG_MAX_CPUS);
    return 0;
}

int config_check_memory(const char *text, uint64_t bytes, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE], min[24], max[24];
    config_quote(text, quoted, sizeof(quoted));
    if (bytes < CONFIG_MIN_MEMORY || bytes > CONFIG_MAX_MEMORY)
        return error_fmt(err, -EINVAL, "--memory: '%s' is out of range (expected %s to %s)", quoted,
                         config_size_text(CONFIG_MIN_MEMORY, min, sizeof(min)),
                         config_size_text(CONFIG_MAX_MEMORY, max, sizeof(max)));
    if (bytes % CONFIG_MEMORY_ALIGN != 0) {
        uint64_t up = bytes + CONFIG_MEMORY_ALIGN - bytes % CONFIG_MEMORY_ALIGN;
        return error_fmt(err, -EINVAL,
                         "--memory: '%s' is not a multiple of 4 KiB (expected whole pages, e.g. "
                         "%llu)",
                         quoted, (unsigned long long)up);
    }
    return 0;
}

int config_check_cmdline(const char *cmdline, struct error *err)
{
    size_t len = strlen(cmdline);
    if (len > CONFIG_MAX_CMDLINE)
        return error_fmt(err, -EINVAL, "--cmdline: %zu bytes is too long (expected at most %d)",
                         len, CONFIG_MAX_CMDLINE);
    return 0;
}

static int check_input_file(const char *flag, const char *path, const char *expected,
                            struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE];
    config_quote(path, quoted, sizeof(quoted));
    struct stat st;
    if (stat(path, &st) != 0 || access(path, R_OK) != 0) {
        int e = errno;
        return error_fmt(err, -e, "%s: '%s': %s", flag, quoted, strerror(e));
    }
    if (S_ISDIR(st.st_mode))
        return error_fmt(err, -EISDIR, "%s: '%s' is a directory (expected %s)", flag, quoted,
                         expected);
    if (!S_ISREG(st.st_mode))
        return error_fmt(err, -EINVAL, "%s: '%s' is not a regular file (expected %s)", flag, quoted,
                         expected);
    return 0;
}

static int validate_numbers(const struct vm_config *cfg, struct error *err)
{
    char text[24];
    snprintf(text, sizeof(text), "%u", cfg->cpus);
    int r = config_check_cpus(text, cfg->cpus, err);
    if (r == 0)
        r = config_check_memory(config_size_text(cfg->memory_bytes, text, sizeof(text)),
                                cfg->memory_bytes, err);
    return r;
}

int config_validate(const struct vm_config *cfg, struct error *err)
{
    if (!cfg->kernel_path || !*cfg->kernel_path)
        return error_fmt(err, -EINVAL, "--kernel: missing (expected " CONFIG_KERNEL_EXPECTED ")");
    int r = validate_numbers(cfg, err);
    if (r == 0 && cfg->cmdline)
        r = config_check_cmdline(cfg->cmdline, err);
    if (r == 0 && cfg->console == CONSOLE_FILE && (!cfg->console_path || !*cfg->console_path))
        r = error_fmt(err, -EINVAL, "--console: 'file:' needs a path (expected file:PATH)");
    if (r == 0)
        r = check_input_file("--kernel", cfg->kernel_path, "a kernel image file", err);
    if (r == 0 && cfg->initrd_path)
        r = check_input_file("--initrd", cfg->initrd_path, "an initrd file", err);
    if (r == 0)
        r = config_check_disks(cfg, err);
    return r;
}
