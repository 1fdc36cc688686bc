/* PATCH /vm/disks/ID, /vm/nets/ID and /vm/rng: a body in kiln's short form ("bw": "50M", the
 * config's keys) or Firecracker's long form ("bandwidth": {"size", "refill_time_ms",
 * "one_time_burst"}), checked whole before the device's limits change. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/config/config_limit.h"
#include "kiln/vm/vm.h"
#include "vm_api_limits.h"

/* One key of a body in the short form: which value of which of the device's limits. */
struct short_key {
    const char *name;
    enum config_limit_part part;
    unsigned limit; /* 0, or 1 for a net device's transmit limit */
};

static const struct short_key disk_keys[] = {
    {"bw", CONFIG_LIMIT_BW, 0},
    {"bw-burst", CONFIG_LIMIT_BW_BURST, 0},
    {"iops", CONFIG_LIMIT_OPS, 0},
    {"iops-burst", CONFIG_LIMIT_OPS_BURST, 0},
};
static const struct short_key rng_keys[] = {
    {"bw", CONFIG_LIMIT_BW, 0},
    {"bw-burst", CONFIG_LIMIT_BW_BURST, 0},
    {"ops", CONFIG_LIMIT_OPS, 0},
    {"ops-burst", CONFIG_LIMIT_OPS_BURST, 0},
};
static const struct short_key net_keys[] = {
    {"rx-bw", CONFIG_LIMIT_BW, 0},   {"rx-bw-burst", CONFIG_LIMIT_BW_BURST, 0},
    {"rx-pps", CONFIG_LIMIT_OPS, 0}, {"rx-pps-burst", CONFIG_LIMIT_OPS_BURST, 0},
    {"tx-bw", CONFIG_LIMIT_BW, 1},   {"tx-bw-burst", CONFIG_LIMIT_BW_BURST, 1},
    {"tx-pps", CONFIG_LIMIT_OPS, 1}, {"tx-pps-burst", CONFIG_LIMIT_OPS_BURST, 1},
};

