/* Unit tests for the settings table: each flag has its YAML key and the CLI and the YAML loader
 * say the same "expected" text for it; every YAML key the loader takes has a flag (except the
 * kernel mapping, the one YAML-only structure key); getters give back what setters took, and
 * `kiln config` and `kiln test`'s inline VMs have exactly the table's keys. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/config/cli.h"
#include "kiln/config/config_settings.h"
#include "kiln/config/config_yaml.h"
#include "kiln/ktest/ktest.h"

/* The first problem of loading text as "vm.yaml" (no validation pass), in buf. */
static const char *first_problem(const char *text, char *buf, size_t size)
{
    struct vm_config cfg;
    config_init(&cfg);
    struct config_yaml_origin origin = {0};
    struct config_problems problems = {.count = 0};
    assert_int_equal(
        config_yaml_load_buffer("vm.yaml", "/vms", text, strlen(text), &cfg, &origin, &problems),
        0);
    snprintf(buf, size, "%s", problems.count ? problems.lines[0] : "(none)");
    config_problems_free(&problems);
    config_yaml_origin_free(&origin);
    config_free(&cfg);
    return buf;
}

static void expect_suffix(const char *text, const char *suffix)
{
    size_t len = strlen(text), n = strlen(suffix);
    if (len < n || strcmp(text + len - n, suffix) != 0 || strncmp(text, "vm.yaml:", 8) != 0)
        fail_msg("got: %s\nwant: vm.yaml:LINE:COLUMN: ...%s", text, suffix);
}

static void test_rows_are_whole(void **state)
{
    bool fields[CONFIG_FIELD_COUNT] = {false};
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++) {
        const struct config_setting *s = &config_settings[i];
        char path[64], other[64];
        assert_true(strncmp(s->flag, "--", 2) == 0);
        assert_true(*s->key && *s->expected && *s->help && s->set);
        assert_true((s->get == NULL) == ((s->options & CONFIG_SETTING_LIST) != 0));
        assert_true((*s->metavar == '\0') == ((s->options & CONFIG_SETTING_SWITCH) != 0));
        assert_false(fields[s->field]);
        fields[s->field] = true;
        assert_ptr_equal(config_setting_by_field(s->field), s);
        assert_ptr_equal(config_setting_by_flag(s->flag, strlen(s->flag)), s);
        assert_string_equal(config_field_flag(s->field), s->flag);
        config_setting_key_path(s, path, sizeof(path));
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(config_settings[j].flag, s->flag);
            assert_string_not_equal(
                config_setting_key_path(&config_settings[j], other, sizeof(other)), path);
        }
    }
    for (int f = 0; f < CONFIG_FIELD_COUNT; f++) /* every setting has its row */
        assert_true(fields[f] || f == CONFIG_FIELD_DEVICES);
}

/* "kiln run --FLAG" with no value and "KEY:" with none give the same expected text. */
static void test_flag_and_key_expect_the_same(void **state)
{
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++) {
        const struct config_setting *s = &config_settings[i];
        struct cli_request req;
        struct error err;
        char want[512], yaml[128], got[512], path[64];
        config_setting_key_path(s, path, sizeof(path));
        if (s->options & CONFIG_SETTING_SWITCH) {
            char with_value[64];
            snprintf(with_value, sizeof(with_value), "%s=true", s->flag);
            assert_int_equal(cli_parse(3, (char *[]){"kiln", "run", with_value, NULL}, &req, &err),
                             -EINVAL);
            snprintf(want, sizeof(want), "%s takes no value (expected '%s' alone)", s->flag,
                     s->flag);
        } else {
            assert_int_equal(
                cli_parse(3, (char *[]){"kiln", "run", (char *)s->flag, NULL}, &req, &err),
                -EINVAL);
            snprintf(want, sizeof(want), "%s: missing value (expected %s)", s->flag, s->expected);
        }
        assert_string_equal(err.msg, want);

        if (s->place == CONFIG_PLACE_KERNEL)
            snprintf(yaml, sizeof(yaml), CONFIG_KERNEL_KEY ": {%s: ~}\n", s->key);
        else if (s->options & CONFIG_SETTING_LIST) /* no value is an empty list: a number */
            snprintf(yaml, sizeof(yaml), "%s: 1\n", s->key);
        else
            snprintf(yaml, sizeof(yaml), "%s: ~\n", s->key);
        if (s->options & CONFIG_SETTING_LIST) {
            /* A --disk value is a spec, a disks: entry a mapping: the same keys, see below. */
            const struct config_device_keys *kind =
                s->field == CONFIG_FIELD_DISK ? &config_disk_keys : &config_net_keys;
            char entry[256];
            assert_string_equal(s->key, kind->list_key);
            assert_string_equal(s->flag, kind->flag);
            assert_string_equal(s->expected, kind->spec);
            snprintf(want, sizeof(want),
                     ": %s: '1' is not valid here (expected a list of %s, each %s)", path,
                     kind->what, config_device_entry_expected(kind, entry, sizeof(entry)));
        } else {
            snprintf(want, sizeof(want), ": %s: no value (expected %s)", path, s->expected);
        }
        expect_suffix(first_problem(yaml, got, sizeof(got)), want);
    }
}

