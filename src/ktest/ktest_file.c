/* Reading a `kiln test` file: the YAML schema (cases, each with a VM, a timeout and steps), with
 * the VM definition loader's checks and message helpers, so every problem is one
 * "FILE:LINE:COLUMN: KEY: what is wrong (expected ...)" line and all are reported in one run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kiln/config/yaml_walk.h"
#include "kiln/ktest/ktest.h"

#define PATH_SIZE (CONFIG_QUOTE_SIZE + 64)

#define STEP_EXPECTED "one of expect, expect-not, send, expect-exit or sleep"
#define NAME_EXPECTED                                                                              \
    "a name of 1 to " CONFIG_STRINGIFY(KTEST_MAX_NAME) " letters, digits, '.', '_' or '-'"
#define REGEX_EXPECTED "a POSIX extended regular expression"

static const char *const top_keys[] = {"cases", "timeout"};
enum { TOP_CASES, TOP_TIMEOUT, TOP_KEY_COUNT };
static const char *const case_keys[] = {"name", "vm", "timeout", "skip", "steps"};
enum { CASE_NAME, CASE_VM, CASE_TIMEOUT, CASE_SKIP, CASE_STEPS, CASE_KEY_COUNT };
static const char *const step_keys[] = {"expect",      "expect-not", "send",
                                        "expect-exit", "sleep",      "timeout"};
enum { STEP_KEY_TIMEOUT = 5, STEP_KEY_COUNT = 6 };
static const enum ktest_step_kind step_kinds[] = {KTEST_EXPECT, KTEST_EXPECT_NOT, KTEST_SEND,
                                                  KTEST_EXPECT_EXIT, KTEST_SLEEP};

/* The value nodes of one mapping, by key index, as yaml_walk_pairs hands them over. */
#define MAX_KEYS 8
_Static_assert(TOP_KEY_COUNT <= MAX_KEYS && CASE_KEY_COUNT <= MAX_KEYS &&
                   STEP_KEY_COUNT <= MAX_KEYS,
               "struct pairs holds every key of a mapping");
_Static_assert(sizeof(step_kinds) / sizeof(step_kinds[0]) == STEP_KEY_TIMEOUT,
               "one step kind per action key");
struct pairs {
    yaml_node_t *value[MAX_KEYS];
    char path[MAX_KEYS][PATH_SIZE];
};

static void collect_pair(struct yaml_walk *w, void *target, size_t key, yaml_node_t *value,
                         const char *path)
{
    struct pairs *p = target;
    p->value[key] = value;
    snprintf(p->path[key], sizeof(p->path[key]), "%s", path);
}

static void collect(struct yaml_walk *w, yaml_node_t *map, const char *prefix,
                    const char *const *names, size_t n, struct pairs *p)
{
    memset(p, 0, sizeof(*p));
    yaml_walk_pairs(w, map, prefix, names, n, collect_pair, p);
}

static void problem(struct yaml_walk *w, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(struct yaml_walk *w, const yaml_node_t *n, const char *fmt, ...)
{
    char text[sizeof(((struct error *)0)->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    yaml_problem(w->origin, w->problems, n->start_mark, -EINVAL, "%s", text);
}

int ktest_parse_duration(const char *text, uint64_t *ms)
{
    const char *p = text;
    uint64_t whole = 0, frac = 0, frac_scale = 1;
    if (*p < '0' || *p > '9')
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (whole > KTEST_MAX_DURATION_MS)
            return -ERANGE;
        whole = whole * 10 + (uint64_t)(*p - '0');
    }
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (frac_scale < 1000000) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                frac_scale *= 10;
            }
        }
    }
    uint64_t unit;
    if (strcmp(p, "ms") == 0)
        unit = 1;
    else if (strcmp(p, "s") == 0 || *p == '\0')
        unit = 1000;
    else if (strcmp(p, "m") == 0 || strcmp(p, "min") == 0)
        unit = 60 * 1000;
    else if (strcmp(p, "h") == 0)
        unit = 3600 * 1000;
    else
        return -EINVAL;
    if (whole > KTEST_MAX_DURATION_MS)
        return -ERANGE;
    uint64_t total = whole * unit + frac * unit / frac_scale;
    if (total == 0 || total > KTEST_MAX_DURATION_MS)
        return -ERANGE;
    *ms = total;
    return 0;
}

