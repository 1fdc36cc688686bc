/* Reading a YAML VM definition: the file (size limit), its bytes (UTF-8 only), a first pass over
 * libyaml's events that bounds aliases, nesting and documents, then libyaml's document loader
 * and the schema walk. Also where-a-value-came-from labels for the validation pass. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/config/yaml_walk.h"
#include "kiln/config/config_settings.h"
#include "kiln/util/utf8.h"

static const char *origin_file(const struct config_yaml_origin *origin)
{
    return origin->file ? origin->file : "?";
}

void yaml_label(const struct config_yaml_origin *origin, yaml_mark_t mark, const char *path,
                char *buf, size_t size)
{
    char quoted[CONFIG_QUOTE_SIZE];
    snprintf(buf, size, "%s:%zu:%zu: %s", config_quote(origin_file(origin), quoted, sizeof(quoted)),
             mark.line + 1, mark.column + 1, path);
}

void yaml_problem(const struct config_yaml_origin *origin, struct config_problems *problems,
                  yaml_mark_t mark, int code, const char *fmt, ...)
{
    char quoted[CONFIG_QUOTE_SIZE], text[sizeof(((struct error *)0)->msg)];
    int n = snprintf(text, sizeof(text),
                     "%s:%zu:%zu: ", config_quote(origin_file(origin), quoted, sizeof(quoted)),
                     mark.line + 1, mark.column + 1);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + n, sizeof(text) - (size_t)n, fmt, ap);
    va_end(ap);
    config_problems_add(problems, code, text);
}

static void file_problem(const struct config_yaml_origin *origin, struct config_problems *problems,
                         int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void file_problem(const struct config_yaml_origin *origin, struct config_problems *problems,
                         int code, const char *fmt, ...)
{
    char quoted[CONFIG_QUOTE_SIZE], text[sizeof(((struct error *)0)->msg)];
    int n = snprintf(text, sizeof(text),
                     "%s: ", config_quote(origin_file(origin), quoted, sizeof(quoted)));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + n, sizeof(text) - (size_t)n, fmt, ap);
    va_end(ap);
    config_problems_add(problems, code, text);
}

/* The line and column (1-based, in characters) of byte offset in data, as marks are. */
static yaml_mark_t mark_at(const char *data, size_t offset)
{
    yaml_mark_t mark = {0};
    for (size_t i = 0; i < offset; i++) {
        if (data[i] == '\n') {
            mark.line++;
            mark.column = 0;
        } else if (((unsigned char)data[i] & 0xc0) != 0x80) {
            mark.column++;
        }
    }
    mark.index = offset;
    return mark;
}

static int check_utf8(const struct config_yaml_origin *origin, struct config_problems *problems,
                      const char *data, size_t size)
{
    const unsigned char *p = (const unsigned char *)data;
    for (size_t i = 0; i < size;) {
        size_t len = utf8_sequence_length(p + i, size - i);
        if (len == 0) {
            yaml_problem(origin, problems, mark_at(data, i), -EILSEQ,
                         "byte 0x%02x is not UTF-8 (expected a UTF-8 text file)", p[i]);
            return -EILSEQ;
        }
        i += len;
    }
    return 0;
}

static int syntax_problem(const struct config_yaml_origin *origin, struct config_problems *problems,
                          const yaml_parser_t *parser, const char *data)
{
    if (parser->error == YAML_MEMORY_ERROR) {
        file_problem(origin, problems, -ENOMEM, "out of memory while parsing");
        return -ENOMEM;
    }
    yaml_mark_t mark = parser->problem_mark;
    if (parser->error == YAML_READER_ERROR)
        mark = mark_at(data, parser->problem_offset);
    const char *problem = parser->problem ? parser->problem : "not valid YAML";
    if (parser->context)
        yaml_problem(origin, problems, mark, -EINVAL, "YAML syntax error: %s (%s at %zu:%zu)",
                     problem, parser->context, parser->context_mark.line + 1,
                     parser->context_mark.column + 1);
    else
        yaml_problem(origin, problems, mark, -EINVAL, "YAML syntax error: %s", problem);
    return -EINVAL;
}

/* The first pass: counts nodes as if every alias were expanded (each anchor remembers the size
 * of its node), so a billion-laughs file is refused before anything walks it. */
