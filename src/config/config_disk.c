/* The keys of a disk (the YAML disks: entry and the --disk PATH[,readonly][,serial=ID]
 * [,cache=MODE][,queue-size=N][,bw=RATE]... options alike) and their checks, and the count of
 * virtio devices. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/config/config_limit.h"
#include "kiln/config/config_settings.h"

void config_init_disk(struct disk_config *disk)
{
    memset(disk, 0, sizeof(*disk));
    disk->cache = DISK_CACHE_WRITEBACK;
    disk->queue_size = CONFIG_DEFAULT_QUEUE_SIZE;
}

#define PATH_EXPECTED   "the path of a raw disk image or block device"
#define SERIAL_EXPECTED "1 to " CONFIG_STRINGIFY(CONFIG_MAX_DISK_SERIAL) " bytes"
#define CACHE_EXPECTED  "writeback, writethrough or unsafe"
#define QUEUE_SIZE_EXPECTED                                                                        \
    "a power of 2 from " CONFIG_STRINGIFY(CONFIG_MIN_QUEUE_SIZE) " to " CONFIG_STRINGIFY(          \
        CONFIG_DEFAULT_QUEUE_SIZE)

static int set_path(void *device, const char *subject, const char *text, struct error *err)
{
    struct disk_config *disk = device;
    char *copy = strdup(text);
    if (!copy)
        return error_fmt(err, -ENOMEM, "out of memory");
    free(disk->path);
    disk->path = copy;
    return 0;
}

static int set_readonly(void *device, const char *subject, const char *text, struct error *err)
{
    struct disk_config *disk = device;
    int v = config_parse_bool(text);
    if (v < 0)
        return error_fmt(err, -EINVAL, "%s is not valid (expected true or false)", subject);
    disk->readonly = v;
    return 0;
}

static int set_serial(void *device, const char *subject, const char *text, struct error *err)
{
    struct disk_config *disk = device;
    size_t len = strlen(text);
    if (len == 0 || len > CONFIG_MAX_DISK_SERIAL)
        return error_fmt(err, -EINVAL, "%s is %zu bytes (expected " SERIAL_EXPECTED ")", subject,
                         len);
    char *copy = strdup(text);
    if (!copy)
        return error_fmt(err, -ENOMEM, "out of memory");
    free(disk->serial);
    disk->serial = copy;
    return 0;
}

static int set_cache(void *device, const char *subject, const char *text, struct error *err)
{
    struct disk_config *disk = device;
    if (config_disk_parse_cache(text, &disk->cache) < 0)
        return error_fmt(err, -EINVAL, "%s is not a cache mode (expected " CACHE_EXPECTED ")",
                         subject);
    return 0;
}

/* A power of two the transport can offer: split rings need one, and 256 bounds every chain. */
static int set_queue_size(void *device, const char *subject, const char *text, struct error *err)
{
    struct disk_config *disk = device;
    unsigned long n = 0;
    if (*text && strspn(text, "0123456789") == strlen(text) && strlen(text) <= 4)
        n = strtoul(text, NULL, 10);
    if (n < CONFIG_MIN_QUEUE_SIZE || n > CONFIG_DEFAULT_QUEUE_SIZE || (n & (n - 1)))
        return error_fmt(err, -EINVAL, "%s is not valid (expected " QUEUE_SIZE_EXPECTED ")",
                         subject);
    disk->queue_size = (unsigned)n;
    return 0;
}

static int get_path(const void *device, char **text)
{
    return config_text(((const struct disk_config *)device)->path, text);
}

static int get_readonly(const void *device, char **text)
{
    return config_text(((const struct disk_config *)device)->readonly ? "true" : "false", text);
}

static int get_serial(const void *device, char **text)
{
    return config_text(((const struct disk_config *)device)->serial, text);
}

static int get_cache(const void *device, char **text)
{
    return config_text(config_disk_cache_name(((const struct disk_config *)device)->cache), text);
}

static int get_queue_size(const void *device, char **text)
{
    return config_text_unsigned(((const struct disk_config *)device)->queue_size, text);
}