/* What a device's body may hold: its short keys, and the long form's keys. */
struct body_kind {
    const char *what; /* "disk", for messages */
    const char *ids;  /* what an ID is, for a 404 */
    const struct short_key *keys;
    size_t nkeys;
    bool directions; /* long form under "rx" and "tx" (a net device), else at the top */
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
static const struct body_kind disk_body = {"disk", "a disk's serial or its index in --disk order",
                                           disk_keys, COUNT(disk_keys), false};
static const struct body_kind net_body = {
    "net", "a net device's TAP name or its index in --net order", net_keys, COUNT(net_keys), true};
static const struct body_kind rng_body = {"virtio-rng", "a VM with --rng", rng_keys,
                                          COUNT(rng_keys), false};

/* {"size": N, "refill_time_ms": N, "one_time_burst": N} (null or 0: no limit) into bucket. */
static int long_bucket(json_t *value, const char *where, struct token_bucket_config *bucket,
                       char *why, size_t size)
{
    if (json_is_null(value) || (json_is_integer(value) && json_integer_value(value) == 0)) {
        memset(bucket, 0, sizeof(*bucket));
        return 0;
    }
    json_int_t tokens = -1, refill = 0, burst = 0;
    json_error_t jerr;
    if (!json_is_object(value) ||
        json_unpack_ex(value, &jerr, JSON_STRICT, "{s:I, s?I, s?I}", "size", &tokens,
                       "refill_time_ms", &refill, "one_time_burst", &burst) < 0) {
        snprintf(why, size,
                 "%s: expected {\"size\": N, \"refill_time_ms\": N, \"one_time_burst\": N} "
                 "(or null to remove the limit)%s%s",
                 where, json_is_object(value) ? ": " : "", json_is_object(value) ? jerr.text : "");
        return -EINVAL;
    }
    if (tokens < 0 || burst < 0 || (tokens > 0 && (refill < 1 || refill > CONFIG_MAX_REFILL_MS))) {
        snprintf(why, size,
                 "%s: size %lld, refill_time_ms %lld, one_time_burst %lld (expected sizes of 0 "
                 "or more and, with a size, a refill time from 1 to %d ms)",
                 where, (long long)tokens, (long long)refill, (long long)burst,
                 CONFIG_MAX_REFILL_MS);
        return -EINVAL;
    }
    bucket->size = (uint64_t)tokens;
    bucket->refill_time_ms = tokens ? (uint64_t)refill : 0;
    bucket->one_time_burst = (uint64_t)burst;
    return 0;
}

/* {"bandwidth": BUCKET, "ops": BUCKET} (either may be left out) into limit. */
static int long_limit(json_t *value, const char *where, struct rate_limit_config *limit, char *why,
                      size_t size)
{
    if (!json_is_object(value)) {
        snprintf(why, size, "%s: expected {\"bandwidth\": {...}, \"ops\": {...}}", where);
        return -EINVAL;
    }
    const char *key;
    json_t *bucket;
    json_object_foreach(value, key, bucket)
    {
        char inner[64];
        snprintf(inner, sizeof(inner), "%s.%s", where, key);
        int r = -EINVAL;
        if (strcmp(key, "bandwidth") == 0)
            r = long_bucket(bucket, inner, &limit->bytes, why, size);
        else if (strcmp(key, "ops") == 0)
            r = long_bucket(bucket, inner, &limit->ops, why, size);
        else
            snprintf(why, size, "%s: unknown key (expected bandwidth or ops)", inner);
        if (r < 0)
            return r;
    }
    return 0;
}

/* One short key's value: a string as the config takes it ("50M", "100/10ms"), or a number. */
static int short_value(const struct short_key *k, json_t *value, struct rate_limit_config *limits,
                       char *why, size_t size)
{
    char text[64];
    if (json_is_string(value))
        snprintf(text, sizeof(text), "%s", json_string_value(value));
    else if (json_is_integer(value) && json_integer_value(value) >= 0)
        snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(value));
    else if (json_is_null(value))
        snprintf(text, sizeof(text), "0");
    else {
        snprintf(why, size, "%s: expected a string such as \"50M\" or \"100/10ms\", or a number",
                 k->name);
        return -EINVAL;
    }
    char subject[96];
    snprintf(subject, sizeof(subject), "%s '%.40s'", k->name, text);
    struct error err;
    int r = config_limit_set(&limits[k->limit], k->part, subject, text, &err);
    if (r < 0)
        snprintf(why, size, "%s", err.msg);
    return r;
}

static const struct short_key *find_short(const struct body_kind *kind, const char *name)
{
    for (size_t i = 0; i < kind->nkeys; i++)
        if (strcmp(kind->keys[i].name, name) == 0)
            return &kind->keys[i];
    return NULL;
}

/* The keys a body of kind may hold, for messages: "bw, bw-burst, ..., bandwidth or ops". */
static void expected_keys(const struct body_kind *kind, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < kind->nkeys && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s, ", kind->keys[i].name);
    if (used < size)
        snprintf(buf + used, size - used, "%s", kind->directions ? "rx or tx" : "bandwidth or ops");
}

/* Applies a whole body to limits (a copy of the device's); nothing is half-applied. */
static int apply_body(const struct body_kind *kind, json_t *body, struct rate_limit_config *limits,
                      char *why, size_t size)
{
    if (!json_is_object(body) || json_object_size(body) == 0) {
        char keys[256];
        expected_keys(kind, keys, sizeof(keys));
        snprintf(why, size, "expected a JSON object with some of %s", keys);
        return -EINVAL;
    }
    const char *key;
    json_t *value;
    json_object_foreach(body, key, value)
    {
        const struct short_key *k = find_short(kind, key);
        bool long_value = json_is_object(value) || json_is_null(value);
        int r;
        if (kind->directions && (strcmp(key, "rx") == 0 || strcmp(key, "tx") == 0))
            r = long_limit(value, key, &limits[key[0] == 't'], why, size);
        else if (!kind->directions && strcmp(key, "bandwidth") == 0)
            r = long_bucket(value, key, &limits[0].bytes, why, size);
        else if (!kind->directions && strcmp(key, "ops") == 0 && long_value)
            r = long_bucket(value, key, &limits[0].ops, why, size);
        else if (k)
            r = short_value(k, value, limits, why, size);
        else {
            char keys[256];
            expected_keys(kind, keys, sizeof(keys));
            snprintf(why, size, "%.40s: unknown key (expected %s)", key, keys);
            r = -EINVAL;
        }
        if (r < 0)
            return r;
    }
    for (unsigned i = 0; i < (kind->directions ? 2u : 1u); i++)
        if ((limits[i].bytes.one_time_burst && !limits[i].bytes.size) ||
            (limits[i].ops.one_time_burst && !limits[i].ops.size)) {
            snprintf(why, size, "a burst without its rate (expected the rate the burst goes with)");
            return -EINVAL;
        }
    return 0;
}

