/* Reading a CPU template file (YAML, docs/cpu-templates.md): `cpuid:` entries that set, clear
 * or keep each bit of one register, and `features:` that set or clear features by name. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "kiln/vcpu/cpu_template.h"

#define CPUID_ENTRY_EXPECTED "leaf, subleaf, register and bits"

struct template_reader {
    struct cpu_template *t;
    yaml_document_t *doc;
    struct error *err;
};

/* One line "PATH:LINE: what (expected ...)": libyaml's lines count from 0. */
static int problem(struct template_reader *rd, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int problem(struct template_reader *rd, const yaml_node_t *node, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return error_fmt(rd->err, -EINVAL, "%s:%lu: %s", rd->t->name,
                     (unsigned long)node->start_mark.line + 1, what);
}

static const char *scalar(const yaml_node_t *node)
{
    return node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value : NULL;
}

/* A number up to max: decimal, or hexadecimal after 0x. */
static int parse_number(struct template_reader *rd, const yaml_node_t *node, const char *key,
                        uint64_t max, const char *range, uint64_t *out)
{
    const char *text = scalar(node);
    int base = 10;
    const char *digits = text;
    if (text && (strncmp(text, "0x", 2) == 0 || strncmp(text, "0X", 2) == 0)) {
        base = 16;
        digits = text + 2;
    }
    char *end = NULL;
    errno = 0;
    /* strtoull would take a sign or spaces: only digits may start it */
    unsigned long long value =
        digits && (base == 16 ? isxdigit((unsigned char)*digits) : isdigit((unsigned char)*digits))
            ? strtoull(digits, &end, base)
            : 0;
    if (!end || *end || errno || value > max)
        return problem(rd, node, "%s: '%s' is not a number (expected %s, decimal or 0x hex)", key,
                       text ? text : "(not a scalar)", range);
    *out = value;
    return 0;
}

static int parse_u32(struct template_reader *rd, const yaml_node_t *node, const char *key,
                     uint32_t *out)
{
    uint64_t value;
    int r = parse_number(rd, node, key, UINT32_MAX, "0 to 0xffffffff", &value);
    *out = (uint32_t)value;
    return r;
}

static int parse_register(struct template_reader *rd, const yaml_node_t *node, enum cpuid_reg *out)
{
    const char *text = scalar(node);
    for (enum cpuid_reg reg = CPUID_EAX; text && reg <= CPUID_EDX; reg++) {
        if (strcasecmp(text, cpuid_reg_name(reg)) == 0) {
            *out = reg;
            return 0;
        }
    }
    return problem(rd, node, "register: '%s' is not a register (expected eax, ebx, ecx or edx)",
                   text ? text : "(not a scalar)");
}

/* 32 characters, bit 31 first: 1 set, 0 clear, x kept as KVM offers it; an optional 0b in
 * front and _ between groups, as in "0bxxxx_xxxx_..." */
static int parse_bits(struct template_reader *rd, const yaml_node_t *node,
                      struct cpu_template_change *c)
{
    const char *text = scalar(node);
    const char *expected = "32 of 0 (clear), 1 (set) or x (keep), bit 31 first, "
                           "optionally after 0b and with _ between groups";
    if (!text)
        return problem(rd, node, "bits: not a string (expected %s)", expected);
    const char *p = strncmp(text, "0b", 2) == 0 ? text + 2 : text;
    unsigned count = 0;
    c->set = c->keep = 0;
    for (; *p; p++) {
        if (*p == '_')
            continue;
        if (*p != '0' && *p != '1' && *p != 'x' && *p != 'X')
            return problem(rd, node, "bits: '%c' in '%s' (expected %s)", *p, text, expected);
        if (++count > 32)
            break;
        unsigned bit = 32 - count;
        if (*p == '1')
            c->set |= 1u << bit;
        else if (*p != '0')
            c->keep |= 1u << bit;
    }
    if (count != 32)
        return problem(rd, node, "bits: '%s' has %s32 bits (expected %s)", text,
                       count > 32 ? "more than " : "fewer than ", expected);
    return 0;
}

enum entry_key { KEY_LEAF, KEY_SUBLEAF, KEY_REGISTER, KEY_BITS, KEY_COUNT };
static const char *const entry_keys[KEY_COUNT] = {"leaf", "subleaf", "register", "bits"};

static int parse_entry_key(struct template_reader *rd, const yaml_node_t *key_node,
                           const yaml_node_t *value, unsigned *seen, struct cpu_template_change *c)
{
    const char *key = scalar(key_node);
    for (unsigned k = 0; key && k < KEY_COUNT; k++) {
        if (strcmp(key, entry_keys[k]) != 0)
            continue;
        if (*seen & (1u << k))
            return problem(rd, key_node, "%s given twice in one cpuid entry", key);
        *seen |= 1u << k;
        switch ((enum entry_key)k) {
        case KEY_LEAF:
            return parse_u32(rd, value, key, &c->leaf);
        case KEY_SUBLEAF:
            return parse_u32(rd, value, key, &c->subleaf);
        case KEY_REGISTER:
            return parse_register(rd, value, &c->reg);
        case KEY_BITS:
            return parse_bits(rd, value, c);
        case KEY_COUNT:
            break;
        }
    }
    return problem(rd, key_node,
                   "unknown key '%s' in a cpuid entry (expected " CPUID_ENTRY_EXPECTED ")",
                   key ? key : "(not a scalar)");
}

static int parse_entry(struct template_reader *rd, const yaml_node_t *node)
{
    if (node->type != YAML_MAPPING_NODE)
        return problem(rd, node,
                       "a cpuid entry is not a mapping (expected " CPUID_ENTRY_EXPECTED ")");
    struct cpu_template_change c = {.line = (unsigned)node->start_mark.line + 1};
    unsigned seen = 0;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        int r = parse_entry_key(rd, yaml_document_get_node(rd->doc, pair->key),
                                yaml_document_get_node(rd->doc, pair->value), &seen, &c);
        if (r < 0)
            return r;
    }
    const unsigned required[] = {KEY_LEAF, KEY_REGISTER, KEY_BITS};
    for (unsigned i = 0; i < 3; i++)
        if (!(seen & (1u << required[i])))
            return problem(rd, node, "cpuid entry without %s (expected " CPUID_ENTRY_EXPECTED ")",
                           entry_keys[required[i]]);
    return cpu_template_add(rd->t, &c, rd->err);
}