const char *ktest_duration_text(uint64_t ms, char *buf, size_t size)
{
    if (ms % 1000 == 0)
        snprintf(buf, size, "%llus", (unsigned long long)(ms / 1000));
    else if (ms < 1000)
        snprintf(buf, size, "%llums", (unsigned long long)ms);
    else
        snprintf(buf, size, "%llu.%03llus", (unsigned long long)(ms / 1000),
                 (unsigned long long)(ms % 1000));
    return buf;
}

/* A duration value, or 0 with the problem reported. */
static uint64_t duration_value(struct yaml_walk *w, yaml_node_t *n, const char *path)
{
    char *text = yaml_scalar_text(w, n, path, KTEST_DURATION_EXPECTED);
    if (!text)
        return 0;
    uint64_t ms = 0;
    int r = ktest_parse_duration(text, &ms);
    char quoted[CONFIG_QUOTE_SIZE];
    config_quote(text, quoted, sizeof(quoted));
    if (r == -ERANGE)
        problem(w, n, "%s: '%s' is out of range (expected more than 0 and at most 24h)", path,
                quoted);
    else if (r < 0)
        problem(w, n, "%s: '%s' is not a duration (expected " KTEST_DURATION_EXPECTED ")", path,
                quoted);
    free(text);
    return r < 0 ? 0 : ms;
}

static bool valid_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > KTEST_MAX_NAME)
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-'))
            return false;
    return true;
}

static void load_regex(struct yaml_walk *w, yaml_node_t *n, const char *path,
                       struct ktest_step *step)
{
    step->text = yaml_scalar_text(w, n, path, REGEX_EXPECTED);
    if (!step->text)
        return;
    if (!*step->text) {
        problem(w, n, "%s: an empty pattern (expected " REGEX_EXPECTED ")", path);
        return;
    }
    int r = regcomp(&step->regex, step->text, REG_EXTENDED | REG_NEWLINE);
    if (r != 0) {
        char why[128], quoted[CONFIG_QUOTE_SIZE];
        regerror(r, &step->regex, why, sizeof(why));
        problem(w, n,
                "%s: '%s' is not a valid regular expression: %s (expected " REGEX_EXPECTED ")",
                path, config_quote(step->text, quoted, sizeof(quoted)), why);
        return;
    }
    step->regex_ok = true;
}

static void load_exit_status(struct yaml_walk *w, yaml_node_t *n, const char *path,
                             struct ktest_step *step)
{
    char *text = yaml_scalar_text(w, n, path, "an exit status from 0 to 255");
    if (!text)
        return;
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end || errno || v > 255) {
        char quoted[CONFIG_QUOTE_SIZE];
        problem(w, n, "%s: '%s' is not an exit status (expected 0 to 255)", path,
                config_quote(text, quoted, sizeof(quoted)));
    }
    step->status = (int)v;
    free(text);
}

/* One step: a mapping with one action key and, for expect and expect-exit, a timeout. */
static void load_step(struct yaml_walk *w, yaml_node_t *n, const char *prefix,
                      struct ktest_step *step)
{
    step->line = (unsigned)n->start_mark.line + 1;
    step->column = (unsigned)n->start_mark.column + 1;
    if (n->type != YAML_MAPPING_NODE) {
        yaml_wrong_type(w, n, prefix, "a mapping with " STEP_EXPECTED);
        return;
    }
    struct pairs p;
    unsigned before = config_problems_total(w->problems);
    collect(w, n, prefix, step_keys, STEP_KEY_COUNT, &p);
    bool key_problems = config_problems_total(w->problems) != before;
    int action = -1;
    for (int k = 0; k < STEP_KEY_TIMEOUT; k++) {
        if (!p.value[k])
            continue;
        if (action >= 0) {
            problem(w, p.value[k], "%s: both %s and %s (expected one action per step)", prefix,
                    step_keys[action], step_keys[k]);
            return;
        }
        action = k;
    }
    if (action < 0) {
        if (key_problems) /* an unknown or repeated key said enough */
            return;
        problem(w, n, "%s: no action (expected " STEP_EXPECTED ")", prefix);
        return;
    }
    step->kind = step_kinds[action];
    yaml_node_t *value = p.value[action];
    const char *path = p.path[action];
    switch (step->kind) {
    case KTEST_EXPECT:
    case KTEST_EXPECT_NOT:
        load_regex(w, value, path, step);
        break;
    case KTEST_SEND:
        step->text = yaml_scalar_text(w, value, path, "the text to send, e.g. \"root\\n\"");
        step->text_len = step->text ? strlen(step->text) : 0;
        break;
    case KTEST_EXPECT_EXIT:
        load_exit_status(w, value, path, step);
        break;
    case KTEST_SLEEP:
        step->ms = duration_value(w, value, path);
        break;
    }
    if (p.value[STEP_KEY_TIMEOUT]) {
        if (step->kind != KTEST_EXPECT && step->kind != KTEST_EXPECT_EXIT)
            problem(w, p.value[STEP_KEY_TIMEOUT],
                    "%s: a timeout on a %s step (expected it only on expect and expect-exit)",
                    p.path[STEP_KEY_TIMEOUT], step_keys[action]);
        else
            step->ms = duration_value(w, p.value[STEP_KEY_TIMEOUT], p.path[STEP_KEY_TIMEOUT]);
    }
}

