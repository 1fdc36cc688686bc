/* struct vm_config defaults, SIZE parsing and the validation pass shared by every way a
 * config is filled (CLI flags, YAML): one place decides what a valid VM is. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/config/config_limit.h"
#include "kiln/config/config_settings.h"
#include "kiln/boot/layout.h"

_Static_assert(CONFIG_MAX_CMDLINE == LAYOUT_CMDLINE_MAX - 1,
               "the CLI must accept exactly what the boot loader has room for");
_Static_assert(CONFIG_MIN_MEMORY % CONFIG_MEMORY_ALIGN == 0 &&
                   CONFIG_MAX_MEMORY % CONFIG_MEMORY_ALIGN == 0,
               "the memory range must start and end on a page");

void config_init(struct vm_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->cmdline = strdup("");
    cfg->cpus = CONFIG_DEFAULT_CPUS;
    cfg->memory_bytes = CONFIG_DEFAULT_MEMORY;
    cfg->memory_thp = true;
    cfg->console = CONSOLE_STDIO;
    cfg->log_level = LOG_WARN;
    cfg->on_reset = RESET_EXIT;
    cfg->shutdown_grace_seconds = CONFIG_DEFAULT_SHUTDOWN_GRACE;
    cfg->host_compat = HOST_COMPAT_AUTO;
    cfg->seccomp = SANDBOX_KILL;
    cfg->vmgenid = true;
    cfg->jail_uid = -1;
    cfg->jail_gid = -1;
}

void config_free(struct vm_config *cfg)
{
    free(cfg->kernel_path);
    free(cfg->initrd_path);
    free(cfg->cmdline);
    free(cfg->console_path);
    free(cfg->vconsole_path);
    free(cfg->name);
    free(cfg->jail_dir);
    free(cfg->api_socket);
    free(cfg->cpu_pin);
    free(cfg->cpu_template);
    for (unsigned i = 0; i < cfg->ndisks; i++)
        config_free_disk(&cfg->disks[i]);
    free(cfg->disks);
    for (unsigned i = 0; i < cfg->nnets; i++)
        config_free_net(&cfg->nets[i]);
    free(cfg->nets);
    memset(cfg, 0, sizeof(*cfg));
}

static unsigned size_unit_shift(char unit)
{
    switch (unit) {
    case 'k':
    case 'K':
        return 10;
    case 'm':
    case 'M':
        return 20;
    case 'g':
    case 'G':
        return 30;
    default:
        return 0;
    }
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int config_parse_size(const char *text, uint64_t *bytes)
{
    if (!text || !is_digit(*text))
        return -EINVAL;
    const char *suffix = text;
    while (is_digit(*suffix))
        suffix++;
    unsigned shift = size_unit_shift(*suffix);
    if (shift) {
        const char *rest = suffix + 1;
        /* "512MB" and "512MiB" are what people type; both mean 512 * 2^20 here. */
        if (*rest && strcasecmp(rest, "B") != 0 && strcasecmp(rest, "iB") != 0)
            return -EINVAL;
    } else if (*suffix) {
        return -EINVAL;
    }
    /* Syntax first, so "99999999999999999999X" is a syntax error rather than an overflow. */
    uint64_t value = 0;
    for (const char *p = text; p < suffix; p++) {
        uint64_t digit = (uint64_t)(*p - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return -ERANGE;
        value = value * 10 + digit;
    }
    if (value > (UINT64_MAX >> shift))
        return -ERANGE;
    *bytes = value << shift;
    return 0;
}

const char *config_size_text(uint64_t bytes, char *buf, size_t size)
{
    static const char suffixes[] = "GMK";
    static const unsigned shifts[] = {30, 20, 10};
    for (size_t i = 0; i < sizeof(shifts) / sizeof(shifts[0]); i++) {
        uint64_t unit = 1ULL << shifts[i];
        if (bytes != 0 && bytes % unit == 0) {
            snprintf(buf, size, "%llu%c", (unsigned long long)(bytes / unit), suffixes[i]);
            return buf;
        }
    }
    snprintf(buf, size, "%llu", (unsigned long long)bytes);
    return buf;
}

