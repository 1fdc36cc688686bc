/* `kiln config`: struct vm_config written as a YAML VM definition (libyaml's emitter does the
 * quoting), every key present, in the order docs/vm-yaml.md lists them, so that loading the
 * text back gives the same config. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "kiln/config_yaml.h"

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

static void emit_kernel(struct emit *e, const struct vm_config *cfg)
{
    scalar(e, "kernel", "kernel", false);
    start(e, "kernel", true, false);
    if (cfg->kernel_path)
        path_pair(e, "kernel.path", cfg->kernel_path);
    if (cfg->initrd_path)
        path_pair(e, "kernel.initrd", cfg->initrd_path);
    pair(e, "kernel.cmdline", cfg->cmdline ? cfg->cmdline : "", true);
    end(e, "kernel", true);
}

/* A console sink with its path made absolute, so the output loads back from any folder. */
static void emit_sink(struct emit *e, const char *key, const char *device, enum console_kind kind,
                      const char *path, const char *text)
{
    if ((kind != CONSOLE_FILE && kind != CONSOLE_SOCKET) || !path || !*path) {
        pair(e, key, text, false);
        return;
    }
    char *absolute = config_absolute_path(path), *value = NULL;
    if (!absolute || asprintf(&value, "%s%s%s", device,
                              kind == CONSOLE_FILE ? "file:" : "socket:", absolute) < 0) {
        free(absolute);
        e->r = e->r < 0 ? e->r : error_fmt(e->err, -ENOMEM, "out of memory");
        return;
    }
    pair(e, key, value, true);
    free(value);
    free(absolute);
}

static void emit_console(struct emit *e, const struct vm_config *cfg)
{
    char text[32];
    emit_sink(e, "console", cfg->console_device == CONSOLE_ON_VIRTIO ? "virtio:" : "", cfg->console,
              cfg->console_path, config_console_text(cfg, text, sizeof(text)));
    if (cfg->vconsole)
        emit_sink(e, "vconsole", "", cfg->vconsole_kind, cfg->vconsole_path,
                  config_vconsole_text(cfg, text, sizeof(text)));
}

static void emit_disks(struct emit *e, const struct vm_config *cfg)
{
    char number[16];
    scalar(e, "disks", "disks", false);
    start(e, "disks", false, cfg->ndisks == 0);
    for (unsigned i = 0; i < cfg->ndisks; i++) {
        const struct disk_config *d = &cfg->disks[i];
        start(e, "disks", true, false);
        path_pair(e, "disks.path", d->path);
        pair(e, "disks.readonly", d->readonly ? "true" : "false", false);
        if (d->serial)
            pair(e, "disks.serial", d->serial, true);
        pair(e, "disks.cache", config_disk_cache_name(d->cache), false);
        snprintf(number, sizeof(number), "%u", d->queue_size);
        pair(e, "disks.queue-size", number, false);
        end(e, "disks", true);
    }
    end(e, "disks", false);
}

static void emit_nets(struct emit *e, const struct vm_config *cfg)
{
    scalar(e, "nets", "nets", false);
    start(e, "nets", false, cfg->nnets == 0);
    for (unsigned i = 0; i < cfg->nnets; i++) {
        const struct net_config *n = &cfg->nets[i];
        start(e, "nets", true, false);
        pair(e, "nets.tap", n->tap ? n->tap : "", true);
        if (n->mac_given) {
            char mac[18];
            snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1],
                     n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
            pair(e, "nets.mac", mac, true);
        }
        end(e, "nets", true);
    }
    end(e, "nets", false);
}

static void emit_settings(struct emit *e, const struct vm_config *cfg)
{
    char text[32];
    start(e, "the settings", true, false);
    if (cfg->name)
        pair(e, "name", cfg->name, true);
    snprintf(text, sizeof(text), "%u", cfg->cpus);
    pair(e, "cpus", text, false);
    pair(e, "memory", config_size_text(cfg->memory_bytes, text, sizeof(text)), false);
    emit_kernel(e, cfg);
    emit_console(e, cfg);
    pair(e, "log-level", log_level_name(cfg->log_level), false);
    emit_disks(e, cfg);
    emit_nets(e, cfg);
    pair(e, "rng", cfg->rng ? "true" : "false", false);
    pair(e, "device-discovery", config_device_discovery_name(cfg->device_discovery), false);
    pair(e, "on-reset", config_on_reset_name(cfg->on_reset), false);
    snprintf(text, sizeof(text), "%u", cfg->shutdown_grace_seconds);
    pair(e, "shutdown-grace", text, false);
    pair(e, "host-compat", config_host_compat_name(cfg->host_compat), false);
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
