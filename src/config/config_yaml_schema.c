/* The walk over a YAML VM definition: its keys are the settings table's (config_settings.c) and
 * the disk and net entry keys, and each value (after ${VAR} expansion and path resolution) goes
 * to the setter its flag uses. Every problem is reported and the walk goes on. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/config/yaml_walk.h"
#include "kiln/config/config_settings.h"

#define PATH_SIZE  (CONFIG_QUOTE_SIZE + 32) /* "disks[3].queue-size", or a quoted odd key */
#define LABEL_SIZE (2 * CONFIG_QUOTE_SIZE + 64)

/* The keys of one mapping of a VM definition: the settings at its place in the table and, at the
 * top, the kernel mapping (where the table's kernel settings begin). */
struct mapping_keys {
    const char *names[CONFIG_SETTING_COUNT];
    const struct config_setting *settings[CONFIG_SETTING_COUNT]; /* NULL: the kernel mapping */
    size_t n;
};

static void keys_at(enum config_place place, struct mapping_keys *keys)
{
    keys->n = 0;
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++) {
        const struct config_setting *setting = &config_settings[i];
        bool kernel_starts = place == CONFIG_PLACE_TOP && setting->place == CONFIG_PLACE_KERNEL &&
                             (i == 0 || config_settings[i - 1].place != CONFIG_PLACE_KERNEL);
        if (setting->place != place && !kernel_starts)
            continue;
        keys->names[keys->n] = kernel_starts ? CONFIG_KERNEL_KEY : setting->key;
        keys->settings[keys->n++] = kernel_starts ? NULL : setting;
    }
}

/* Where the value of field goes: the config, or scratch for a setting the config keeps (a flag
 * gave it), so that the file's value is still checked. */
static struct vm_config *config_for(const struct yaml_walk *w, enum config_field field)
{
    return w->keep && w->keep[field] ? w->scratch : w->cfg;
}

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
    size_t offset = config_sink_path_offset(text);
    if (!offset)
        return text;
    char *path = config_yaml_join(w->dir, text + offset);
    char *joined = NULL;
    if (path && asprintf(&joined, "%.*s%s", (int)offset, text, path) < 0)
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
    char list[512];
    yaml_problem(w->origin, w->problems, key->start_mark, -EINVAL, "%s: unknown key (expected %s)",
                 path, config_join_words(names, n, " or ", list, sizeof(list)));
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
        int length = snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", quoted);
        if (length < 0 || (size_t)length >= sizeof(path)) {
            /* No file kiln reads nests this deep (a kiln test file's cases[N].vm.disks[N] is
             * the longest prefix); a cut path would name the wrong key, so it is refused. */
            yaml_problem(w->origin, w->problems, key->start_mark, -EINVAL,
                         "%.64s...: key path too long (expected at most %zu bytes)", path,
                         sizeof(path) - 1);
            continue;
        }
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
static void setting(struct yaml_walk *w, const struct config_setting *spec, yaml_node_t *value,
                    const char *path)
{
    struct config_yaml_mark *mark = &w->origin->field[spec->field];
    set_mark(mark, value->start_mark);
    char *text = scalar_text(w, value, path, spec->expected);
    if (!text) {
        mark->bad = true;
        return;
    }
    if (config_setting_is_path(spec->options, text))
        text = resolve(w, text);
    else if (spec->options & CONFIG_SETTING_SINK)
        text = resolve_console(w, text);
    if (!text) {
        yaml_problem(w->origin, w->problems, value->start_mark, -ENOMEM, "%s: out of memory", path);
        mark->bad = true;
        return;
    }
    char label[LABEL_SIZE];
    yaml_label(w->origin, value->start_mark, path, label, sizeof(label));
    struct error err;
    int r = spec->set(config_for(w, spec->field), label, text, &err);
    free(text);
    if (r < 0) {
        add_error(w, r, &err);
        mark->bad = true;
    }
}

static void kernel_pair(struct yaml_walk *w, void *target, size_t key, yaml_node_t *value,
                        const char *path)
{
    const struct mapping_keys *keys = target;
    setting(w, keys->settings[key], value, path);
}

static void device_key(struct yaml_walk *w, const yaml_node_t *value, const char *key)
{
    set_mark(&w->origin->field[CONFIG_FIELD_DEVICES], value->start_mark);
    w->origin->devices_key = key;
}