static void load_steps(struct yaml_walk *w, yaml_node_t *n, const char *path, struct ktest_case *tc)
{
    if (n->type != YAML_SEQUENCE_NODE ||
        n->data.sequence.items.start == n->data.sequence.items.top) {
        yaml_wrong_type(w, n, path, "a list of steps, each " STEP_EXPECTED);
        return;
    }
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    tc->steps = calloc(count, sizeof(*tc->steps));
    if (!tc->steps) {
        problem(w, n, "%s: out of memory", path);
        return;
    }
    tc->nsteps = (unsigned)count;
    for (size_t i = 0; i < count; i++) {
        char prefix[PATH_SIZE + 24];
        snprintf(prefix, sizeof(prefix), "%.*s[%zu]", PATH_SIZE - 1, path, i);
        yaml_node_t *item = yaml_document_get_node(w->doc, n->data.sequence.items.start[i]);
        if (item)
            load_step(w, item, prefix, &tc->steps[i]);
    }
}

/* vm: the path of a VM definition (relative to the test file) or an inline one. */
static void load_vm(struct yaml_walk *w, yaml_node_t *n, const char *path, struct ktest_case *tc)
{
    unsigned before = config_problems_total(w->problems);
    if (n->type == YAML_MAPPING_NODE) {
        tc->origin.file = strdup(w->origin->file);
        struct yaml_walk vm = {.doc = w->doc,
                               .dir = w->dir,
                               .cfg = &tc->vm,
                               .origin = &tc->origin,
                               .problems = w->problems};
        if (tc->origin.file)
            yaml_walk_vm(&vm, n, path);
    } else {
        char *text = yaml_scalar_text(w, n, path,
                                      "the path of a VM definition file, or a mapping of VM "
                                      "settings");
        if (!text)
            return;
        char *file = config_yaml_join(w->dir, text);
        free(text);
        struct stat st;
        char quoted[CONFIG_QUOTE_SIZE];
        if (!file) {
            problem(w, n, "%s: out of memory", path);
            return;
        }
        if (stat(file, &st) != 0)
            problem(w, n, "%s: '%s': %s (expected a VM definition file)", path,
                    config_quote(file, quoted, sizeof(quoted)), strerror(errno));
        else
            config_yaml_load(file, &tc->vm, &tc->origin, w->problems);
        free(file);
    }
    if (config_problems_total(w->problems) == before) {
        struct config_namer namer = {config_yaml_name, &tc->origin};
        config_check_all(&tc->vm, &namer, false, w->problems);
    }
}