/* bw=, bw-burst=, iops=, iops-burst=: the disk's rate limit (config_limit.c). */
static int set_bw(void *device, const char *subject, const char *text, struct error *err)
{
    return config_limit_set(&((struct disk_config *)device)->limit, CONFIG_LIMIT_BW, subject, text,
                            err);
}

static int get_bw(const void *device, char **text)
{
    return config_limit_get(&((const struct disk_config *)device)->limit, CONFIG_LIMIT_BW, text);
}

static int set_bw_burst(void *device, const char *subject, const char *text, struct error *err)
{
    return config_limit_set(&((struct disk_config *)device)->limit, CONFIG_LIMIT_BW_BURST, subject,
                            text, err);
}

static int get_bw_burst(const void *device, char **text)
{
    return config_limit_get(&((const struct disk_config *)device)->limit, CONFIG_LIMIT_BW_BURST,
                            text);
}

static int set_ops(void *device, const char *subject, const char *text, struct error *err)
{
    return config_limit_set(&((struct disk_config *)device)->limit, CONFIG_LIMIT_OPS, subject, text,
                            err);
}

static int get_ops(const void *device, char **text)
{
    return config_limit_get(&((const struct disk_config *)device)->limit, CONFIG_LIMIT_OPS, text);
}

static int set_ops_burst(void *device, const char *subject, const char *text, struct error *err)
{
    return config_limit_set(&((struct disk_config *)device)->limit, CONFIG_LIMIT_OPS_BURST, subject,
                            text, err);
}

static int get_ops_burst(const void *device, char **text)
{
    return config_limit_get(&((const struct disk_config *)device)->limit, CONFIG_LIMIT_OPS_BURST,
                            text);
}

static const struct config_device_key disk_keys[] = {
    {"path", NULL, "PATH", PATH_EXPECTED, set_path, get_path, CONFIG_SETTING_PATH},
    {"readonly", "ro", "", "true or false", set_readonly, get_readonly, CONFIG_SETTING_SWITCH},
    {"serial", NULL, "ID", SERIAL_EXPECTED, set_serial, get_serial, CONFIG_SETTING_TEXT},
    {"cache", NULL, "MODE", CACHE_EXPECTED, set_cache, get_cache, 0},
    {"queue-size", NULL, "N", QUEUE_SIZE_EXPECTED, set_queue_size, get_queue_size, 0},
    {"bw", NULL, "RATE", CONFIG_LIMIT_BW_EXPECTED, set_bw, get_bw, 0},
    {"bw-burst", NULL, "SIZE", CONFIG_LIMIT_BW_BURST_EXPECTED, set_bw_burst, get_bw_burst, 0},
    {"iops", NULL, "RATE", CONFIG_LIMIT_OPS_EXPECTED, set_ops, get_ops, 0},
    {"iops-burst", NULL, "N", CONFIG_LIMIT_OPS_BURST_EXPECTED, set_ops_burst, get_ops_burst, 0},
};

const struct config_device_keys config_disk_keys = {
    .flag = "--disk",
    .list_key = "disks",
    .what = "disks",
    .spec = CONFIG_DISK_SPEC,
    .keys = disk_keys,
    .count = sizeof(disk_keys) / sizeof(disk_keys[0]),
    .positional = true,
};

int config_parse_disk(const char *spec, struct disk_config *disk, struct error *err)
{
    config_init_disk(disk);
    int r = config_parse_device_spec(&config_disk_keys, spec, disk, err);
    if (r < 0)
        config_free_disk(disk);
    return r;
}

int config_set_disk(struct vm_config *cfg, const char *label, const char *text, struct error *err)
{
    struct disk_config disk;
    int r = config_parse_disk(text, &disk, err);
    if (r == 0 && (r = config_add_disk(cfg, &disk, err)) < 0)
        config_free_disk(&disk);
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
    return cfg->ndisks + cfg->nnets + (cfg->rng ? 1 : 0) + (cfg->balloon.enabled ? 1 : 0) +
           (cfg->console_device == CONSOLE_ON_VIRTIO || cfg->vconsole ? 1 : 0);
}