/* The device's limits in the short form, the reply to a PATCH. */
static json_t *limits_json(const struct body_kind *kind, const struct rate_limit_config *limits)
{
    json_t *obj = json_object();
    for (size_t i = 0; obj && i < kind->nkeys; i++) {
        char *text = NULL;
        if (config_limit_get(&limits[kind->keys[i].limit], kind->keys[i].part, &text) == 0 && text)
            json_object_set_new(obj, kind->keys[i].name, json_string(text));
        free(text);
    }
    return obj;
}

static void patch_device(struct vm *vm, struct api_call *call, const struct body_kind *kind,
                         struct vm_device *d, const char *id)
{
    if (!d) {
        if (*id)
            api_call_error(call, 404, "no %s '%.64s' (expected %s)", kind->what, id, kind->ids);
        else
            api_call_error(call, 404, "no %s (expected %s)", kind->what, kind->ids);
        return;
    }
    struct rate_limit_config limits[VM_DEVICE_MAX_LIMITS];
    memset(limits, 0, sizeof(limits));
    d->kind->get_limits(d->dev, limits);
    char why[512];
    if (apply_body(kind, api_call_body(call), limits, why, sizeof(why)) < 0) {
        api_call_error(call, 400, "%s: %s", d->name, why);
        return;
    }
    struct error err;
    if (d->kind->set_limits(d->dev, limits, &err) < 0) {
        api_call_error(call, 400, "%s", err.msg);
        return;
    }
    log_info(&vm->log, "API: new rate limits for %s", d->name);
    json_t *reply = limits_json(kind, limits);
    if (reply)
        api_call_reply(call, 200, reply);
    else
        api_call_error(call, 500, "out of memory");
}

/* The path's last segment, the ID in /vm/disks/ID. */
static const char *path_id(struct api_call *call)
{
    return strrchr(api_call_path(call), '/') + 1;
}

/* A name the config gives (a serial, a TAP), else a decimal index; -1 if neither. */
static long find_index(const char *id, const char *(*name_of)(const struct vm_config *, unsigned),
                       const struct vm_config *cfg, unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        const char *name = name_of(cfg, i);
        if (name && strcmp(name, id) == 0)
            return i;
    }
    if (strspn(id, "0123456789") != strlen(id) || strlen(id) > 3)
        return -1;
    long index = strtol(id, NULL, 10);
    return index < count ? index : -1;
}

static const char *disk_serial(const struct vm_config *cfg, unsigned i)
{
    return cfg->disks[i].serial;
}

static const char *net_tap(const struct vm_config *cfg, unsigned i)
{
    return cfg->nets[i].tap;
}

void vm_api_patch_disk(void *opaque, struct api_call *call)
{
    struct vm *vm = opaque;
    const char *id = path_id(call);
    long i = find_index(id, disk_serial, vm->config, vm->config->ndisks);
    patch_device(vm, call, &disk_body, i < 0 ? NULL : vm_devices_find(vm, "virtio-blk", i), id);
}

void vm_api_patch_net(void *opaque, struct api_call *call)
{
    struct vm *vm = opaque;
    const char *id = path_id(call);
    long i = find_index(id, net_tap, vm->config, vm->config->nnets);
    patch_device(vm, call, &net_body, i < 0 ? NULL : vm_devices_find(vm, "virtio-net", i), id);
}

void vm_api_patch_rng(void *opaque, struct api_call *call)
{
    struct vm *vm = opaque;
    patch_device(vm, call, &rng_body, vm_devices_find(vm, "virtio-rng", 0), "");
}
