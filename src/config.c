/* struct vm_config defaults, SIZE parsing and the validation pass shared by every way a
 * config is filled (CLI today, YAML later): one place decides what a valid VM is. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/config.h"

void config_init(struct vm_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->cmdline = strdup("");
    cfg->cpus = CONFIG_DEFAULT_CPUS;
    cfg->memory_bytes = CONFIG_DEFAULT_MEMORY;
    cfg->console = CONSOLE_STDIO;
    cfg->log_level = LOG_WARN;
}

void config_free(struct vm_config *cfg)
{
    free(cfg->kernel_path);
    free(cfg->initrd_path);
    free(cfg->cmdline);
    free(cfg->console_path);
    memset(cfg, 0, sizeof(*cfg));
}

int config_parse_size(const char *text, uint64_t *bytes)
{
    if (!text || *text < '0' || *text > '9')
        return -EINVAL;
    uint64_t value = 0;
    const char *p = text;
    for (; *p >= '0' && *p <= '9'; p++) {
        uint64_t digit = (uint64_t)(*p - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return -ERANGE;
        value = value * 10 + digit;
    }
    unsigned shift = 0;
    switch (*p) {
    case '\0':
        break;
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    default:
        return -EINVAL;
    }
    if (shift) {
        p++;
        /* Accept the spelled-out unit too: 512MiB, 512MB (both mean 512 * 2^20). */
        if (strcmp(p, "iB") == 0 || strcmp(p, "B") == 0)
            p += strlen(p);
        if (*p != '\0')
            return -EINVAL;
        if (value > (UINT64_MAX >> shift))
            return -ERANGE;
        value <<= shift;
    }
    *bytes = value;
    return 0;
}

static int check_input_file(const char *flag, const char *path, struct error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return error_fmt(err, -errno, "%s: '%s': %s", flag, path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return error_fmt(err, -EINVAL, "%s: '%s' is not a regular file", flag, path);
    if (access(path, R_OK) != 0)
        return error_fmt(err, -errno, "%s: '%s': %s", flag, path, strerror(errno));
    return 0;
}

int config_validate(const struct vm_config *cfg, struct error *err)
{
    if (!cfg->kernel_path || !*cfg->kernel_path)
        return error_fmt(err, -EINVAL,
                         "--kernel: missing (expected the path of a kernel image: bzImage, ELF "
                         "vmlinux or PVH ELF)");
    if (cfg->cpus < 1 || cfg->cpus > CONFIG_MAX_CPUS)
        return error_fmt(err, -ERANGE, "--cpus: %u is out of range (expected 1 to %u)", cfg->cpus,
                         CONFIG_MAX_CPUS);
    if (cfg->memory_bytes < CONFIG_MIN_MEMORY || cfg->memory_bytes > CONFIG_MAX_MEMORY)
        return error_fmt(err, -ERANGE,
                         "--memory: %llu bytes is out of range (expected 4M to 1024G)",
                         (unsigned long long)cfg->memory_bytes);
    if (cfg->memory_bytes % 4096 != 0)
        return error_fmt(err, -EINVAL,
                         "--memory: %llu bytes is not a multiple of 4 KiB (expected e.g. 512M)",
                         (unsigned long long)cfg->memory_bytes);
    if (cfg->console == CONSOLE_FILE && (!cfg->console_path || !*cfg->console_path))
        return error_fmt(err, -EINVAL, "--console: 'file:' needs a path (expected file:PATH)");
    int r = check_input_file("--kernel", cfg->kernel_path, err);
    if (r == 0 && cfg->initrd_path)
        r = check_input_file("--initrd", cfg->initrd_path, err);
    return r;
}