static int parse_cpuid(struct template_reader *rd, const yaml_node_t *node)
{
    if (node->type != YAML_SEQUENCE_NODE)
        return problem(rd, node,
                       "cpuid: not a list (expected a list of entries with " CPUID_ENTRY_EXPECTED
                       ")");
    for (yaml_node_item_t *item = node->data.sequence.items.start;
         item < node->data.sequence.items.top; item++) {
        int r = parse_entry(rd, yaml_document_get_node(rd->doc, *item));
        if (r < 0)
            return r;
    }
    return 0;
}

#define MSR_ENTRY_EXPECTED "index and value"

/* One msrs: entry: index and value, both required. */
static int parse_msr(struct template_reader *rd, const yaml_node_t *node)
{
    if (node->type != YAML_MAPPING_NODE)
        return problem(rd, node,
                       "an msrs entry is not a mapping (expected " MSR_ENTRY_EXPECTED ")");
    struct cpu_template_msr msr = {.line = (unsigned)node->start_mark.line + 1};
    bool have_index = false, have_value = false;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        const yaml_node_t *key_node = yaml_document_get_node(rd->doc, pair->key);
        const yaml_node_t *value = yaml_document_get_node(rd->doc, pair->value);
        const char *key = scalar(key_node);
        bool *have = key && strcmp(key, "index") == 0   ? &have_index
                     : key && strcmp(key, "value") == 0 ? &have_value
                                                        : NULL;
        if (!have)
            return problem(rd, key_node,
                           "unknown key '%s' in an msrs entry (expected " MSR_ENTRY_EXPECTED ")",
                           key ? key : "(not a scalar)");
        if (*have)
            return problem(rd, key_node, "%s given twice in one msrs entry", key);
        *have = true;
        int r = have == &have_index ? parse_u32(rd, value, key, &msr.index)
                                    : parse_number(rd, value, key, UINT64_MAX,
                                                   "0 to 0xffffffffffffffff", &msr.value);
        if (r < 0)
            return r;
    }
    if (!have_index || !have_value)
        return problem(rd, node, "msrs entry without %s (expected " MSR_ENTRY_EXPECTED ")",
                       have_index ? "value" : "index");
    return cpu_template_add_msr(rd->t, &msr, rd->err);
}