struct anchor {
    char *name;
    unsigned long size;
};

struct bounds {
    const struct config_yaml_origin *origin;
    unsigned long max_nodes;
    const char *what; /* "VM definition": the kind of file, for messages */
    struct config_problems *problems;
    struct anchor *anchors;
    size_t nanchors;
    unsigned long frames[CONFIG_YAML_MAX_DEPTH]; /* nodes so far in each open collection */
    char *frame_anchor[CONFIG_YAML_MAX_DEPTH];
    unsigned depth;
    unsigned long expanded; /* nodes in the document with aliases expanded */
    unsigned documents;
};

static int remember_anchor(struct bounds *b, const yaml_char_t *name, unsigned long size)
{
    if (!name)
        return 0;
    struct anchor *anchors = realloc(b->anchors, (b->nanchors + 1) * sizeof(*anchors));
    if (!anchors)
        return -ENOMEM;
    b->anchors = anchors;
    b->anchors[b->nanchors].name = strdup((const char *)name);
    b->anchors[b->nanchors].size = size;
    return b->anchors[b->nanchors++].name ? 0 : -ENOMEM;
}

static const struct anchor *find_anchor(const struct bounds *b, const yaml_char_t *name)
{
    for (size_t i = b->nanchors; i-- > 0;) /* a redefined anchor: the latest counts */
        if (strcmp(b->anchors[i].name, (const char *)name) == 0)
            return &b->anchors[i];
    return NULL;
}

/* Counts size more nodes at mark; alias names the alias that brought them, if one did. */
static int add_nodes(struct bounds *b, unsigned long size, yaml_mark_t mark, const char *alias)
{
    if (b->depth)
        b->frames[b->depth - 1] += size;
    b->expanded += size;
    if (b->expanded <= b->max_nodes)
        return 0;
    char quoted[CONFIG_QUOTE_SIZE];
    if (alias)
        yaml_problem(b->origin, b->problems, mark, -E2BIG,
                     "alias '*%s' expands the file past %lu nodes (expected at most %lu nodes "
                     "with aliases expanded)",
                     config_quote(alias, quoted, sizeof(quoted)), b->max_nodes, b->max_nodes);
    else
        yaml_problem(b->origin, b->problems, mark, -E2BIG,
                     "more than %lu YAML nodes (expected a shorter %s)", b->max_nodes, b->what);
    return -E2BIG;
}

static int bound_event(struct bounds *b, const yaml_event_t *e)
{
    char quoted[CONFIG_QUOTE_SIZE];
    switch (e->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++b->documents > 1) {
            yaml_problem(b->origin, b->problems, e->start_mark, -EINVAL,
                         "a second YAML document (expected one %s per file)", b->what);
            return -EINVAL;
        }
        return 0;
    case YAML_SCALAR_EVENT: {
        int r = add_nodes(b, 1, e->start_mark, NULL);
        return r < 0 ? r : remember_anchor(b, e->data.scalar.anchor, 1);
    }
    case YAML_ALIAS_EVENT: {
        const struct anchor *a = find_anchor(b, e->data.alias.anchor);
        if (!a) {
            const char *name = (const char *)e->data.alias.anchor;
            config_quote(name, quoted, sizeof(quoted));
            yaml_problem(b->origin, b->problems, e->start_mark, -EINVAL,
                         "alias '*%s' has no anchor before it (expected '&%s' on an earlier "
                         "node that does not contain the alias)",
                         quoted, quoted);
            return -EINVAL;
        }
        return add_nodes(b, a->size, e->start_mark, (const char *)e->data.alias.anchor);
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        if (b->depth == CONFIG_YAML_MAX_DEPTH) {
            yaml_problem(b->origin, b->problems, e->start_mark, -EINVAL,
                         "nested more than %d levels deep (expected a flatter VM definition)",
                         CONFIG_YAML_MAX_DEPTH);
            return -EINVAL;
        }
        int r = add_nodes(b, 1, e->start_mark, NULL);
        if (r < 0)
            return r;
        const yaml_char_t *anchor = e->type == YAML_SEQUENCE_START_EVENT
                                        ? e->data.sequence_start.anchor
                                        : e->data.mapping_start.anchor;
        b->frames[b->depth] = 1;
        b->frame_anchor[b->depth] = anchor ? strdup((const char *)anchor) : NULL;
        if (anchor && !b->frame_anchor[b->depth])
            return -ENOMEM;
        b->depth++;
        return 0;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
        if (b->depth == 0)
            return 0;
        b->depth--;
        unsigned long size = b->frames[b->depth];
        char *anchor = b->frame_anchor[b->depth];
        b->frame_anchor[b->depth] = NULL;
        if (b->depth)
            b->frames[b->depth - 1] += size;
        int r = remember_anchor(b, (const yaml_char_t *)anchor, size);
        free(anchor);
        return r;
    }
    default:
        return 0;
    }
}

