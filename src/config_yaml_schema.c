/* The schema of a YAML VM definition: which keys exist, what each value must be, and the walk
 * that hands each value (after ${VAR} expansion and path resolution) to the setter its flag
 * uses. Every problem is reported and the walk goes on, so one run lists them all. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_yaml_internal.h"

#define PATH_SIZE  (CONFIG_QUOTE_SIZE + 32) /* "disks[3].queue-size", or a quoted odd key */
#define LABEL_SIZE (2 * CONFIG_QUOTE_SIZE + 64)

enum value_kind {
    VALUE_TEXT,    /* handed to the setter as written (after ${VAR}) */
    VALUE_PATH,    /* relative to the file's folder */
    VALUE_CONSOLE, /* [virtio:]file:PATH has a path in it */
    VALUE_BOOL,
    VALUE_KERNEL, /* a mapping: kernel_keys */
    VALUE_DISKS,  /* a list of disk mappings */
    VALUE_NETS,   /* a list of net mappings */
};

struct key_spec {
    const char *name;
    enum value_kind kind;
    config_setter set;
    enum config_field field;
    const char *expected;
};

static const struct key_spec top_keys[] = {
    {"name", VALUE_TEXT, config_set_name, CONFIG_FIELD_NAME,
     "a name of 1 to 64 letters, digits, '.', '_' or '-'"},
    {"cpus", VALUE_TEXT, config_set_cpus, CONFIG_FIELD_CPUS, "a vCPU count from 1 to 254"},
    {"memory", VALUE_TEXT, config_set_memory, CONFIG_FIELD_MEMORY, "a size such as 512M"},
    {"kernel", VALUE_KERNEL, NULL, CONFIG_FIELD_KERNEL, "a mapping with path, initrd and cmdline"},
    {"console", VALUE_CONSOLE, config_set_console, CONFIG_FIELD_CONSOLE,
     CONFIG_CONSOLE_SINKS ", optionally after virtio:"},
    {"vconsole", VALUE_CONSOLE, config_set_vconsole, CONFIG_FIELD_VCONSOLE, CONFIG_CONSOLE_SINKS},
    {"log-level", VALUE_TEXT, config_set_log_level, CONFIG_FIELD_LOG_LEVEL,
     "error, warn, info or debug"},
    {"disks", VALUE_DISKS, NULL, CONFIG_FIELD_DISK,
     "a list of disks, each a mapping with path and optionally readonly, serial, cache, "
     "queue-size"},
    {"nets", VALUE_NETS, NULL, CONFIG_FIELD_NET,
     "a list of network devices, each a mapping with tap and optionally mac"},
    {"rng", VALUE_BOOL, NULL, CONFIG_FIELD_RNG, "true or false"},
    {"device-discovery", VALUE_TEXT, config_set_device_discovery, CONFIG_FIELD_DEVICE_DISCOVERY,
     "acpi or cmdline"},
    {"on-reset", VALUE_TEXT, config_set_on_reset, CONFIG_FIELD_ON_RESET, "exit or restart"},
    {"shutdown-grace", VALUE_TEXT, config_set_shutdown_grace, CONFIG_FIELD_SHUTDOWN_GRACE,
     "a number of seconds from 0 to 3600"},
    {"host-compat", VALUE_TEXT, config_set_host_compat, CONFIG_FIELD_HOST_COMPAT,
     "auto, on or off"},
};
#define TOP_KEY_COUNT (sizeof(top_keys) / sizeof(top_keys[0]))

static const struct key_spec kernel_keys[] = {
    {"path", VALUE_PATH, config_set_kernel, CONFIG_FIELD_KERNEL, CONFIG_KERNEL_EXPECTED},
    {"initrd", VALUE_PATH, config_set_initrd, CONFIG_FIELD_INITRD,
     "the path of an initial ramdisk"},
    {"cmdline", VALUE_TEXT, config_set_cmdline, CONFIG_FIELD_CMDLINE,
     "a kernel command line, e.g. 'console=ttyS0'"},
};
#define KERNEL_KEY_COUNT (sizeof(kernel_keys) / sizeof(kernel_keys[0]))