/* The words of "... unknown key (expected a, b or c)". */
static size_t unknown_key_words(const char *yaml, char words[][32], size_t max)
{
    char problem[512];
    first_problem(yaml, problem, sizeof(problem));
    const char *list = strstr(problem, "unknown key (expected ");
    if (!list)
        fail_msg("no list of keys in: %s", problem);
    list += strlen("unknown key (expected ");
    size_t n = 0;
    while (*list && *list != ')' && n < max) {
        size_t len = strcspn(list, ",) ");
        snprintf(words[n++], 32, "%.*s", (int)len, list);
        list += len;
        while (*list == ',' || *list == ' ' || strncmp(list, "or ", 3) == 0)
            list += *list == 'o' ? 3 : 1;
    }
    return n;
}

/* Every key the loader takes sets what a flag sets, except the kernel mapping, which only groups
 * --kernel, --initrd and --cmdline; and every flag has its key. */
static void test_every_yaml_key_has_a_flag(void **state)
{
    char words[32][32];
    size_t n = unknown_key_words("bogus: 1\n", words, 32);
    size_t keys = 0, kernel_keys = 0;
    for (size_t w = 0; w < n; w++) {
        bool found = strcmp(words[w], CONFIG_KERNEL_KEY) == 0; /* the YAML-only structure key */
        for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++)
            found = found || (config_settings[i].place == CONFIG_PLACE_TOP &&
                              strcmp(config_settings[i].key, words[w]) == 0);
        if (!found)
            fail_msg("YAML key '%s' has no flag", words[w]);
    }
    n -= 1; /* the kernel mapping */
    size_t in_kernel = unknown_key_words("kernel: {bogus: 1}\n", words, 32);
    for (size_t w = 0; w < in_kernel; w++) {
        const struct config_setting *s = NULL;
        for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++)
            if (config_settings[i].place == CONFIG_PLACE_KERNEL &&
                strcmp(config_settings[i].key, words[w]) == 0)
                s = &config_settings[i];
        if (!s)
            fail_msg("YAML key 'kernel.%s' has no flag", words[w]);
    }
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++) {
        keys += config_settings[i].place == CONFIG_PLACE_TOP;
        kernel_keys += config_settings[i].place == CONFIG_PLACE_KERNEL;
    }
    assert_int_equal(n, keys); /* and every flag's key is taken */
    assert_int_equal(in_kernel, kernel_keys);

    /* The keys of a disks: or nets: entry are the options of --disk or --net. */
    static const struct {
        const struct config_device_keys *kind;
        const char *yaml;
    } lists[] = {{&config_disk_keys, "disks: [{path: a, bogus: 1}]\n"},
                 {&config_net_keys, "nets: [{tap: a, bogus: 1}]\n"}};
    for (size_t l = 0; l < 2; l++) {
        const struct config_device_keys *kind = lists[l].kind;
        assert_true(kind->count <= CONFIG_DEVICE_MAX_KEYS);
        n = unknown_key_words(lists[l].yaml, words, 32);
        assert_int_equal(n, kind->count);
        for (size_t k = 0; k < kind->count; k++) {
            const struct config_device_key *key = &kind->keys[k];
            char option[64];
            assert_string_equal(words[k], key->key);
            if (k == 0 && kind->positional)
                snprintf(option, sizeof(option), "%s[", key->metavar);
            else if (key->options & CONFIG_SETTING_SWITCH)
                snprintf(option, sizeof(option), "[,%s]", key->key);
            else
                snprintf(option, sizeof(option), "%s%s=", k ? "[," : "", key->key);
            if (!strstr(kind->spec, option))
                fail_msg("%s %s does not name '%s'", kind->flag, kind->spec, option);
        }
    }
}