static int parse_msrs(struct template_reader *rd, const yaml_node_t *node)
{
    if (node->type != YAML_SEQUENCE_NODE)
        return problem(rd, node,
                       "msrs: not a list (expected a list of entries with " MSR_ENTRY_EXPECTED ")");
    for (yaml_node_item_t *item = node->data.sequence.items.start;
         item < node->data.sequence.items.top; item++) {
        int r = parse_msr(rd, yaml_document_get_node(rd->doc, *item));
        if (r < 0)
            return r;
    }
    return 0;
}

/* features: set: [...] / clear: [...]: each name one change of its word's bit. */
static int parse_feature_list(struct template_reader *rd, const yaml_node_t *node, bool set)
{
    const char *key = set ? "set" : "clear";
    if (node->type != YAML_SEQUENCE_NODE)
        return problem(rd, node, "features: %s: not a list (expected a list of feature names)",
                       key);
    for (yaml_node_item_t *item = node->data.sequence.items.start;
         item < node->data.sequence.items.top; item++) {
        const yaml_node_t *name_node = yaml_document_get_node(rd->doc, *item);
        const char *name = scalar(name_node);
        const struct cpuid_feature_word *word;
        unsigned bit;
        if (!name || cpuid_feature_by_name(name, &word, &bit) < 0)
            return problem(rd, name_node,
                           "features: %s: unknown CPU feature '%s' (expected a name from "
                           "docs/cpu-templates.md such as avx2)",
                           key, name ? name : "(not a scalar)");
        struct cpu_template_change c = {.leaf = word->leaf,
                                        .subleaf = word->subleaf,
                                        .reg = word->reg,
                                        .set = set ? 1u << bit : 0,
                                        .keep = ~(1u << bit),
                                        .line = (unsigned)name_node->start_mark.line + 1};
        int r = cpu_template_add(rd->t, &c, rd->err);
        if (r < 0)
            return r;
    }
    return 0;
}

static int parse_features(struct template_reader *rd, const yaml_node_t *node)
{
    if (node->type != YAML_MAPPING_NODE)
        return problem(rd, node, "features: not a mapping (expected set: and clear: lists)");
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        const yaml_node_t *key_node = yaml_document_get_node(rd->doc, pair->key);
        const yaml_node_t *value = yaml_document_get_node(rd->doc, pair->value);
        const char *key = scalar(key_node);
        int r;
        if (key && strcmp(key, "set") == 0)
            r = parse_feature_list(rd, value, true);
        else if (key && strcmp(key, "clear") == 0)
            r = parse_feature_list(rd, value, false);
        else
            r = problem(rd, key_node, "features: unknown key '%s' (expected set or clear)",
                        key ? key : "(not a scalar)");
        if (r < 0)
            return r;
    }
    return 0;
}

/* base: host or minimal: the built-in template the file's own changes refine; its changes
 * come first wherever the key is, and are reported at its line. */
static int parse_base(struct template_reader *rd, const yaml_node_t *node)
{
    const char *name = scalar(node);
    if (name && strcmp(name, "host") == 0)
        return 0;
    if (!name || strcmp(name, "minimal") != 0)
        return problem(rd, node, "base: '%s' is not a built-in template (expected host or minimal)",
                       name ? name : "(not a scalar)");
    struct cpu_template base;
    int r = cpu_template_minimal(&base, rd->err);
    for (size_t i = 0; r == 0 && i < base.count; i++) {
        struct cpu_template_change c = base.changes[i];
        c.line = (unsigned)node->start_mark.line + 1;
        r = cpu_template_add(rd->t, &c, rd->err);
    }
    cpu_template_free(&base);
    return r;
}