static const char *const disk_keys[] = {"path", "readonly", "serial", "cache", "queue-size"};
enum { DISK_PATH, DISK_READONLY, DISK_SERIAL, DISK_CACHE, DISK_QUEUE_SIZE, DISK_KEY_COUNT };
static const char *const net_keys[] = {"tap", "mac"};
enum { NET_TAP, NET_MAC, NET_KEY_COUNT };

static const char *top_expected(enum config_field field)
{
    for (size_t i = 0; i < TOP_KEY_COUNT; i++)
        if (top_keys[i].field == field)
            return top_keys[i].expected;
    return "a valid value";
}

#define DISK_PATH_EXPECTED "the path of a raw disk image or block device"
#define TAP_EXPECTED       "the name of a TAP interface"

static void set_mark(struct config_yaml_mark *mark, yaml_mark_t at)
{
    mark->line = (unsigned)at.line + 1;
    mark->column = (unsigned)at.column + 1;
    mark->bad = false;
}

static yaml_node_t *node(const struct yaml_walk *w, int id)
{
    return yaml_document_get_node(w->doc, id);
}

static bool is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

/* What a node is, for "... is not valid here": "a mapping", "a list" or the quoted value. */
static const char *describe(const yaml_node_t *n, char *buf, size_t size)
{
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    char quoted[CONFIG_QUOTE_SIZE];
    snprintf(buf, size, "'%s'",
             config_quote((const char *)n->data.scalar.value, quoted, sizeof(quoted)));
    return buf;
}

static void wrong_type(struct yaml_walk *w, const yaml_node_t *n, const char *path,
                       const char *expected)
{
    char what[CONFIG_QUOTE_SIZE + 2];
    if (is_null(n))
        yaml_problem(w->origin, w->problems, n->start_mark, -EINVAL, "%s: no value (expected %s)",
                     path, expected);
    else
        yaml_problem(w->origin, w->problems, n->start_mark, -EINVAL,
                     "%s: %s is not valid here (expected %s)", path,
                     describe(n, what, sizeof(what)), expected);
}

static void add_error(struct yaml_walk *w, int r, const struct error *err)
{
    config_problems_add(w->problems, r, err->msg);
}

/* A scalar's text after ${VAR} expansion (free it), or NULL with the problem reported. */
static char *scalar_text(struct yaml_walk *w, const yaml_node_t *n, const char *path,
                         const char *expected)
{
    if (n->type != YAML_SCALAR_NODE || is_null(n)) {
        wrong_type(w, n, path, expected);
        return NULL;
    }
    const char *value = (const char *)n->data.scalar.value;
    if (strlen(value) != n->data.scalar.length) { /* a "\0" escape */
        yaml_problem(w->origin, w->problems, n->start_mark, -EINVAL,
                     "%s: a NUL byte in the value (expected %s)", path, expected);
        return NULL;
    }
    char label[LABEL_SIZE];
    yaml_label(w->origin, n->start_mark, path, label, sizeof(label));
    struct error err;
    char *text = NULL;
    int r = config_yaml_expand(label, value, &text, &err);
    if (r < 0) {
        add_error(w, r, &err);
        return NULL;
    }
    return text;
}

/* true/false (YAML 1.2 core spellings); -1 with the problem reported otherwise. */
static int bool_value(struct yaml_walk *w, const yaml_node_t *n, const char *path)
{
    char *text = scalar_text(w, n, path, "true or false");
    if (!text)
        return -1;
    int v = -1;
    if (strcmp(text, "true") == 0 || strcmp(text, "True") == 0 || strcmp(text, "TRUE") == 0)
        v = 1;
    else if (strcmp(text, "false") == 0 || strcmp(text, "False") == 0 || strcmp(text, "FALSE") == 0)
        v = 0;
    else {
        char quoted[CONFIG_QUOTE_SIZE];
        yaml_problem(w->origin, w->problems, n->start_mark, -EINVAL,
                     "%s: '%s' is not valid (expected true or false)", path,
                     config_quote(text, quoted, sizeof(quoted)));
    }
    free(text);
    return v;
}

