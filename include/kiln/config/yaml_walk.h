/* Shared between the YAML loader's parts: the state of one walk over a parsed document and the
 * message helpers, so every problem starts with "FILE:LINE:COLUMN:". Not a public interface. */
#ifndef KILN_CONFIG_YAML_WALK_H
#define KILN_CONFIG_YAML_WALK_H

#include <stdarg.h>
#include <stdbool.h>
#include <yaml.h>

#include "kiln/config/config_yaml.h"

struct yaml_walk {
    yaml_document_t *doc;
    const char *dir; /* relative paths are resolved against it; NULL: used as written */
    struct vm_config *cfg;
    const bool *keep;          /* fields cfg keeps (NULL: none): their values go to scratch */
    struct vm_config *scratch; /* checks those values and is thrown away */
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

/* Walks root (a node of w->doc) as a VM definition; prefix goes before its keys in messages
 * ("cases[0].vm": "cases[0].vm.cpus"), "" for a whole file. */
void yaml_walk_vm(struct yaml_walk *w, yaml_node_t *root, const char *prefix);

/* The folder of the file at path ("." parts kept; "/" for a file at the root), which relative
 * paths inside it start from; *dir NULL (no folder part) or heap-allocated. 0 or -ENOMEM. */
int yaml_file_dir(const char *path, char **dir);

/* Reads the file at path (at most CONFIG_YAML_MAX_BYTES) into *data (free it); problems
 * name origin->file. */
int yaml_read_file(const struct config_yaml_origin *origin, struct config_problems *problems,
                   const char *path, char **data, size_t *size);

/* Checks data (size, UTF-8, one document, nesting, at most max_nodes nodes with aliases
 * expanded; what names the kind of file: "VM definition") and loads it into doc (free with
 * yaml_document_delete). Returns 0, or a negative errno with the problem reported. */
int yaml_load_checked(const struct config_yaml_origin *origin, struct config_problems *problems,
                      const char *data, size_t size, unsigned long max_nodes, const char *what,
                      yaml_document_t *doc);

/* The schema walk's helpers, shared with the other kinds of YAML file kiln reads. */
typedef void (*yaml_pair_handler)(struct yaml_walk *w, void *target, size_t key, yaml_node_t *value,
                                  const char *path);
/* Each pair of map whose key is one of names goes to handle (key: its index); duplicate and
 * unknown keys are reported ("did you mean"). prefix: the path of map ("" at the top). */
void yaml_walk_pairs(struct yaml_walk *w, const yaml_node_t *map, const char *prefix,
                     const char *const *names, size_t n, yaml_pair_handler handle, void *target);
/* An empty, ~ or null plain scalar. */
bool yaml_is_null(const yaml_node_t *n);
/* "PATH: no value (expected ...)" or "PATH: 'x' is not valid here (expected ...)". */
void yaml_wrong_type(struct yaml_walk *w, const yaml_node_t *n, const char *path,
                     const char *expected);
/* A scalar's text after ${VAR} expansion (free it), or NULL with the problem reported. */
char *yaml_scalar_text(struct yaml_walk *w, const yaml_node_t *n, const char *path,
                       const char *expected);

#endif
