/* Shared between the YAML loader's parts: the state of one walk over a parsed document and the
 * message helpers, so every problem starts with "FILE:LINE:COLUMN:". Not a public interface. */
#ifndef KILN_CONFIG_YAML_INTERNAL_H
#define KILN_CONFIG_YAML_INTERNAL_H

#include <stdarg.h>
#include <yaml.h>

#include "kiln/config_yaml.h"

struct yaml_walk {
    yaml_document_t *doc;
    const char *dir; /* relative paths are resolved against it; NULL: used as written */
    struct vm_config *cfg;
    struct config_yaml_origin *origin;
    struct config_problems *problems;
};

/* Adds "FILE:LINE:COLUMN: " + the formatted text as a problem (code: its negative errno). */
void yaml_problem(const struct config_yaml_origin *origin, struct config_problems *problems,
                  yaml_mark_t mark, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* "FILE:LINE:COLUMN: PATH" into buf: the label the setters put before their messages. */
void yaml_label(const struct config_yaml_origin *origin, yaml_mark_t mark, const char *path,
                char *buf, size_t size);

/* Walks the document's root mapping, filling w->cfg and w->origin. */
void yaml_walk_document(struct yaml_walk *w);

#endif