static size_t escape_byte(unsigned char c, char piece[5])
{
    if (c == '\n')
        return (size_t)snprintf(piece, 5, "\\n");
    if (c == '\t')
        return (size_t)snprintf(piece, 5, "\\t");
    if (c < 0x20 || c == 0x7f)
        return (size_t)snprintf(piece, 5, "\\x%02x", c);
    piece[0] = (char)c;
    piece[1] = '\0';
    return 1;
}

const char *config_quote(const char *text, char *buf, size_t size)
{
    static const char ellipsis[] = "...";
    if (size < sizeof(ellipsis)) {
        if (size)
            buf[0] = '\0';
        return buf;
    }
    size_t out = 0;
    size_t cut = 0; /* where "..." still fits, never inside a UTF-8 sequence */
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        char piece[5];
        size_t n = escape_byte(*p, piece);
        if (out + n + 1 > size) {
            memcpy(buf + cut, ellipsis, sizeof(ellipsis));
            return buf;
        }
        memcpy(buf + out, piece, n);
        out += n;
        if (out + sizeof(ellipsis) <= size && (p[1] & 0xc0) != 0x80)
            cut = out;
    }
    buf[out] = '\0';
    return buf;
}

int config_check_cpus(const char *label, const char *text, unsigned long cpus, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE];
    if (cpus < 1 || cpus > CONFIG_MAX_CPUS)
        return error_fmt(err, -EINVAL, "%s: '%s' is not a valid vCPU count (expected 1 to %d)",
                         label, config_quote(text, quoted, sizeof(quoted)), CONFIG_MAX_CPUS);
    return 0;
}

int config_check_memory(const char *label, const char *text, uint64_t bytes, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE], min[24], max[24];
    config_quote(text, quoted, sizeof(quoted));
    if (bytes < CONFIG_MIN_MEMORY || bytes > CONFIG_MAX_MEMORY)
        return error_fmt(err, -EINVAL, "%s: '%s' is out of range (expected %s to %s)", label,
                         quoted, config_size_text(CONFIG_MIN_MEMORY, min, sizeof(min)),
                         config_size_text(CONFIG_MAX_MEMORY, max, sizeof(max)));
    if (bytes % CONFIG_MEMORY_ALIGN != 0) {
        uint64_t up = bytes + CONFIG_MEMORY_ALIGN - bytes % CONFIG_MEMORY_ALIGN;
        return error_fmt(err, -EINVAL,
                         "%s: '%s' is not a multiple of 4 KiB (expected whole pages, e.g. %llu)",
                         label, quoted, (unsigned long long)up);
    }
    return 0;
}

int config_check_cmdline(const char *label, const char *cmdline, struct error *err)
{
    size_t len = strlen(cmdline);
    if (len > CONFIG_MAX_CMDLINE)
        return error_fmt(err, -EINVAL, "%s: %zu bytes is too long (expected at most %d)", label,
                         len, CONFIG_MAX_CMDLINE);
    return 0;
}

/* A file the VM reads: it must exist, be readable and not be a folder; kernels and initrds must
 * be regular files, a disk may be a block device too (opening it later checks size, access
 * mode and lock). */
static int check_input_file(const char *label, const char *path, const char *expected,
                            bool regular_only, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE];
    config_quote(path, quoted, sizeof(quoted));
    struct stat st;
    if (stat(path, &st) != 0 || access(path, R_OK) != 0) {
        int e = errno;
        return error_fmt(err, -e, "%s: '%s': %s (expected %s)", label, quoted, strerror(e),
                         expected);
    }
    if (S_ISDIR(st.st_mode))
        return error_fmt(err, -EISDIR, "%s: '%s' is a directory (expected %s)", label, quoted,
                         expected);
    if (regular_only && !S_ISREG(st.st_mode))
        return error_fmt(err, -EINVAL, "%s: '%s' is not a regular file (expected %s)", label,
                         quoted, expected);
    return 0;
}