/* A path value resolved against the file's folder; "" stays "" for the setter to refuse. */
static char *resolve(const struct yaml_walk *w, char *text)
{
    if (!*text)
        return text;
    char *joined = config_yaml_join(w->dir, text);
    free(text);
    return joined;
}

/* [virtio:]file:PATH and [virtio:]socket:PATH: the PATH part is relative to the file's folder
 * too. */
static char *resolve_console(const struct yaml_walk *w, char *text)
{
    const char *sink = strncmp(text, "virtio:", 7) == 0 ? text + 7 : text;
    size_t prefix = strncmp(sink, "file:", 5) == 0 ? 5 : strncmp(sink, "socket:", 7) == 0 ? 7 : 0;
    if (!prefix || !sink[prefix])
        return text;
    char *path = config_yaml_join(w->dir, sink + prefix);
    char *joined = NULL;
    if (path && asprintf(&joined, "%.*s%s", (int)(sink + prefix - text), text, path) < 0)
        joined = NULL;
    free(path);
    free(text);
    return joined;
}

typedef yaml_pair_handler pair_handler;

static bool duplicate_key(struct yaml_walk *w, const yaml_node_t *map, const yaml_node_pair_t *pair,
                          const yaml_node_t *key, const char *path)
{
    for (const yaml_node_pair_t *p = map->data.mapping.pairs.start; p < pair; p++) {
        const yaml_node_t *earlier = node(w, p->key);
        if (earlier && earlier->type == YAML_SCALAR_NODE &&
            strcmp((const char *)earlier->data.scalar.value,
                   (const char *)key->data.scalar.value) == 0) {
            yaml_problem(w->origin, w->problems, key->start_mark, -EINVAL,
                         "%s: duplicate key (expected each key once; the first is at %zu:%zu)",
                         path, earlier->start_mark.line + 1, earlier->start_mark.column + 1);
            return true;
        }
    }
    return false;
}

static void unknown_key(struct yaml_walk *w, const yaml_node_t *key, const char *path,
                        const char *const *names, size_t n)
{
    const char *word = (const char *)key->data.scalar.value;
    const char *guess = config_closest(word, strlen(word), names, n);
    if (guess) {
        yaml_problem(w->origin, w->problems, key->start_mark, -EINVAL,
                     "%s: unknown key (did you mean '%s'?)", path, guess);
        return;
    }
    char list[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < n && used < sizeof(list); i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
                                 i == 0       ? ""
                                 : i + 1 == n ? " or "
                                              : ", ",
                                 names[i]);
    yaml_problem(w->origin, w->problems, key->start_mark, -EINVAL, "%s: unknown key (expected %s)",
                 path, list);
}

/* Each pair of map whose key is one of names goes to handle; the others are reported. */
static void walk_pairs(struct yaml_walk *w, const yaml_node_t *map, const char *prefix,
                       const char *const *names, size_t n, pair_handler handle, void *target)
{
    for (yaml_node_pair_t *pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top;
         pair++) {
        yaml_node_t *key = node(w, pair->key), *value = node(w, pair->value);
        if (!key || !value)
            continue;
        char path[PATH_SIZE], quoted[CONFIG_QUOTE_SIZE];
        if (key->type != YAML_SCALAR_NODE) {
            char what[CONFIG_QUOTE_SIZE + 2];
            yaml_problem(w->origin, w->problems, key->start_mark, -EINVAL,
                         "%s%s%s is not a key (expected a name such as %s)", prefix,
                         *prefix ? ": " : "", describe(key, what, sizeof(what)), names[0]);
            continue;
        }
        config_quote((const char *)key->data.scalar.value, quoted, sizeof(quoted));
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", quoted);
        if (duplicate_key(w, map, pair, key, path))
            continue;
        size_t i = 0;
        while (i < n && strcmp(names[i], (const char *)key->data.scalar.value) != 0)
            i++;
        if (i == n)
            unknown_key(w, key, path, names, n);
        else
            handle(w, target, i, value, path);
    }
}