static void bounds_free(struct bounds *b)
{
    for (size_t i = 0; i < b->nanchors; i++)
        free(b->anchors[i].name);
    free(b->anchors);
    for (unsigned i = 0; i < CONFIG_YAML_MAX_DEPTH; i++)
        free(b->frame_anchor[i]);
}

static int check_bounds(const struct config_yaml_origin *origin, struct config_problems *problems,
                        const char *data, size_t size, unsigned long max_nodes, const char *what)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, size);
    struct bounds b = {
        .origin = origin, .problems = problems, .max_nodes = max_nodes, .what = what};
    int r = 0;
    for (bool done = false; r == 0 && !done;) {
        yaml_event_t event;
        if (!yaml_parser_parse(&parser, &event)) {
            r = syntax_problem(origin, problems, &parser, data);
            break;
        }
        done = event.type == YAML_STREAM_END_EVENT;
        r = bound_event(&b, &event);
        yaml_event_delete(&event);
    }
    if (r == -ENOMEM)
        file_problem(origin, problems, r, "out of memory while parsing");
    bounds_free(&b);
    yaml_parser_delete(&parser);
    return r;
}

int yaml_load_checked(const struct config_yaml_origin *origin, struct config_problems *problems,
                      const char *data, size_t size, unsigned long max_nodes, const char *what,
                      yaml_document_t *doc)
{
    if (size > CONFIG_YAML_MAX_BYTES) {
        file_problem(origin, problems, -EFBIG, "%zu bytes is too big (expected at most %d)", size,
                     CONFIG_YAML_MAX_BYTES);
        return -EFBIG;
    }
    int r = check_utf8(origin, problems, data, size);
    if (r == 0)
        r = check_bounds(origin, problems, data, size, max_nodes, what);
    if (r < 0)
        return r;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, size);
    if (!yaml_parser_load(&parser, doc))
        r = syntax_problem(origin, problems, &parser, data);
    yaml_parser_delete(&parser);
    return r;
}

static int load_buffer(const char *name, const char *dir, const char *data, size_t size,
                       struct vm_config *cfg, const bool *keep, struct config_yaml_origin *origin,
                       struct config_problems *problems)
{
    if (!origin->file && !(origin->file = strdup(name)))
        return -ENOMEM;
    yaml_document_t doc;
    int r = yaml_load_checked(origin, problems, data, size, CONFIG_YAML_MAX_NODES, "VM definition",
                              &doc);
    if (r == 0) {
        struct vm_config scratch;
        config_init(&scratch);
        struct yaml_walk w = {.doc = &doc,
                              .dir = dir,
                              .cfg = cfg,
                              .keep = keep,
                              .scratch = &scratch,
                              .origin = origin,
                              .problems = problems};
        yaml_walk_document(&w);
        config_free(&scratch);
        yaml_document_delete(&doc);
    }
    return r;
}

int config_yaml_load_buffer(const char *name, const char *dir, const char *data, size_t size,
                            struct vm_config *cfg, struct config_yaml_origin *origin,
                            struct config_problems *problems)
{
    return load_buffer(name, dir, data, size, cfg, NULL, origin, problems);
}