void config_problems_add(struct config_problems *problems, int code, const char *message)
{
    if (problems->first_code == 0)
        problems->first_code = code < 0 ? code : -EINVAL;
    char *line = problems->count < CONFIG_MAX_PROBLEMS ? strdup(message) : NULL;
    if (line)
        problems->lines[problems->count++] = line;
    else
        problems->dropped++;
}

void config_problems_free(struct config_problems *problems)
{
    for (unsigned i = 0; i < problems->count; i++)
        free(problems->lines[i]);
    memset(problems, 0, sizeof(*problems));
}

const char *config_field_flag(enum config_field field)
{
    if (field == CONFIG_FIELD_DEVICES)
        return "--disk/--net/--rng/--balloon";
    const struct config_setting *setting = config_setting_by_field(field);
    return setting ? setting->flag : "?";
}

/* One pass's state: who names the settings, where problems go. */
struct checker {
    const struct config_namer *namer;
    struct config_problems *problems;
    unsigned found;
    char label[CONFIG_QUOTE_SIZE + 64];
};

/* Fills c->label for field; false if that setting's problem was already reported. */
static bool label(struct checker *c, enum config_field field, unsigned index)
{
    if (c->namer)
        return c->namer->name(c->namer->ctx, field, index, c->label, sizeof(c->label));
    snprintf(c->label, sizeof(c->label), "%s", config_field_flag(field));
    return true;
}

static void add(struct checker *c, int r, const struct error *err)
{
    if (r < 0) {
        config_problems_add(c->problems, r, err->msg);
        c->found++;
    }
}

static void check_numbers(struct checker *c, const struct vm_config *cfg)
{
    struct error err;
    char text[24];
    snprintf(text, sizeof(text), "%u", cfg->cpus);
    if (label(c, CONFIG_FIELD_CPUS, 0))
        add(c, config_check_cpus(c->label, text, cfg->cpus, &err), &err);
    config_size_text(cfg->memory_bytes, text, sizeof(text));
    if (label(c, CONFIG_FIELD_MEMORY, 0))
        add(c, config_check_memory(c->label, text, cfg->memory_bytes, &err), &err);
    if (cfg->cmdline && label(c, CONFIG_FIELD_CMDLINE, 0))
        add(c, config_check_cmdline(c->label, cfg->cmdline, &err), &err);
}

/* A socket path must fit in sun_path with its NUL. */
#define SOCKET_PATH_MAX 107

static void check_sink(struct checker *c, enum config_field field, enum console_kind kind,
                       const char *path)
{
    struct error err;
    if (kind != CONSOLE_FILE && kind != CONSOLE_SOCKET)
        return;
    const char *prefix = kind == CONSOLE_FILE ? "file:" : "socket:";
    if ((!path || !*path) && label(c, field, 0))
        add(c,
            error_fmt(&err, -EINVAL, "%s: '%s' needs a path (expected %sPATH)", c->label, prefix,
                      prefix),
            &err);
    else if (kind == CONSOLE_SOCKET && strlen(path) > SOCKET_PATH_MAX && label(c, field, 0))
        add(c,
            error_fmt(&err, -EINVAL, "%s: the socket path is %zu bytes long (expected at most %d)",
                      c->label, strlen(path), SOCKET_PATH_MAX),
            &err);
}

