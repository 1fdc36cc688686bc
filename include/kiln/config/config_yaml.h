/* YAML VM definitions: loading a file into struct vm_config through the same setters as the
 * flags (remembering where each value was, for messages), and writing a config back as YAML. */
#ifndef KILN_CONFIG_YAML_H
#define KILN_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "kiln/config/config.h"
#include "kiln/util/error.h"

#define CONFIG_YAML_MAX_BYTES (1024 * 1024) /* a VM definition is a page or two */
#define CONFIG_YAML_MAX_NODES 1000          /* after expanding aliases: billion-laughs stops here */
#define CONFIG_YAML_MAX_DEPTH 32
#define CONFIG_YAML_MAX_VALUE (256 * 1024) /* bytes of one value after ${VAR} expansion */

/* Where in the file a setting was (1-based); line 0: the file did not set it. */
struct config_yaml_mark {
    unsigned line, column;
    bool bad; /* its value had a problem, already reported */
};

struct config_yaml_origin {
    char *file; /* as the user named it: the start of every message */
    struct config_yaml_mark field[CONFIG_FIELD_COUNT];
    struct config_yaml_mark disk[CONFIG_MAX_VIRTIO_DEVICES]; /* disks[i].path */
    struct config_yaml_mark net[CONFIG_MAX_VIRTIO_DEVICES];  /* nets[i].tap */
    const char *devices_key; /* the key at field[CONFIG_FIELD_DEVICES]: "disks", "rng", ... */
};

/* Loads the VM definition at path into cfg (which the caller has config_init'ed: keys the file
 * does not set keep cfg's values). Paths in the file are relative to its folder. Every problem
 * goes to problems, each "FILE:LINE:COLUMN: KEY: what is wrong (expected ...)". Returns 0 when
 * the file was read and parsed (its content may still have had problems: see problems), or a
 * negative errno when it could not be read or is not YAML (one problem says why). origin
 * (free with config_yaml_origin_free) tells config_yaml_label where each value was. */
int config_yaml_load(const char *path, struct vm_config *cfg, struct config_yaml_origin *origin,
                     struct config_problems *problems);

/* The same under values cfg already has: for each field with keep[field] (the flags given
 * with the file), the file's value is checked and its problems reported, but cfg keeps its
 * own. keep NULL: config_yaml_load. */
int config_yaml_load_under(const char *path, struct vm_config *cfg, const bool *keep,
                           struct config_yaml_origin *origin, struct config_problems *problems);

/* The same from memory: name starts messages, dir is the folder relative paths are resolved
 * against (NULL: used as written). */
int config_yaml_load_buffer(const char *name, const char *dir, const char *data, size_t size,
                            struct vm_config *cfg, struct config_yaml_origin *origin,
                            struct config_problems *problems);

void config_yaml_origin_free(struct config_yaml_origin *origin);

/* For a config_namer: writes "vm.yaml:3:9: kernel.path" for field (index: which disk or net)
 * and returns 1 if the file set it; returns 0 if the file did not (name it by its flag), and
 * -1 if its problem was already reported. */
int config_yaml_label(const struct config_yaml_origin *origin, enum config_field field,
                      unsigned index, char *buf, size_t size);
/* A config_namer's name() for a file's settings under flags (ctx: its struct
 * config_yaml_origin): config_yaml_label, or the flag (config_field_flag) for a setting the file
 * did not set. */
bool config_yaml_name(const void *origin, enum config_field field, unsigned index, char *buf,
                      size_t size);

/* Writes cfg as a YAML VM definition with every key (defaults included), which loads back to
 * the same config: paths are made absolute (from the current folder; symbolic links and .. are
 * resolved where the path exists) and '$' is written as '$$'. Returns 0, or a negative errno
 * with err filled (a value that is not UTF-8 cannot be written as YAML). */
int config_yaml_emit(const struct vm_config *cfg, FILE *out, struct error *err);

/* ${NAME} and ${NAME:-DEFAULT} expansion from the environment; "$$" is a literal '$'. On
 * success *out is a new string. Errors are "LABEL: ..." in err: an unset variable, a '${'
 * without '}', a bad name, a result over CONFIG_YAML_MAX_VALUE bytes. */
int config_yaml_expand(const char *label, const char *text, char **out, struct error *err);

/* path as seen from dir: path itself if absolute or dir is NULL, else "DIR/PATH". */
char *config_yaml_join(const char *dir, const char *path);

/* An absolute form of path: realpath() where the file exists, else its folder's realpath plus
 * the last component, else path joined to the current folder. NULL when out of memory. */
char *config_absolute_path(const char *path);

#endif