static int parse_root(struct template_reader *rd, const yaml_node_t *root)
{
    if (root->type != YAML_MAPPING_NODE)
        return problem(rd, root,
                       "not a mapping (expected a CPU template with base:, cpuid:, features: "
                       "or msrs:)");
    yaml_node_pair_t *pairs = root->data.mapping.pairs.start, *end = root->data.mapping.pairs.top;
    const yaml_node_t *base = NULL;
    for (yaml_node_pair_t *pair = pairs; pair < end; pair++) {
        const yaml_node_t *key_node = yaml_document_get_node(rd->doc, pair->key);
        const char *key = scalar(key_node);
        if (!key || strcmp(key, "base") != 0)
            continue;
        if (base)
            return problem(rd, key_node, "base given twice");
        base = yaml_document_get_node(rd->doc, pair->value);
    }
    int r = base ? parse_base(rd, base) : 0;
    for (yaml_node_pair_t *pair = pairs; r == 0 && pair < end; pair++) {
        const yaml_node_t *key_node = yaml_document_get_node(rd->doc, pair->key);
        const yaml_node_t *value = yaml_document_get_node(rd->doc, pair->value);
        const char *key = scalar(key_node);
        if (key && strcmp(key, "base") == 0)
            continue;
        if (key && strcmp(key, "cpuid") == 0)
            r = parse_cpuid(rd, value);
        else if (key && strcmp(key, "features") == 0)
            r = parse_features(rd, value);
        else if (key && strcmp(key, "msrs") == 0)
            r = parse_msrs(rd, value);
        else
            r = problem(rd, key_node, "unknown key '%s' (expected base, cpuid, features or msrs)",
                        key ? key : "(not a scalar)");
    }
    return r;
}

/* The template from a parser whose input is set; name is the file's in messages. */
static int load(struct cpu_template *t, yaml_parser_t *parser, const char *name, struct error *err)
{
    yaml_document_t doc;
    if (!yaml_parser_load(parser, &doc))
        return error_fmt(err, -EINVAL, "%s:%lu: %s (expected a YAML CPU template)", name,
                         (unsigned long)parser->problem_mark.line + 1,
                         parser->problem ? parser->problem : "not YAML");
    struct template_reader rd = {.t = t, .doc = &doc, .err = err};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    int r = root ? parse_root(&rd, root)
                 : error_fmt(err, -EINVAL,
                             "%s: empty (expected a CPU template with base:, cpuid:, features: or "
                             "msrs:)",
                             name);
    yaml_document_delete(&doc);
    return r;
}

int cpu_template_load_file(struct cpu_template *t, const char *path, struct error *err)
{
    cpu_template_init(t, path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return error_fmt(err, -errno, "%s: cannot read the CPU template: %s", path,
                         strerror(errno));
    yaml_parser_t parser;
    int r =
        yaml_parser_initialize(&parser) ? 0 : error_fmt(err, -ENOMEM, "%s: out of memory", path);
    if (r == 0) {
        yaml_parser_set_input_file(&parser, f);
        r = load(t, &parser, path, err);
        yaml_parser_delete(&parser);
    }
    fclose(f);
    if (r < 0) {
        cpu_template_make_one_line(err->msg);
        cpu_template_free(t);
    }
    return r;
}

int cpu_template_load_buffer(struct cpu_template *t, const char *name, const void *bytes,
                             size_t size, struct error *err)
{
    cpu_template_init(t, name);
    yaml_parser_t parser;
    int r =
        yaml_parser_initialize(&parser) ? 0 : error_fmt(err, -ENOMEM, "%s: out of memory", name);
    if (r == 0) {
        yaml_parser_set_input_string(&parser, bytes, size);
        r = load(t, &parser, name, err);
        yaml_parser_delete(&parser);
    }
    if (r < 0) {
        cpu_template_make_one_line(err->msg);
        cpu_template_free(t);
    }
    return r;
}
