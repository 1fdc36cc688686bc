/* --disk values: PATH[,readonly][,serial=ID][,cache=MODE][,queue-size=N] parsed into struct
 * disk_config, the option checks YAML disks share, and the count of virtio devices. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/config.h"

void config_init_disk(struct disk_config *disk)
{
    memset(disk, 0, sizeof(*disk));
    disk->cache = DISK_CACHE_WRITEBACK;
    disk->queue_size = CONFIG_DEFAULT_QUEUE_SIZE;
}

/* A power of two the transport can offer: split rings need one, and 256 bounds every chain. */
int config_disk_set_queue_size(struct disk_config *disk, const char *subject, const char *text,
                               struct error *err)
{
    unsigned long n = 0;
    if (*text && strspn(text, "0123456789") == strlen(text) && strlen(text) <= 4)
        n = strtoul(text, NULL, 10);
    if (n < CONFIG_MIN_QUEUE_SIZE || n > CONFIG_DEFAULT_QUEUE_SIZE || (n & (n - 1)))
        return error_fmt(err, -EINVAL, "%s is not valid (expected a power of 2 from %d to %d)",
                         subject, CONFIG_MIN_QUEUE_SIZE, CONFIG_DEFAULT_QUEUE_SIZE);
    disk->queue_size = (unsigned)n;
    return 0;
}

int config_disk_set_serial(struct disk_config *disk, const char *subject, const char *text,
                           struct error *err)
{
    size_t len = strlen(text);
    if (len == 0 || len > CONFIG_MAX_DISK_SERIAL)
        return error_fmt(err, -EINVAL, "%s is %zu bytes (expected 1 to %d bytes)", subject, len,
                         CONFIG_MAX_DISK_SERIAL);
    char *copy = strdup(text);
    if (!copy)
        return error_fmt(err, -ENOMEM, "out of memory");
    free(disk->serial);
    disk->serial = copy;
    return 0;
}

static int disk_option(struct disk_config *disk, const char *option, const char *spec,
                       struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE], spec_quoted[CONFIG_QUOTE_SIZE];
    char subject[2 * CONFIG_QUOTE_SIZE];
    config_quote(option, quoted, sizeof(quoted));
    config_quote(spec, spec_quoted, sizeof(spec_quoted));
    if (strcmp(option, "readonly") == 0 || strcmp(option, "ro") == 0) {
        disk->readonly = true;
        return 0;
    }
    if (strncmp(option, "serial=", 7) == 0) {
        snprintf(subject, sizeof(subject), "--disk: serial in '%s'", spec_quoted);
        return config_disk_set_serial(disk, subject, option + 7, err);
    }
    if (strncmp(option, "cache=", 6) == 0) {
        if (config_disk_parse_cache(option + 6, &disk->cache) == 0)
            return 0;
        return error_fmt(err, -EINVAL,
                         "--disk: '%s' in '%s' is not a cache mode (expected cache=writeback, "
                         "cache=writethrough or cache=unsafe)",
                         quoted, spec_quoted);
    }
    if (strncmp(option, "queue-size=", 11) == 0) {
        snprintf(subject, sizeof(subject), "--disk: queue size in '%s'", spec_quoted);
        return config_disk_set_queue_size(disk, subject, option + 11, err);
    }
    return error_fmt(err, -EINVAL,
                     "--disk: unknown option '%s' in '%s' (expected readonly, serial=ID, "
                     "cache=MODE or queue-size=N)",
                     quoted, spec_quoted);
}

int config_parse_disk(const char *spec, struct disk_config *disk, struct error *err)
{
    config_init_disk(disk);
    char *copy = strdup(spec);
    if (!copy)
        return error_fmt(err, -ENOMEM, "out of memory");
    char *rest = copy;
    char *path = strsep(&rest, ",");
    int r = 0;
    if (!*path)
        r = error_fmt(err, -EINVAL, "--disk: empty path (expected " CONFIG_DISK_SPEC ")");
    else if (!(disk->path = strdup(path)))
        r = error_fmt(err, -ENOMEM, "out of memory");
    while (r == 0 && rest) {
        char *option = strsep(&rest, ",");
        r = disk_option(disk, option, spec, err);
    }
    free(copy);
    if (r < 0)
        config_free_disk(disk);
    return r;
}

void config_free_disk(struct disk_config *disk)
{
    free(disk->path);
    free(disk->serial);
    memset(disk, 0, sizeof(*disk));
}

int config_add_disk(struct vm_config *cfg, const struct disk_config *disk, struct error *err)
{
    struct disk_config *disks = realloc(cfg->disks, (cfg->ndisks + 1) * sizeof(*disks));
    if (!disks)
        return error_fmt(err, -ENOMEM, "out of memory");
    cfg->disks = disks;
    cfg->disks[cfg->ndisks++] = *disk;
    return 0;
}

unsigned config_virtio_device_count(const struct vm_config *cfg)
{
    return cfg->ndisks + cfg->nnets + (cfg->rng ? 1 : 0) +
           (cfg->console_device == CONSOLE_ON_VIRTIO || cfg->vconsole ? 1 : 0);
}
