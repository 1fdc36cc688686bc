/* `kiln config`: struct vm_config written as a YAML VM definition (libyaml's emitter does the
 * quoting), every key of the settings table in its order, each value from the setting's getter,
 * so that loading the text back gives the same config. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "kiln/config/config_settings.h"
#include "kiln/config/config_yaml.h"

struct emit {
    yaml_emitter_t emitter;
    struct error *err;
    int r;
};

static void emit_event(struct emit *e, yaml_event_t *event, const char *what)
{
    if (e->r < 0) {
        yaml_event_delete(event);
        return;
    }
    if (!yaml_emitter_emit(&e->emitter, event))
        e->r = error_fmt(e->err, -EIO, "writing %s as YAML: %s", what,
                         e->emitter.problem ? e->emitter.problem : "emitter error");
}

/* Free-form text is double-quoted (so "true", "1" or "" stay strings) with '$' doubled, since
 * the loader expands ${VAR} and reads "$$" as '$'. Keywords and numbers are plain. */
static void scalar(struct emit *e, const char *key, const char *text, bool free_form)
{
    if (e->r < 0)
        return;
    char *escaped = NULL;
    if (free_form) {
        size_t dollars = 0, len = strlen(text);
        for (const char *p = text; *p; p++)
            dollars += *p == '$';
        escaped = malloc(len + dollars + 1);
        if (!escaped) {
            e->r = error_fmt(e->err, -ENOMEM, "out of memory");
            return;
        }
        char *out = escaped;
        for (const char *p = text; *p; p++) {
            *out++ = *p;
            if (*p == '$')
                *out++ = '$';
        }
        *out = '\0';
        text = escaped;
    }
    yaml_event_t event;
    if (!yaml_scalar_event_initialize(
            &event, NULL, NULL, (yaml_char_t *)text, (int)strlen(text), 1, 1,
            free_form ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_PLAIN_SCALAR_STYLE)) {
        char quoted[CONFIG_QUOTE_SIZE];
        e->r =
            error_fmt(e->err, -EILSEQ, "%s: '%s' is not UTF-8 (expected text a YAML file can hold)",
                      key, config_quote(text, quoted, sizeof(quoted)));
    } else {
        emit_event(e, &event, key);
    }
    free(escaped);
}

/* key is the path messages name ("kernel.cmdline"); the file gets its last part. */
static void pair(struct emit *e, const char *key, const char *value, bool free_form)
{
    const char *dot = strrchr(key, '.');
    scalar(e, key, dot ? dot + 1 : key, false);
    scalar(e, key, value, free_form);
}

static void path_pair(struct emit *e, const char *key, const char *path)
{
    char *absolute = config_absolute_path(path);
    if (!absolute) {
        e->r = e->r < 0 ? e->r : error_fmt(e->err, -ENOMEM, "out of memory");
        return;
    }
    pair(e, key, absolute, true);
    free(absolute);
}

static void start(struct emit *e, const char *what, bool mapping, bool flow)
{
    yaml_event_t event;
    if (mapping)
        yaml_mapping_start_event_initialize(
            &event, NULL, NULL, 1, flow ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE);
    else
        yaml_sequence_start_event_initialize(
            &event, NULL, NULL, 1, flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE);
    emit_event(e, &event, what);
}

static void end(struct emit *e, const char *what, bool mapping)
{
    yaml_event_t event;
    if (mapping)
        yaml_mapping_end_event_initialize(&event);
    else
        yaml_sequence_end_event_initialize(&event);
    emit_event(e, &event, what);
}

/* One value from a getter: paths made absolute, so the output loads back from any folder;
 * free-form text quoted. Nothing for a value that is unset. */
static void value_pair(struct emit *e, const char *key, unsigned options, int got, char *text)
{
    if (got < 0) {
        if (e->r == 0)
            e->r = error_fmt(e->err, -ENOMEM, "out of memory");
    } else if (text && config_setting_is_path(options, text)) {
        path_pair(e, key, text);
    } else if (text && (options & CONFIG_SETTING_SINK) && config_sink_path_offset(text)) {
        size_t offset = config_sink_path_offset(text);
        char *absolute = config_absolute_path(text + offset), *value = NULL;
        if (!absolute || asprintf(&value, "%.*s%s", (int)offset, text, absolute) < 0) {
            value = NULL;
            e->r = e->r < 0 ? e->r : error_fmt(e->err, -ENOMEM, "out of memory");
        } else
            pair(e, key, value, true);
        free(absolute);
        free(value);
    } else if (text) {
        pair(e, key, text, options & CONFIG_SETTING_TEXT);
    }
    free(text);
}