/* A key whose value goes to its setter: name, cpus, memory, console, kernel.path, ... */
static void setting(struct yaml_walk *w, const struct key_spec *spec, yaml_node_t *value,
                    const char *path)
{
    struct config_yaml_mark *mark = &w->origin->field[spec->field];
    set_mark(mark, value->start_mark);
    char *text = scalar_text(w, value, path, spec->expected);
    if (!text) {
        mark->bad = true;
        return;
    }
    if (spec->kind == VALUE_PATH)
        text = resolve(w, text);
    else if (spec->kind == VALUE_CONSOLE)
        text = resolve_console(w, text);
    if (!text) {
        yaml_problem(w->origin, w->problems, value->start_mark, -ENOMEM, "%s: out of memory", path);
        mark->bad = true;
        return;
    }
    char label[LABEL_SIZE];
    yaml_label(w->origin, value->start_mark, path, label, sizeof(label));
    struct error err;
    int r = spec->set(w->cfg, label, text, &err);
    free(text);
    if (r < 0) {
        add_error(w, r, &err);
        mark->bad = true;
    }
}

static void kernel_pair(struct yaml_walk *w, void *target, size_t key, yaml_node_t *value,
                        const char *path)
{
    setting(w, &kernel_keys[key], value, path);
}

static void device_key(struct yaml_walk *w, const yaml_node_t *value, const char *key)
{
    set_mark(&w->origin->field[CONFIG_FIELD_DEVICES], value->start_mark);
    w->origin->devices_key = key;
}

struct disk_item {
    struct disk_config disk;
    yaml_mark_t path_mark;
    bool path_bad;
};

static void disk_pair(struct yaml_walk *w, void *target, size_t key, yaml_node_t *value,
                      const char *path)
{
    struct disk_item *item = target;
    struct disk_config *disk = &item->disk;
    if (key == DISK_READONLY) {
        int v = bool_value(w, value, path);
        if (v >= 0)
            disk->readonly = v;
        return;
    }
    static const char *const expected[] = {
        [DISK_PATH] = DISK_PATH_EXPECTED,
        [DISK_SERIAL] = "1 to 20 bytes",
        [DISK_CACHE] = "writeback, writethrough or unsafe",
        [DISK_QUEUE_SIZE] = "a power of 2 from 2 to 256",
    };
    if (key == DISK_PATH) {
        item->path_mark = value->start_mark;
        item->path_bad = true;
    }
    char *text = scalar_text(w, value, path, expected[key]);
    if (!text)
        return;
    char label[LABEL_SIZE], quoted[CONFIG_QUOTE_SIZE], subject[LABEL_SIZE + CONFIG_QUOTE_SIZE];
    yaml_label(w->origin, value->start_mark, path, label, sizeof(label));
    snprintf(subject, sizeof(subject), "%s: '%s'", label,
             config_quote(text, quoted, sizeof(quoted)));
    struct error err;
    int r = 0;
    if (key == DISK_PATH) {
        text = resolve(w, text);
        if (!text)
            r = error_fmt(&err, -ENOMEM, "out of memory");
        else if (!*text)
            r = error_fmt(&err, -EINVAL, "%s: empty path (expected " DISK_PATH_EXPECTED ")", label);
        if (r == 0) {
            free(disk->path);
            disk->path = text;
            text = NULL;
            item->path_bad = false;
        }
    } else if (key == DISK_SERIAL) {
        r = config_disk_set_serial(disk, subject, text, &err);
    } else if (key == DISK_CACHE) {
        if (config_disk_parse_cache(text, &disk->cache) < 0)
            r = error_fmt(&err, -EINVAL, "%s is not a cache mode (expected %s)", subject,
                          expected[DISK_CACHE]);
    } else {
        r = config_disk_set_queue_size(disk, subject, text, &err);
    }
    free(text);
    if (r < 0)
        add_error(w, r, &err);
}