static void load_case(struct yaml_walk *w, yaml_node_t *n, const char *prefix, uint64_t timeout,
                      struct ktest_case *tc)
{
    tc->line = (unsigned)n->start_mark.line + 1;
    tc->column = (unsigned)n->start_mark.column + 1;
    tc->timeout_ms = timeout;
    if (n->type != YAML_MAPPING_NODE) {
        yaml_wrong_type(w, n, prefix,
                        "a mapping with name, vm, steps and optionally timeout, "
                        "skip");
        return;
    }
    struct pairs p;
    collect(w, n, prefix, case_keys, CASE_KEY_COUNT, &p);
    if (!p.value[CASE_NAME]) {
        problem(w, n, "%s.name: missing (expected " NAME_EXPECTED ")", prefix);
    } else if ((tc->name =
                    yaml_scalar_text(w, p.value[CASE_NAME], p.path[CASE_NAME], NAME_EXPECTED)) &&
               !valid_name(tc->name)) {
        char quoted[CONFIG_QUOTE_SIZE];
        problem(w, p.value[CASE_NAME],
                "%s: '%s' is not a valid case name (expected " NAME_EXPECTED ")", p.path[CASE_NAME],
                config_quote(tc->name, quoted, sizeof(quoted)));
    }
    if (p.value[CASE_TIMEOUT])
        tc->timeout_ms = duration_value(w, p.value[CASE_TIMEOUT], p.path[CASE_TIMEOUT]);
    if (p.value[CASE_SKIP])
        tc->skip = yaml_scalar_text(w, p.value[CASE_SKIP], p.path[CASE_SKIP],
                                    "the reason the case is skipped");
    if (!p.value[CASE_VM])
        problem(w, n,
                "%s.vm: missing (expected the path of a VM definition file, or a mapping "
                "of VM settings)",
                prefix);
    else
        load_vm(w, p.value[CASE_VM], p.path[CASE_VM], tc);
    if (!p.value[CASE_STEPS])
        problem(w, n, "%s.steps: missing (expected a list of steps, each " STEP_EXPECTED ")",
                prefix);
    else
        load_steps(w, p.value[CASE_STEPS], p.path[CASE_STEPS], tc);
}

/* "tests/kiln-test/guestkit.yaml" -> "guestkit". */
static char *suite_name(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len > 5 && strcmp(base + len - 5, ".yaml") == 0)
        len -= 5;
    else if (len > 4 && strcmp(base + len - 4, ".yml") == 0)
        len -= 4;
    return strndup(base, len);
}

static void check_unique_names(struct yaml_walk *w, const yaml_node_t *list,
                               const struct ktest_file *file)
{
    for (unsigned i = 0; i < file->ncases; i++) {
        for (unsigned j = 0; j < i && file->cases[i].name; j++) {
            if (!file->cases[j].name || strcmp(file->cases[i].name, file->cases[j].name) != 0)
                continue;
            yaml_node_t *item = yaml_document_get_node(w->doc, list->data.sequence.items.start[i]);
            char quoted[CONFIG_QUOTE_SIZE];
            yaml_mark_t at = item->start_mark;
            yaml_problem(w->origin, w->problems, at, -EINVAL,
                         "cases[%u].name: '%s' is the name of cases[%u] too (expected each case "
                         "name once in a file)",
                         i, config_quote(file->cases[i].name, quoted, sizeof(quoted)), j);
            break;
        }
    }
}

static void load_cases(struct yaml_walk *w, yaml_node_t *n, uint64_t timeout,
                       struct ktest_file *file)
{
    if (n->type != YAML_SEQUENCE_NODE ||
        n->data.sequence.items.start == n->data.sequence.items.top) {
        yaml_wrong_type(w, n, "cases", "a list of cases, each a mapping with name, vm and steps");
        return;
    }
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    file->cases = calloc(count, sizeof(*file->cases));
    char *suite = suite_name(file->path);
    if (!file->cases || !suite) {
        free(suite);
        problem(w, n, "cases: out of memory");
        return;
    }
    file->ncases = (unsigned)count;
    for (size_t i = 0; i < count; i++) {
        struct ktest_case *tc = &file->cases[i];
        config_init(&tc->vm);
        tc->suite = strdup(suite);
        tc->file = strdup(file->path);
        char prefix[PATH_SIZE];
        snprintf(prefix, sizeof(prefix), "cases[%zu]", i);
        yaml_node_t *item = yaml_document_get_node(w->doc, n->data.sequence.items.start[i]);
        if (!tc->suite || !tc->file || !tc->vm.cmdline)
            problem(w, n, "%s: out of memory", prefix);
        else if (item)
            load_case(w, item, prefix, timeout, tc);
    }
    free(suite);
    check_unique_names(w, n, file);
}