/* Each sink on its own, then the two consoles together: one virtio-console, one stdin. */
static void check_consoles(struct checker *c, const struct vm_config *cfg)
{
    struct error err;
    check_sink(c, CONFIG_FIELD_CONSOLE, cfg->console, cfg->console_path);
    if (!cfg->vconsole)
        return;
    check_sink(c, CONFIG_FIELD_VCONSOLE, cfg->vconsole_kind, cfg->vconsole_path);
    if (cfg->console_device == CONSOLE_ON_VIRTIO && label(c, CONFIG_FIELD_VCONSOLE, 0)) {
        add(c,
            error_fmt(&err, -EINVAL,
                      "%s: the console is already on virtio-console (expected either a virtio "
                      "console or a second console beside the serial one, not both)",
                      c->label),
            &err);
    } else if (cfg->vconsole_kind == CONSOLE_STDIO && cfg->console == CONSOLE_STDIO &&
               label(c, CONFIG_FIELD_VCONSOLE, 0)) {
        add(c,
            error_fmt(&err, -EINVAL,
                      "%s: stdio is already the serial console's (expected file:PATH, "
                      "socket:PATH, pty or none, or the serial console on another sink)",
                      c->label),
            &err);
    } else if (cfg->vconsole_kind == CONSOLE_SOCKET && cfg->console == CONSOLE_SOCKET &&
               cfg->console_path && cfg->vconsole_path &&
               strcmp(cfg->console_path, cfg->vconsole_path) == 0 &&
               label(c, CONFIG_FIELD_VCONSOLE, 0)) {
        add(c,
            error_fmt(&err, -EINVAL,
                      "%s: the serial console listens on the same socket (expected another path)",
                      c->label),
            &err);
    }
}

static void check_files(struct checker *c, const struct vm_config *cfg)
{
    struct error err;
    if (cfg->kernel_path && *cfg->kernel_path && label(c, CONFIG_FIELD_KERNEL, 0))
        add(c, check_input_file(c->label, cfg->kernel_path, "a kernel image file", true, &err),
            &err);
    if (cfg->initrd_path && label(c, CONFIG_FIELD_INITRD, 0))
        add(c, check_input_file(c->label, cfg->initrd_path, "an initrd file", true, &err), &err);
    /* Only that it can be read: what it says is read when the VM is built (cpu_template.h). */
    if (config_cpu_template_is_file(cfg) && label(c, CONFIG_FIELD_CPU_TEMPLATE, 0))
        add(c,
            check_input_file(c->label, cfg->cpu_template, "host, minimal or a CPU template file",
                             true, &err),
            &err);
    for (unsigned i = 0; i < cfg->ndisks; i++) {
        if (cfg->disks[i].path && label(c, CONFIG_FIELD_DISK, i))
            add(c,
                check_input_file(c->label, cfg->disks[i].path, "a raw disk image or block device",
                                 false, &err),
                &err);
    }
}

/* The same image twice would be two writers behind the guest's back. */
static void check_same_images(struct checker *c, const struct vm_config *cfg)
{
    struct error err;
    for (unsigned i = 0; i < cfg->ndisks; i++) {
        struct stat a;
        if (!cfg->disks[i].path || stat(cfg->disks[i].path, &a) != 0)
            continue; /* reported above, or when it is opened */
        for (unsigned j = 0; j < i; j++) {
            struct stat b;
            if (!cfg->disks[j].path || stat(cfg->disks[j].path, &b) != 0 || a.st_dev != b.st_dev ||
                a.st_ino != b.st_ino)
                continue;
            if (label(c, CONFIG_FIELD_DISK, i)) {
                char quoted[CONFIG_QUOTE_SIZE];
                add(c,
                    error_fmt(&err, -EINVAL,
                              "%s: '%s' is the same image as disk %u (expected each image once)",
                              c->label, config_quote(cfg->disks[i].path, quoted, sizeof(quoted)),
                              j),
                    &err);
            }
            break;
        }
    }
}

/* A balloon can hold at most all of the guest's RAM. */
static void check_balloon(struct checker *c, const struct vm_config *cfg)
{
    struct error err;
    char size[24], memory[24];
    if (cfg->balloon.enabled && cfg->balloon.target_bytes > cfg->memory_bytes &&
        label(c, CONFIG_FIELD_BALLOON, 0))
        add(c,
            error_fmt(&err, -EINVAL,
                      "%s: a balloon of %s is more than the VM's %s of memory (expected at "
                      "most %s)",
                      c->label, config_size_text(cfg->balloon.target_bytes, size, sizeof(size)),
                      config_size_text(cfg->memory_bytes, memory, sizeof(memory)), memory),
            &err);
}

