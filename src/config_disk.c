/* --disk values: PATH[,readonly][,serial=ID][,cache=writeback|writethrough|unsafe] parsed into
 * struct disk_config, and the checks that span all disks (device count, the same image twice). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kiln/config.h"

/* A power of two the transport can offer: split rings need one, and 256 bounds every chain. */
static int disk_queue_size(struct disk_config *disk, const char *text, const char *spec_quoted,
                           struct error *err)
{
    unsigned long n = 0;
    if (*text && strspn(text, "0123456789") == strlen(text) && strlen(text) <= 4)
        n = strtoul(text, NULL, 10);
    if (n < CONFIG_MIN_QUEUE_SIZE || n > CONFIG_DEFAULT_QUEUE_SIZE || (n & (n - 1)))
        return error_fmt(err, -EINVAL,
                         "--disk: queue size in '%s' is not valid (expected a power of 2 from "
                         "%d to %d)",
                         spec_quoted, CONFIG_MIN_QUEUE_SIZE, CONFIG_DEFAULT_QUEUE_SIZE);
    disk->queue_size = (unsigned)n;
    return 0;
}

static int disk_option(struct disk_config *disk, const char *option, const char *spec,
                       struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE], spec_quoted[CONFIG_QUOTE_SIZE];
    config_quote(option, quoted, sizeof(quoted));
    config_quote(spec, spec_quoted, sizeof(spec_quoted));
    if (strcmp(option, "readonly") == 0 || strcmp(option, "ro") == 0) {
        disk->readonly = true;
        return 0;
    }
    if (strncmp(option, "serial=", 7) == 0) {
        size_t len = strlen(option + 7);
        if (len == 0 || len > CONFIG_MAX_DISK_SERIAL)
            return error_fmt(err, -EINVAL,
                             "--disk: serial in '%s' is %zu bytes (expected 1 to %d bytes)",
                             spec_quoted, len, CONFIG_MAX_DISK_SERIAL);
        free(disk->serial);
        disk->serial = strdup(option + 7);
        return disk->serial ? 0 : error_fmt(err, -ENOMEM, "out of memory");
    }
    if (strncmp(option, "cache=", 6) == 0) {
        static const char *const modes[] = {"writeback", "writethrough", "unsafe"};
        for (int i = 0; i < 3; i++) {
            if (strcmp(option + 6, modes[i]) == 0) {
                disk->cache = (enum disk_cache)i;
                return 0;
            }
        }
        return error_fmt(err, -EINVAL,
                         "--disk: '%s' in '%s' is not a cache mode (expected cache=writeback, "
                         "cache=writethrough or cache=unsafe)",
                         quoted, spec_quoted);
    }
    if (strncmp(option, "queue-size=", 11) == 0)
        return disk_queue_size(disk, option + 11, spec_quoted, err);
    return error_fmt(err, -EINVAL,
                     "--disk: unknown option '%s' in '%s' (expected readonly, serial=ID, "
                     "cache=MODE or queue-size=N)",
                     quoted, spec_quoted);
}

int config_parse_disk(const char *spec, struct disk_config *disk, struct error *err)
{
    memset(disk, 0, sizeof(*disk));
    disk->cache = DISK_CACHE_WRITEBACK;
    disk->queue_size = CONFIG_DEFAULT_QUEUE_SIZE;
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
           (cfg->console_device == CONSOLE_ON_VIRTIO ? 1 : 0);
}

int config_check_disks(const struct vm_config *cfg, struct error *err)
{
    unsigned count = config_virtio_device_count(cfg);
    if (count > CONFIG_MAX_VIRTIO_DEVICES)
        return error_fmt(err, -EINVAL,
                         "--disk/--net/--rng: %u virtio devices (expected at most %d in total)", count,
                         CONFIG_MAX_VIRTIO_DEVICES);
    /* The same image twice would be two writers behind the guest's back. */
    for (unsigned i = 0; i < cfg->ndisks; i++) {
        struct stat a;
        if (stat(cfg->disks[i].path, &a) != 0)
            continue; /* opening it reports the error with its cause */
        for (unsigned j = 0; j < i; j++) {
            struct stat b;
            if (stat(cfg->disks[j].path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
                char quoted[CONFIG_QUOTE_SIZE];
                return error_fmt(err, -EINVAL,
                                 "--disk: '%s' is the same image as disk %u (expected each "
                                 "image once)",
                                 config_quote(cfg->disks[i].path, quoted, sizeof(quoted)), j);
            }
        }
    }
    return 0;
}