static void walk_file(struct yaml_walk *w, struct ktest_file *file)
{
    yaml_node_t *root = yaml_document_get_root_node(w->doc);
    yaml_mark_t start = {0};
    if (!root || yaml_is_null(root)) {
        yaml_problem(w->origin, w->problems, root ? root->start_mark : start, -EINVAL,
                     "no cases (expected a mapping with cases: [...])");
        return;
    }
    if (root->type != YAML_MAPPING_NODE) {
        yaml_problem(w->origin, w->problems, root->start_mark, -EINVAL,
                     "the file is a %s (expected a mapping with cases: [...])",
                     root->type == YAML_SEQUENCE_NODE ? "list" : "single value");
        return;
    }
    struct pairs p;
    collect(w, root, "", top_keys, TOP_KEY_COUNT, &p);
    uint64_t timeout = KTEST_DEFAULT_TIMEOUT_MS;
    if (p.value[TOP_TIMEOUT])
        timeout = duration_value(w, p.value[TOP_TIMEOUT], "timeout");
    if (!p.value[TOP_CASES])
        yaml_problem(w->origin, w->problems, root->start_mark, -EINVAL,
                     "cases: missing (expected a list of cases, each a mapping with name, vm and "
                     "steps)");
    else
        load_cases(w, p.value[TOP_CASES], timeout, file);
}

int ktest_file_load_buffer(const char *name, const char *dir, const char *data, size_t size,
                           struct ktest_file *file, struct config_problems *problems)
{
    memset(file, 0, sizeof(*file));
    struct config_yaml_origin origin = {0};
    file->path = strdup(name);
    origin.file = strdup(name);
    if (!file->path || !origin.file) {
        config_yaml_origin_free(&origin);
        config_problems_add(problems, -ENOMEM, "out of memory");
        return -ENOMEM;
    }
    unsigned before = config_problems_total(problems);
    yaml_document_t doc;
    int r = yaml_load_checked(&origin, problems, data, size, KTEST_MAX_NODES, "test file", &doc);
    if (r == 0) {
        struct yaml_walk w = {.doc = &doc, .dir = dir, .origin = &origin, .problems = problems};
        walk_file(&w, file);
        yaml_document_delete(&doc);
    }
    config_yaml_origin_free(&origin);
    if (r == 0 && config_problems_total(problems) != before)
        r = problems->first_code ? problems->first_code : -EINVAL;
    return r;
}

int ktest_file_load(const char *path, struct ktest_file *file, struct config_problems *problems)
{
    struct config_yaml_origin origin = {.file = (char *)path};
    char *data = NULL;
    size_t size = 0;
    memset(file, 0, sizeof(*file));
    int r = yaml_read_file(&origin, problems, path, &data, &size);
    if (r < 0)
        return r;
    char *dir = NULL;
    r = yaml_file_dir(path, &dir);
    if (r == 0)
        r = ktest_file_load_buffer(path, dir, data, size, file, problems);
    free(dir);
    free(data);
    return r;
}

void ktest_case_free(struct ktest_case *tc)
{
    for (unsigned i = 0; i < tc->nsteps; i++) {
        if (tc->steps[i].regex_ok)
            regfree(&tc->steps[i].regex);
        free(tc->steps[i].text);
    }
    free(tc->steps);
    free(tc->name);
    free(tc->suite);
    free(tc->file);
    free(tc->skip);
    config_free(&tc->vm);
    config_yaml_origin_free(&tc->origin);
    memset(tc, 0, sizeof(*tc));
}

void ktest_file_free(struct ktest_file *file)
{
    for (unsigned i = 0; i < file->ncases; i++)
        ktest_case_free(&file->cases[i]);
    free(file->cases);
    free(file->path);
    memset(file, 0, sizeof(*file));
}

void ktest_case_check_files(const struct ktest_case *tc, struct config_problems *problems)
{
    struct config_namer namer = {config_yaml_name, &tc->origin};
    config_check_all(&tc->vm, &namer, true, problems);
}

const char *ktest_step_text(const struct ktest_step *step, char *buf, size_t size)
{
    char quoted[CONFIG_QUOTE_SIZE], d[32];
    const char *text = step->text ? config_quote(step->text, quoted, sizeof(quoted)) : "";
    switch (step->kind) {
    case KTEST_EXPECT:
        snprintf(buf, size, "expect '%s'", text);
        break;
    case KTEST_EXPECT_NOT:
        snprintf(buf, size, "expect-not '%s'", text);
        break;
    case KTEST_SEND:
        snprintf(buf, size, "send '%s'", text);
        break;
    case KTEST_EXPECT_EXIT:
        snprintf(buf, size, "expect-exit %d", step->status);
        break;
    case KTEST_SLEEP:
        snprintf(buf, size, "sleep %s", ktest_duration_text(step->ms, d, sizeof(d)));
        break;
    }
    return buf;
}