/* A jail needs its uid and gid; they mean nothing without it. Its root holds files only, so a
 * console socket or pty (which need a host path or /dev/pts) cannot be used in it. */
static void check_jail(struct checker *c, const struct vm_config *cfg, bool look_at_files)
{
    struct error err;
    /* A uid or gid whose bad value was reported already is not missing again. */
    bool no_uid = cfg->jail_uid < 0 && label(c, CONFIG_FIELD_UID, 0);
    bool no_gid = cfg->jail_gid < 0 && label(c, CONFIG_FIELD_GID, 0);
    if (cfg->jail_dir && (no_uid || no_gid) && label(c, CONFIG_FIELD_JAIL, 0))
        add(c,
            error_fmt(&err, -EINVAL,
                      "%s: the jail needs a uid and a gid (expected --uid U and --gid G, numbers "
                      "from 1 to 4294967294)",
                      c->label),
            &err);
    static const enum config_field ids[] = {CONFIG_FIELD_UID, CONFIG_FIELD_GID};
    for (size_t i = 0; i < 2; i++) {
        bool given = (ids[i] == CONFIG_FIELD_UID ? cfg->jail_uid : cfg->jail_gid) >= 0;
        if (!cfg->jail_dir && given && label(c, ids[i], 0))
            add(c,
                error_fmt(&err, -EINVAL, "%s: given without --jail (expected --jail DIR too)",
                          c->label),
                &err);
    }
    if (!cfg->jail_dir)
        return;
    const struct {
        enum config_field field;
        enum console_kind kind;
        bool used;
    } sinks[] = {{CONFIG_FIELD_CONSOLE, cfg->console, true},
                 {CONFIG_FIELD_VCONSOLE, cfg->vconsole_kind, cfg->vconsole}};
    for (size_t i = 0; i < 2; i++) {
        bool outside = sinks[i].kind == CONSOLE_SOCKET || sinks[i].kind == CONSOLE_PTY;
        if (sinks[i].used && outside && label(c, sinks[i].field, 0))
            add(c,
                error_fmt(&err, -EINVAL,
                          "%s: a %s cannot be used with --jail (expected stdio, "
                          "file:PATH or none)",
                          c->label, sinks[i].kind == CONSOLE_PTY ? "pty" : "socket"),
                &err);
    }
    struct stat st;
    if (look_at_files && label(c, CONFIG_FIELD_JAIL, 0)) {
        char quoted[CONFIG_QUOTE_SIZE];
        config_quote(cfg->jail_dir, quoted, sizeof(quoted));
        if (stat(cfg->jail_dir, &st) != 0)
            add(c,
                error_fmt(&err, -errno, "%s: '%s': %s (expected an existing folder)", c->label,
                          quoted, strerror(errno)),
                &err);
        else if (!S_ISDIR(st.st_mode))
            add(c,
                error_fmt(&err, -ENOTDIR, "%s: '%s' is not a folder (expected an existing folder)",
                          c->label, quoted),
                &err);
    }
}

/* A burst without its rate would do nothing: say so instead of ignoring it. */
static void check_limit(struct checker *c, enum config_field field, unsigned index,
                        const struct rate_limit_config *limit, const char *const names[4])
{
    struct error err;
    const char *key = config_limit_incomplete(limit, names);
    if (key && label(c, field, index))
        add(c,
            error_fmt(&err, -EINVAL, "%s: %s without %s (expected the rate the burst goes with)",
                      c->label, key, names[key == names[CONFIG_LIMIT_BW_BURST] ? 0 : 2]),
            &err);
}