/* One disks: or nets: entry as it is walked: its keys go to the device's setters. */
struct device_item {
    const struct config_device_keys *kind;
    void *device;           /* a struct disk_config or net_config */
    yaml_mark_t first_mark; /* where the value of keys[0] (path, tap) is */
    bool first_set;         /* keys[0] has a valid value */
    bool first_bad;         /* keys[0] has a value whose problem is reported */
};

static void device_pair(struct yaml_walk *w, void *target, size_t key, yaml_node_t *value,
                        const char *path)
{
    struct device_item *item = target;
    const struct config_device_key *spec = &item->kind->keys[key];
    if (key == 0) {
        item->first_mark = value->start_mark;
        item->first_bad = true;
    }
    char *text = scalar_text(w, value, path, spec->expected);
    if (!text)
        return;
    char label[LABEL_SIZE], quoted[CONFIG_QUOTE_SIZE], subject[LABEL_SIZE + CONFIG_QUOTE_SIZE];
    yaml_label(w->origin, value->start_mark, path, label, sizeof(label));
    snprintf(subject, sizeof(subject), "%s: '%s'", label,
             config_quote(text, quoted, sizeof(quoted)));
    struct error err;
    int r = 0;
    if (spec->options & CONFIG_SETTING_PATH) {
        text = resolve(w, text);
        if (!text)
            r = error_fmt(&err, -ENOMEM, "out of memory");
        else if (!*text)
            r = error_fmt(&err, -EINVAL, "%s: empty path (expected %s)", label, spec->expected);
    }
    if (r == 0)
        r = spec->set(item->device, subject, text, &err);
    free(text);
    if (r < 0) {
        add_error(w, r, &err);
    } else if (key == 0) {
        item->first_set = true;
        item->first_bad = false;
    }
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

/* "a list of disks, each a mapping with path and optionally readonly, ...". */
static const char *list_expected(const struct config_device_keys *kind, char *buf, size_t size)
{
    char entry[384];
    snprintf(buf, size, "a list of %s, each %s", kind->what,
             config_device_entry_expected(kind, entry, sizeof(entry)));
    return buf;
}

/* Entry i of a device list into device (which the caller has initialised): true when it has
 * its first key (path, tap), whose place goes to *first_mark. Every problem is reported. */
static bool device_entry(struct yaml_walk *w, const yaml_node_t *list, const char *path, unsigned i,
                         const struct config_device_keys *kind, void *device,
                         yaml_mark_t *first_mark)
{
    char prefix[PATH_SIZE], expected[256];
    const yaml_node_t *entry = node(w, list->data.sequence.items.start[i]);
    snprintf(prefix, sizeof(prefix), "%s[%u]", path, i);
    if (!entry)
        return false;
    if (entry->type != YAML_MAPPING_NODE) {
        wrong_type(w, entry, prefix,
                   config_device_entry_expected(kind, expected, sizeof(expected)));
        return false;
    }
    const char *names[CONFIG_DEVICE_MAX_KEYS];
    size_t n = kind->count < CONFIG_DEVICE_MAX_KEYS ? kind->count : CONFIG_DEVICE_MAX_KEYS;
    for (size_t k = 0; k < n; k++)
        names[k] = kind->keys[k].key;
    struct device_item item = {.kind = kind, .device = device};
    walk_pairs(w, entry, prefix, names, n, device_pair, &item);
    if (!item.first_set && !item.first_bad) /* a bad value was reported already */
        yaml_problem(w->origin, w->problems, entry->start_mark, -EINVAL,
                     "%s.%s: missing (expected %s)", prefix, kind->keys[0].key,
                     kind->keys[0].expected);
    *first_mark = item.first_mark;
    return item.first_set;
}

/* The checks both device lists start with: a list of mappings, and the list's key noted when
 * the list takes effect. False if there are no entries to walk. */
static bool start_device_list(struct yaml_walk *w, const struct vm_config *cfg,
                              const yaml_node_t *value, const char *path,
                              const struct config_device_keys *kind)
{
    char expected[320];
    if (!device_list(w, value, path, list_expected(kind, expected, sizeof(expected)), kind->what))
        return false;
    if (cfg == w->cfg) /* in effect */
        device_key(w, value, kind->list_key);
    return true;
}

static void load_disks(struct yaml_walk *w, const yaml_node_t *value, const char *path)
{
    struct vm_config *cfg = config_for(w, CONFIG_FIELD_DISK);
    const struct config_device_keys *kind = &config_disk_keys;
    for (unsigned i = 0; i < cfg->ndisks; i++)
        config_free_disk(&cfg->disks[i]);
    cfg->ndisks = 0;
    memset(w->origin->disk, 0, sizeof(w->origin->disk));
    if (!start_device_list(w, cfg, value, path, kind))
        return;
    for (unsigned i = 0; i < device_count(value); i++) {
        struct disk_config disk;
        config_init_disk(&disk);
        yaml_mark_t mark = {0};
        unsigned slot = cfg->ndisks;
        struct error err;
        int r = -EINVAL;
        if (device_entry(w, value, path, i, kind, &disk, &mark) &&
            (r = config_add_disk(cfg, &disk, &err)) < 0)
            add_error(w, r, &err);
        if (r < 0)
            config_free_disk(&disk);
        else
            set_mark(&w->origin->disk[slot], mark);
    }
}

static void load_nets(struct yaml_walk *w, const yaml_node_t *value, const char *path)
{
    struct vm_config *cfg = config_for(w, CONFIG_FIELD_NET);
    const struct config_device_keys *kind = &config_net_keys;
    for (unsigned i = 0; i < cfg->nnets; i++)
        config_free_net(&cfg->nets[i]);
    cfg->nnets = 0;
    memset(w->origin->net, 0, sizeof(w->origin->net));
    if (!start_device_list(w, cfg, value, path, kind))
        return;
    for (unsigned i = 0; i < device_count(value); i++) {
        struct net_config net = {.tap = NULL};
        yaml_mark_t mark = {0};
        unsigned slot = cfg->nnets;
        struct error err;
        int r = -EINVAL;
        if (device_entry(w, value, path, i, kind, &net, &mark) &&
            (r = config_add_net(cfg, &net, &err)) < 0)
            add_error(w, r, &err);
        if (r < 0)
            config_free_net(&net);
        else
            set_mark(&w->origin->net[slot], mark);
    }
}

static void load_kernel(struct yaml_walk *w, const yaml_node_t *value, const char *path)
{
    struct mapping_keys keys;
    keys_at(CONFIG_PLACE_KERNEL, &keys);
    /* Where "kernel.path: missing" points when the mapping has no path. */
    set_mark(&w->origin->field[CONFIG_FIELD_KERNEL], value->start_mark);
    if (value->type != YAML_MAPPING_NODE) {
        char names[128], expected[160];
        snprintf(expected, sizeof(expected), "a mapping with %s",
                 config_join_words(keys.names, keys.n, " and ", names, sizeof(names)));
        wrong_type(w, value, path, expected);
        w->origin->field[CONFIG_FIELD_KERNEL].bad = true;
        return;
    }
    walk_pairs(w, value, path, keys.names, keys.n, kernel_pair, &keys);
}

static void top_pair(struct yaml_walk *w, void *target, size_t key, yaml_node_t *value,
                     const char *path)
{
    const struct config_setting *spec = ((const struct mapping_keys *)target)->settings[key];
    if (!spec) {
        load_kernel(w, value, path);
    } else if (spec->field == CONFIG_FIELD_DISK) {
        load_disks(w, value, path);
    } else if (spec->field == CONFIG_FIELD_NET) {
        load_nets(w, value, path);
    } else {
        setting(w, spec, value, path);
        /* The virtio devices' count names the last key in effect that added one. */
        const struct vm_config *cfg = config_for(w, spec->field);
        bool device =
            (spec->field == CONFIG_FIELD_CONSOLE && cfg->console_device == CONSOLE_ON_VIRTIO) ||
            (spec->field == CONFIG_FIELD_VCONSOLE && cfg->vconsole) ||
            (spec->field == CONFIG_FIELD_RNG && cfg->rng) ||
            (spec->field == CONFIG_FIELD_BALLOON && cfg->balloon.enabled);
        if (device && cfg == w->cfg)
            device_key(w, value, spec->key);
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
    struct mapping_keys keys;
    keys_at(CONFIG_PLACE_TOP, &keys);
    walk_pairs(w, root, prefix, keys.names, keys.n, top_pair, &keys);
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