struct net_item {
    struct net_config net;
    yaml_mark_t tap_mark;
    bool tap_bad;
};

static void net_pair(struct yaml_walk *w, void *target, size_t key, yaml_node_t *value,
                     const char *path)
{
    struct net_item *item = target;
    if (key == NET_TAP) {
        item->tap_mark = value->start_mark;
        item->tap_bad = true;
    }
    char *text = scalar_text(w, value, path,
                             key == NET_TAP ? TAP_EXPECTED : "a MAC such as 02:00:00:00:00:01");
    if (!text)
        return;
    char label[LABEL_SIZE], quoted[CONFIG_QUOTE_SIZE], subject[LABEL_SIZE + CONFIG_QUOTE_SIZE];
    yaml_label(w->origin, value->start_mark, path, label, sizeof(label));
    snprintf(subject, sizeof(subject), "%s: '%s'", label,
             config_quote(text, quoted, sizeof(quoted)));
    struct error err;
    int r = key == NET_TAP ? config_net_set_tap(&item->net, subject, text, &err)
                           : config_net_set_mac(&item->net, subject, "", text, &err);
    if (r == 0 && key == NET_TAP)
        item->tap_bad = false;
    free(text);
    if (r < 0)
        add_error(w, r, &err);
}

/* The items of a disks: or nets: list; NULL (with the problem reported) if it is not one.
 * A list longer than the devices kiln can give is cut there. */
static bool device_list(struct yaml_walk *w, const yaml_node_t *value, const char *path,
                        const char *expected, const char *what)
{
    if (is_null(value))
        return false; /* "disks:" with every entry commented out: none */
    if (value->type != YAML_SEQUENCE_NODE) {
        wrong_type(w, value, path, expected);
        return false;
    }
    size_t n = (size_t)(value->data.sequence.items.top - value->data.sequence.items.start);
    if (n > CONFIG_MAX_VIRTIO_DEVICES) {
        const yaml_node_t *extra =
            node(w, value->data.sequence.items.start[CONFIG_MAX_VIRTIO_DEVICES]);
        yaml_problem(w->origin, w->problems, extra ? extra->start_mark : value->start_mark, -EINVAL,
                     "%s[%d]: %zu %s (expected at most %d virtio devices in total)", path,
                     CONFIG_MAX_VIRTIO_DEVICES, n, what, CONFIG_MAX_VIRTIO_DEVICES);
    }
    return true;
}

/* How many entries of a device list to load: kiln gives at most CONFIG_MAX_VIRTIO_DEVICES. */
static unsigned device_count(const yaml_node_t *list)
{
    size_t n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
    return n < CONFIG_MAX_VIRTIO_DEVICES ? (unsigned)n : CONFIG_MAX_VIRTIO_DEVICES;
}

/* Entry i of a device list, named in prefix ("disks[2]"); NULL if it is not a mapping (which
 * is reported). */
static const yaml_node_t *device_entry(struct yaml_walk *w, const yaml_node_t *list,
                                       const char *path, unsigned i, const char *expected,
                                       char prefix[PATH_SIZE])
{
    const yaml_node_t *entry = node(w, list->data.sequence.items.start[i]);
    snprintf(prefix, PATH_SIZE, "%s[%u]", path, i);
    if (entry && entry->type != YAML_MAPPING_NODE) {
        wrong_type(w, entry, prefix, expected);
        return NULL;
    }
    return entry;
}