/* disks: or nets:, each entry with its keys in the order of kind (a flow [] when empty). */
static void emit_devices(struct emit *e, const struct config_device_keys *kind, const void *devices,
                         size_t size, unsigned count)
{
    scalar(e, kind->list_key, kind->list_key, false);
    start(e, kind->list_key, false, count == 0);
    for (unsigned i = 0; i < count; i++) {
        const void *device = (const char *)devices + i * size;
        start(e, kind->list_key, true, false);
        for (size_t k = 0; k < kind->count; k++) {
            const struct config_device_key *key = &kind->keys[k];
            char path[64], *text = NULL;
            snprintf(path, sizeof(path), "%s.%s", kind->list_key, key->key);
            int got = key->get(device, &text);
            value_pair(e, path, key->options, got, text);
        }
        end(e, kind->list_key, true);
    }
    end(e, kind->list_key, false);
}

/* Every setting in the table's order; the kernel settings inside their mapping. */
static void emit_settings(struct emit *e, const struct vm_config *cfg)
{
    start(e, "the settings", true, false);
    for (size_t i = 0; i < CONFIG_SETTING_COUNT && e->r == 0; i++) {
        const struct config_setting *setting = &config_settings[i];
        bool in_kernel = setting->place == CONFIG_PLACE_KERNEL;
        bool was_in_kernel = i > 0 && config_settings[i - 1].place == CONFIG_PLACE_KERNEL;
        if (was_in_kernel && !in_kernel)
            end(e, CONFIG_KERNEL_KEY, true);
        if (in_kernel && !was_in_kernel) {
            scalar(e, CONFIG_KERNEL_KEY, CONFIG_KERNEL_KEY, false);
            start(e, CONFIG_KERNEL_KEY, true, false);
        }
        if (setting->field == CONFIG_FIELD_DISK) {
            emit_devices(e, &config_disk_keys, cfg->disks, sizeof(*cfg->disks), cfg->ndisks);
        } else if (setting->field == CONFIG_FIELD_NET) {
            emit_devices(e, &config_net_keys, cfg->nets, sizeof(*cfg->nets), cfg->nnets);
        } else {
            char path[64], *text = NULL;
            int got = setting->get(cfg, &text);
            value_pair(e, config_setting_key_path(setting, path, sizeof(path)), setting->options,
                       got, text);
        }
    }
    if (config_settings[CONFIG_SETTING_COUNT - 1].place == CONFIG_PLACE_KERNEL)
        end(e, CONFIG_KERNEL_KEY, true);
    end(e, "the settings", true);
}

int config_yaml_emit(const struct vm_config *cfg, FILE *out, struct error *err)
{
    struct emit e = {.err = err};
    if (!yaml_emitter_initialize(&e.emitter))
        return error_fmt(err, -ENOMEM, "out of memory");
    yaml_emitter_set_output_file(&e.emitter, out);
    yaml_emitter_set_unicode(&e.emitter, 1);
    yaml_emitter_set_width(&e.emitter, -1); /* one line per value: no folding */
    yaml_emitter_set_indent(&e.emitter, 2);
    yaml_event_t event;
    yaml_stream_start_event_initialize(&event, YAML_UTF8_ENCODING);
    emit_event(&e, &event, "the stream");
    yaml_document_start_event_initialize(&event, NULL, NULL, NULL, 1);
    emit_event(&e, &event, "the document");
    emit_settings(&e, cfg);
    yaml_document_end_event_initialize(&event, 1);
    emit_event(&e, &event, "the document");
    yaml_stream_end_event_initialize(&event);
    emit_event(&e, &event, "the stream");
    if (e.r == 0 && !yaml_emitter_flush(&e.emitter))
        e.r = error_fmt(err, -EIO, "writing the YAML: %s",
                        e.emitter.problem ? e.emitter.problem : "emitter error");
    yaml_emitter_delete(&e.emitter);
    return e.r;
}