/* A value for every setting: a new row needs one here, which checks its getter. */
static const struct {
    const char *flag, *value;
} samples[] = {
    {"--name", "web-1"},
    {"--cpus", "3,pin=0,2,5"},
    {"--cpu-template", "/t/cpu.yaml"},
    {"--memory", "512M,backing=anon,prealloc,merge=on,thp=off"},
    {"--cpu-quota", "150"},
    {"--cpu-weight", "200"},
    {"--nice", "5"},
    {"--kernel", "/k.elf"},
    {"--initrd", "/i.img"},
    {"--cmdline", "console=ttyS0 quiet"},
    {"--console", "file:/c.log"},
    {"--vconsole", "file:/v.log"}, /* not pty: the sample has a jail */
    {"--log-level", "debug"},
    {"--disk", "/d.img,readonly,serial=d1,cache=unsafe,queue-size=64,bw=50M,bw-burst=1G,"
               "iops=100/10ms,iops-burst=5000"},
    {"--net", "tap=kt0,mac=02:00:00:00:00:0a,rx-bw=10M,rx-bw-burst=20M,rx-pps=1000,"
              "rx-pps-burst=10,tx-bw=1G/2000ms,tx-bw-burst=1K,tx-pps=10/1ms,tx-pps-burst=1"},
    {"--rng", "true"},
    {"--rng-limit", "bw=1M,bw-burst=2M,ops=100/500ms,ops-burst=7"},
    {"--balloon", "64M,deflate-on-oom=on,stats=5,free-page-reporting=on"},
    {"--device-discovery", "cmdline"},
    {"--vmgenid", "off"},
    {"--on-reset", "restart"},
    {"--shutdown-grace", "0"},
    {"--host-compat", "off"},
    {"--seccomp", "log"},
    {"--jail", "/srv/jail"},
    {"--uid", "65534"},
    {"--gid", "65533"},
    {"--api-socket", "/run/kiln-test/web.sock"},
};

static const char *sample(const char *flag)
{
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
        if (strcmp(samples[i].flag, flag) == 0)
            return samples[i].value;
    fail_msg("no sample value for %s", flag);
    return NULL;
}

/* cfg with every setting's sample value. */
static void sample_config(struct vm_config *cfg)
{
    config_init(cfg);
    struct error err;
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++) {
        const struct config_setting *s = &config_settings[i];
        if (s->set(cfg, s->flag, sample(s->flag), &err) < 0)
            fail_msg("%s", err.msg);
    }
}

static char *emit(const struct vm_config *cfg)
{
    char *yaml = NULL;
    size_t len = 0;
    struct error err;
    FILE *out = open_memstream(&yaml, &len);
    assert_int_equal(config_yaml_emit(cfg, out, &err), 0);
    fclose(out);
    return yaml;
}