/* Reads at most CONFIG_YAML_MAX_BYTES + 1 bytes: enough to tell a file is too big. */
int yaml_read_file(const struct config_yaml_origin *origin, struct config_problems *problems,
                   const char *path, char **data, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        file_problem(origin, problems, -e, "%s (expected a YAML VM definition file)", strerror(e));
        if (fd >= 0)
            close(fd);
        return -e;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        file_problem(origin, problems, -EISDIR,
                     "is a directory (expected a YAML VM definition file)");
        return -EISDIR;
    }
    if (S_ISREG(st.st_mode) && st.st_size > CONFIG_YAML_MAX_BYTES) {
        close(fd);
        file_problem(origin, problems, -EFBIG, "%lld bytes is too big (expected at most %d)",
                     (long long)st.st_size, CONFIG_YAML_MAX_BYTES);
        return -EFBIG;
    }
    char *buf = malloc(CONFIG_YAML_MAX_BYTES + 1);
    size_t len = 0;
    int r = buf ? 0 : -ENOMEM;
    while (r == 0 && len < CONFIG_YAML_MAX_BYTES + 1) {
        ssize_t n = read(fd, buf + len, CONFIG_YAML_MAX_BYTES + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            r = -errno;
        else if (n == 0)
            break;
        else
            len += (size_t)n;
    }
    close(fd);
    if (r == 0 && len > CONFIG_YAML_MAX_BYTES) { /* a pipe: its size was not known */
        r = -EFBIG;
        file_problem(origin, problems, r, "more than %d bytes is too big (expected at most %d)",
                     CONFIG_YAML_MAX_BYTES, CONFIG_YAML_MAX_BYTES);
    } else if (r < 0) {
        file_problem(origin, problems, r, "%s (expected a YAML VM definition file)", strerror(-r));
    }
    if (r < 0) {
        free(buf);
        return r;
    }
    *data = buf;
    *size = len;
    return 0;
}

int yaml_file_dir(const char *path, char **dir)
{
    const char *slash = strrchr(path, '/');
    *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : NULL;
    return slash && !*dir ? -ENOMEM : 0;
}

int config_yaml_load_under(const char *path, struct vm_config *cfg, const bool *keep,
                           struct config_yaml_origin *origin, struct config_problems *problems)
{
    if (!origin->file && !(origin->file = strdup(path)))
        return -ENOMEM;
    char *data = NULL;
    size_t size = 0;
    int r = yaml_read_file(origin, problems, path, &data, &size);
    if (r < 0)
        return r;
    /* Paths in the file are relative to its folder, wherever kiln runs. */
    char *dir = NULL;
    r = yaml_file_dir(path, &dir);
    if (r == 0)
        r = load_buffer(path, dir, data, size, cfg, keep, origin, problems);
    free(dir);
    free(data);
    return r;
}

int config_yaml_load(const char *path, struct vm_config *cfg, struct config_yaml_origin *origin,
                     struct config_problems *problems)
{
    return config_yaml_load_under(path, cfg, NULL, origin, problems);
}

void config_yaml_origin_free(struct config_yaml_origin *origin)
{
    free(origin->file);
    memset(origin, 0, sizeof(*origin));
}

int config_yaml_label(const struct config_yaml_origin *origin, enum config_field field,
                      unsigned index, char *buf, size_t size)
{
    if (!origin || !origin->file || (unsigned)field >= CONFIG_FIELD_COUNT)
        return 0;
    const struct config_yaml_mark *mark = &origin->field[field];
    const struct config_setting *setting = config_setting_by_field(field);
    char path[64];
    if (field == CONFIG_FIELD_DISK || field == CONFIG_FIELD_NET) {
        if (index >= CONFIG_MAX_VIRTIO_DEVICES)
            return 0;
        const struct config_device_keys *kind =
            field == CONFIG_FIELD_DISK ? &config_disk_keys : &config_net_keys;
        mark = field == CONFIG_FIELD_DISK ? &origin->disk[index] : &origin->net[index];
        snprintf(path, sizeof(path), "%s[%u].%s", kind->list_key, index, kind->keys[0].key);
    } else if (field == CONFIG_FIELD_DEVICES) {
        snprintf(path, sizeof(path), "%s", origin->devices_key ? origin->devices_key : "disks");
    } else {
        config_setting_key_path(setting, path, sizeof(path));
    }
    if (mark->line == 0)
        return 0;
    if (mark->bad)
        return -1;
    yaml_mark_t at = {.line = mark->line - 1, .column = mark->column - 1};
    yaml_label(origin, at, path, buf, size);
    return 1;
}

bool config_yaml_name(const void *origin, enum config_field field, unsigned index, char *buf,
                      size_t size)
{
    int from_file = config_yaml_label(origin, field, index, buf, size);
    if (from_file == 0)
        snprintf(buf, size, "%s", config_field_flag(field));
    return from_file >= 0;
}