/* A device entry without its required key, unless that key's value was already reported. */
static void device_key_missing(struct yaml_walk *w, const yaml_node_t *entry, const char *prefix,
                               const char *key, const char *expected, bool value_reported)
{
    if (!value_reported)
        yaml_problem(w->origin, w->problems, entry->start_mark, -EINVAL,
                     "%s.%s: missing (expected %s)", prefix, key, expected);
}

static void load_disks(struct yaml_walk *w, const yaml_node_t *value, const char *path)
{
    struct vm_config *cfg = w->cfg;
    for (unsigned i = 0; i < cfg->ndisks; i++)
        config_free_disk(&cfg->disks[i]);
    cfg->ndisks = 0;
    memset(w->origin->disk, 0, sizeof(w->origin->disk));
    if (!device_list(w, value, path, top_expected(CONFIG_FIELD_DISK), "disks"))
        return;
    device_key(w, value, "disks");
    for (unsigned i = 0; i < device_count(value); i++) {
        char prefix[PATH_SIZE];
        const yaml_node_t *entry = device_entry(w, value, path, i,
                                                "a mapping with path and optionally readonly, "
                                                "serial, cache, queue-size",
                                                prefix);
        if (!entry)
            continue;
        struct disk_item item = {.path_bad = false};
        config_init_disk(&item.disk);
        walk_pairs(w, entry, prefix, disk_keys, DISK_KEY_COUNT, disk_pair, &item);
        struct error err;
        unsigned slot = cfg->ndisks;
        int r = -EINVAL;
        if (!item.disk.path)
            device_key_missing(w, entry, prefix, "path", DISK_PATH_EXPECTED, item.path_bad);
        else if ((r = config_add_disk(cfg, &item.disk, &err)) < 0)
            add_error(w, r, &err);
        if (r < 0)
            config_free_disk(&item.disk);
        else
            set_mark(&w->origin->disk[slot], item.path_mark);
    }
}

static void load_nets(struct yaml_walk *w, const yaml_node_t *value, const char *path)
{
    struct vm_config *cfg = w->cfg;
    for (unsigned i = 0; i < cfg->nnets; i++)
        config_free_net(&cfg->nets[i]);
    cfg->nnets = 0;
    memset(w->origin->net, 0, sizeof(w->origin->net));
    if (!device_list(w, value, path, top_expected(CONFIG_FIELD_NET), "network devices"))
        return;
    device_key(w, value, "nets");
    for (unsigned i = 0; i < device_count(value); i++) {
        char prefix[PATH_SIZE];
        const yaml_node_t *entry =
            device_entry(w, value, path, i, "a mapping with tap and optionally mac", prefix);
        if (!entry)
            continue;
        struct net_item item = {.tap_bad = false};
        walk_pairs(w, entry, prefix, net_keys, NET_KEY_COUNT, net_pair, &item);
        struct error err;
        unsigned slot = cfg->nnets;
        int r = -EINVAL;
        if (!item.net.tap)
            device_key_missing(w, entry, prefix, "tap", TAP_EXPECTED, item.tap_bad);
        else if ((r = config_add_net(cfg, &item.net, &err)) < 0)
            add_error(w, r, &err);
        if (r < 0)
            config_free_net(&item.net);
        else
            set_mark(&w->origin->net[slot], item.tap_mark);
    }
}

static void load_kernel(struct yaml_walk *w, const yaml_node_t *value, const char *path)
{
    /* Where "kernel.path: missing" points when the mapping has no path. */
    set_mark(&w->origin->field[CONFIG_FIELD_KERNEL], value->start_mark);
    if (value->type != YAML_MAPPING_NODE) {
        wrong_type(w, value, path, top_expected(CONFIG_FIELD_KERNEL));
        w->origin->field[CONFIG_FIELD_KERNEL].bad = true;
        return;
    }
    const char *names[KERNEL_KEY_COUNT];
    for (size_t i = 0; i < KERNEL_KEY_COUNT; i++)
        names[i] = kernel_keys[i].name;
    walk_pairs(w, value, path, names, KERNEL_KEY_COUNT, kernel_pair, NULL);
}