static void test_getters_give_back_what_setters_took(void **state)
{
    struct vm_config cfg;
    sample_config(&cfg);
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++) {
        const struct config_setting *s = &config_settings[i];
        if (!s->get)
            continue;
        char *text = NULL;
        assert_int_equal(s->get(&cfg, &text), 0);
        assert_non_null(text);
        assert_string_equal(text, sample(s->flag));
        free(text);
    }
    /* The entries' keys: each option of the sample --disk and --net. */
    const struct {
        const struct config_device_keys *kind;
        const void *device;
        const char *values[CONFIG_DEVICE_MAX_KEYS];
    } devices[] = {
        {&config_disk_keys,
         &cfg.disks[0],
         {"/d.img", "true", "d1", "unsafe", "64", "50M", "1G", "100/10ms", "5000"}},
        {&config_net_keys,
         &cfg.nets[0],
         {"kt0", "02:00:00:00:00:0a", "10M", "20M", "1000", "10", "1G/2000ms", "1K", "10/1ms",
          "1"}},
    };
    for (size_t d = 0; d < 2; d++) {
        for (size_t k = 0; k < devices[d].kind->count; k++) {
            char *text = NULL;
            assert_int_equal(devices[d].kind->keys[k].get(devices[d].device, &text), 0);
            assert_non_null(text);
            assert_string_equal(text, devices[d].values[k]);
            free(text);
        }
    }

    /* `kiln config` writes every key of the table, and no other. */
    char *yaml = emit(&cfg);
    size_t top = 0;
    for (const char *line = yaml; *line; line = strchr(line, '\n') + 1) {
        if (*line == ' ' || *line == '-')
            continue;
        size_t key_len = strcspn(line, ":");
        const struct config_setting *s = NULL;
        for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++)
            if (config_settings[i].place == CONFIG_PLACE_TOP &&
                strlen(config_settings[i].key) == key_len &&
                strncmp(config_settings[i].key, line, key_len) == 0)
                s = &config_settings[i];
        if (!s && strncmp(line, CONFIG_KERNEL_KEY ":", key_len + 1) != 0)
            fail_msg("kiln config wrote a key without a flag: %.*s", (int)key_len, line);
        top++;
    }
    size_t want = 1; /* kernel: */
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++)
        want += config_settings[i].place == CONFIG_PLACE_TOP;
    assert_int_equal(top, want);
    free(yaml);
    config_free(&cfg);
}

/* A `kiln test` case's inline VM takes every key `kiln config` writes: the same walk. */
static void test_kiln_test_inline_vm_takes_every_key(void **state)
{
    struct vm_config cfg;
    sample_config(&cfg);
    char *vm = emit(&cfg);
    char test[4096] = "cases:\n  - name: every-key\n    steps: [{expect: x}]\n    vm:\n";
    size_t used = strlen(test);
    for (const char *line = vm; *line; line = strchr(line, '\n') + 1)
        used += (size_t)snprintf(test + used, sizeof(test) - used, "      %.*s\n",
                                 (int)strcspn(line, "\n"), line);
    assert_true(used < sizeof(test));
    struct ktest_file file;
    struct config_problems problems = {.count = 0};
    assert_int_equal(ktest_file_load_buffer("t.yaml", "/", test, strlen(test), &file, &problems),
                     0);
    if (problems.count)
        fail_msg("%s\nin:\n%s", problems.lines[0], test);
    char *again = emit(&file.cases[0].vm);
    assert_string_equal(again, vm);
    free(again);
    free(vm);
    ktest_file_free(&file);
    config_problems_free(&problems);
    config_free(&cfg);
}

/* `kiln run --help` names every flag and stays within 100 columns. */
static void test_help_lists_every_flag(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cli_print_run_help(out);
    fclose(out);
    for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
        size_t width = strcspn(line, "\n");
        if (width > 100)
            fail_msg("a --help line is %zu columns: %.*s", width, (int)width, line);
    }
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++) {
        char left[64];
        snprintf(left, sizeof(left), "  %s%s%s ", config_settings[i].flag,
                 *config_settings[i].metavar ? " " : "", config_settings[i].metavar);
        if (!strstr(text, left))
            fail_msg("--help lacks '%s'", left);
    }
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_are_whole),
        cmocka_unit_test(test_flag_and_key_expect_the_same),
        cmocka_unit_test(test_every_yaml_key_has_a_flag),
        cmocka_unit_test(test_getters_give_back_what_setters_took),
        cmocka_unit_test(test_kiln_test_inline_vm_takes_every_key),
        cmocka_unit_test(test_help_lists_every_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