static void check_limits(struct checker *c, const struct vm_config *cfg)
{
    static const char *const disk[4] = {"bw", "bw-burst", "iops", "iops-burst"};
    static const char *const rx[4] = {"rx-bw", "rx-bw-burst", "rx-pps", "rx-pps-burst"};
    static const char *const tx[4] = {"tx-bw", "tx-bw-burst", "tx-pps", "tx-pps-burst"};
    static const char *const rng[4] = {"bw", "bw-burst", "ops", "ops-burst"};
    for (unsigned i = 0; i < cfg->ndisks; i++)
        check_limit(c, CONFIG_FIELD_DISK, i, &cfg->disks[i].limit, disk);
    for (unsigned i = 0; i < cfg->nnets; i++) {
        check_limit(c, CONFIG_FIELD_NET, i, &cfg->nets[i].rx_limit, rx);
        check_limit(c, CONFIG_FIELD_NET, i, &cfg->nets[i].tx_limit, tx);
    }
    check_limit(c, CONFIG_FIELD_RNG_LIMIT, 0, &cfg->rng_limit, rng);
    struct error err;
    bool rng_limited = cfg->rng_limit.bytes.size || cfg->rng_limit.ops.size ||
                       cfg->rng_limit.bytes.one_time_burst || cfg->rng_limit.ops.one_time_burst;
    if (rng_limited && !cfg->rng && label(c, CONFIG_FIELD_RNG_LIMIT, 0))
        add(c,
            error_fmt(&err, -EINVAL, "%s: there is no virtio-rng to limit (expected --rng too)",
                      c->label),
            &err);
}

unsigned config_check_all(const struct vm_config *cfg, const struct config_namer *namer,
                          bool look_at_files, struct config_problems *problems)
{
    struct checker c = {.namer = namer, .problems = problems};
    struct error err;
    if ((!cfg->kernel_path || !*cfg->kernel_path) && label(&c, CONFIG_FIELD_KERNEL, 0))
        add(&c,
            error_fmt(&err, -EINVAL, "%s: missing (expected " CONFIG_KERNEL_EXPECTED ")", c.label),
            &err);
    check_numbers(&c, cfg);
    check_consoles(&c, cfg);
    if (look_at_files)
        check_files(&c, cfg);
    unsigned count = config_virtio_device_count(cfg);
    if (count > CONFIG_MAX_VIRTIO_DEVICES && label(&c, CONFIG_FIELD_DEVICES, 0))
        add(&c,
            error_fmt(&err, -EINVAL, "%s: %u virtio devices (expected at most %d in total)",
                      c.label, count, CONFIG_MAX_VIRTIO_DEVICES),
            &err);
    if (look_at_files)
        check_same_images(&c, cfg);
    check_balloon(&c, cfg);
    check_jail(&c, cfg, look_at_files);
    check_limits(&c, cfg);
    return c.found;
}

int config_validate(const struct vm_config *cfg, struct error *err)
{
    struct config_problems problems = {.count = 0};
    config_check_all(cfg, NULL, true, &problems);
    int r = problems.first_code;
    if (r < 0)
        error_fmt(err, r, "%s", problems.count ? problems.lines[0] : "out of memory");
    config_problems_free(&problems);
    return r;
}

#define WORD_MAX_LEN 32 /* longer words are never near misses of ours */

static size_t edit_distance(const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b);
    if (la > WORD_MAX_LEN || lb > WORD_MAX_LEN)
        return SIZE_MAX;
    size_t row[WORD_MAX_LEN + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t above = row[j];
            size_t best = diagonal + (a[i - 1] != b[j - 1]);
            if (above + 1 < best)
                best = above + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diagonal = above;
        }
    }
    return row[lb];
}

/* Abbreviations are only suggested, never accepted: a later key could make them ambiguous. */
const char *config_closest(const char *word, size_t len, const char *const *candidates, size_t n)
{
    const char *best = NULL, *prefix_of = NULL;
    size_t best_distance = 3, prefixes = 0;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, len, candidates[i]);
        if (d < best_distance) {
            best = candidates[i];
            best_distance = d;
        }
        if (len >= 3 && strncmp(candidates[i], word, len) == 0) {
            prefix_of = candidates[i];
            prefixes++;
        }
    }
    /* "--mem" is closer to "--net" by edits, but the user began typing "--memory". */
    return prefixes == 1 ? prefix_of : best;
}