static void top_pair(struct yaml_walk *w, void *target, size_t key, yaml_node_t *value,
                     const char *path)
{
    const struct key_spec *spec = &top_keys[key];
    switch (spec->kind) {
    case VALUE_KERNEL:
        load_kernel(w, value, path);
        break;
    case VALUE_DISKS:
        load_disks(w, value, path);
        break;
    case VALUE_NETS:
        load_nets(w, value, path);
        break;
    case VALUE_BOOL: {
        set_mark(&w->origin->field[spec->field], value->start_mark);
        int v = bool_value(w, value, path);
        w->origin->field[spec->field].bad = v < 0;
        if (v >= 0)
            w->cfg->rng = v;
        if (v == 1)
            device_key(w, value, "rng");
        break;
    }
    default:
        setting(w, spec, value, path);
        if (spec->field == CONFIG_FIELD_CONSOLE && w->cfg->console_device == CONSOLE_ON_VIRTIO)
            device_key(w, value, "console");
        if (spec->field == CONFIG_FIELD_VCONSOLE && w->cfg->vconsole)
            device_key(w, value, "vconsole");
        break;
    }
}

void yaml_walk_vm(struct yaml_walk *w, yaml_node_t *root, const char *prefix)
{
    yaml_mark_t start = {0};
    const char *sep = *prefix ? ": " : "";
    if (!root || is_null(root)) {
        yaml_problem(w->origin, w->problems, root ? root->start_mark : start, -EINVAL,
                     "%s%sno settings (expected a mapping with at least kernel: {path: ...})",
                     prefix, sep);
        set_mark(&w->origin->field[CONFIG_FIELD_KERNEL], start);
        w->origin->field[CONFIG_FIELD_KERNEL].bad = true; /* that message says it all */
        return;
    }
    /* Where "kernel.path: missing" points when the file has no kernel: at all. */
    set_mark(&w->origin->field[CONFIG_FIELD_KERNEL], root->start_mark);
    if (root->type != YAML_MAPPING_NODE) {
        char what[CONFIG_QUOTE_SIZE + 2];
        if (*prefix)
            yaml_problem(w->origin, w->problems, root->start_mark, -EINVAL,
                         "%s: %s is not valid here (expected a VM definition file or a mapping "
                         "of VM settings such as 'cpus: 2')",
                         prefix, describe(root, what, sizeof(what)));
        else
            yaml_problem(w->origin, w->problems, root->start_mark, -EINVAL,
                         "the file is %s (expected a mapping of settings such as 'cpus: 2')",
                         describe(root, what, sizeof(what)));
        w->origin->field[CONFIG_FIELD_KERNEL].bad = true;
        return;
    }
    const char *names[TOP_KEY_COUNT];
    for (size_t i = 0; i < TOP_KEY_COUNT; i++)
        names[i] = top_keys[i].name;
    walk_pairs(w, root, prefix, names, TOP_KEY_COUNT, top_pair, NULL);
}

void yaml_walk_document(struct yaml_walk *w)
{
    yaml_walk_vm(w, yaml_document_get_root_node(w->doc), "");
}

/* The walk's helpers, for the other YAML file kinds (kiln test files). */
void yaml_walk_pairs(struct yaml_walk *w, const yaml_node_t *map, const char *prefix,
                     const char *const *names, size_t n, yaml_pair_handler handle, void *target)
{
    walk_pairs(w, map, prefix, names, n, handle, target);
}

bool yaml_is_null(const yaml_node_t *n)
{
    return is_null(n);
}

void yaml_wrong_type(struct yaml_walk *w, const yaml_node_t *n, const char *path,
                     const char *expected)
{
    wrong_type(w, n, path, expected);
}

char *yaml_scalar_text(struct yaml_walk *w, const yaml_node_t *n, const char *path,
                       const char *expected)
{
    return scalar_text(w, n, path, expected);
}
