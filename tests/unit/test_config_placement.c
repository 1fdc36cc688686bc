/* Unit tests for config_placement.c: --memory's options, --cpus's pin list (ranges, order,
 * round trips through the getters), --cpu-quota, --cpu-weight, --nice, and every bad value's
 * one-line message. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/config/config.h"

static void expect_bad(config_setter set, const char *label, const char *text, const char *message)
{
    struct vm_config cfg;
    config_init(&cfg);
    struct error err = {{0}};
    assert_int_equal(set(&cfg, label, text, &err), -EINVAL);
    assert_string_equal(err.msg, message);
    config_free(&cfg);
}

static void test_memory_options(void **state)
{
    (void)state;
    struct vm_config cfg;
    config_init(&cfg);
    struct error err;
    /* Defaults: memfd, THP advised, nothing else. */
    assert_int_equal(cfg.memory_backing, MEMORY_BACKING_MEMFD);
    assert_true(cfg.memory_thp);
    assert_false(cfg.memory_prealloc || cfg.memory_merge || cfg.memory_shared);
    assert_int_equal(
        config_set_memory(&cfg, "--memory", "1G,backing=anon,prealloc,merge=on,thp=off", &err), 0);
    assert_int_equal(cfg.memory_bytes, 1ULL << 30);
    assert_int_equal(cfg.memory_backing, MEMORY_BACKING_ANON);
    assert_true(cfg.memory_prealloc && cfg.memory_merge);
    assert_false(cfg.memory_thp || cfg.memory_shared);
    char *text;
    assert_int_equal(config_memory_text(&cfg, &text), 0);
    assert_string_equal(text, "1G,backing=anon,prealloc,merge=on,thp=off");
    free(text);
    /* A new value starts from the defaults: no option carries over. */
    assert_int_equal(config_set_memory(&cfg, "memory", "512M", &err), 0);
    assert_int_equal(cfg.memory_backing, MEMORY_BACKING_MEMFD);
    assert_true(cfg.memory_thp);
    assert_false(cfg.memory_prealloc || cfg.memory_merge);
    assert_int_equal(config_memory_text(&cfg, &text), 0);
    assert_string_equal(text, "512M");
    free(text);
    assert_int_equal(config_set_memory(&cfg, "--memory", "64M,backing=anon,shared", &err), 0);
    assert_true(cfg.memory_shared);
    assert_int_equal(config_set_memory(&cfg, "--memory", "6M,backing=hugetlb,merge=off", &err), 0);
    assert_int_equal(cfg.memory_backing, MEMORY_BACKING_HUGETLB);
    assert_int_equal(config_memory_text(&cfg, &text), 0);
    assert_string_equal(text, "6M,backing=hugetlb");
    free(text);
    /* A bad value leaves the config as it was. */
    assert_int_equal(config_set_memory(&cfg, "--memory", "64M,backing=anon,turbo", &err), -EINVAL);
    assert_int_equal(cfg.memory_bytes, 6ULL << 20);
    assert_int_equal(cfg.memory_backing, MEMORY_BACKING_HUGETLB);
    config_free(&cfg);
}

static void test_memory_bad_values(void **state)
{
    (void)state;
    expect_bad(config_set_memory, "--memory", "64M,backing=bogus",
               "--memory: 'bogus' in '64M,backing=bogus' is not a backing (expected memfd, anon "
               "or hugetlb)");
    expect_bad(config_set_memory, "--memory", "64M,turbo",
               "--memory: 'turbo' in '64M,turbo' is not an option (expected "
               "backing=memfd|anon|hugetlb, prealloc, shared, merge=on|off or thp=on|off)");
    expect_bad(config_set_memory, "--memory", "64M,prealloc=yes",
               "--memory: 'prealloc=yes' in '64M,prealloc=yes' is not an option (expected "
               "backing=memfd|anon|hugetlb, prealloc, shared, merge=on|off or thp=on|off)");
    expect_bad(config_set_memory, "--memory", "64M,backing",
               "--memory: 'backing' in '64M,backing' is not an option (expected "
               "backing=memfd|anon|hugetlb, prealloc, shared, merge=on|off or thp=on|off)");
    expect_bad(config_set_memory, "vm.yaml:2:9: memory", "64M,thp=maybe",
               "vm.yaml:2:9: memory: 'maybe' in '64M,thp=maybe' is not on or off (expected "
               "thp=on or thp=off)");
    expect_bad(config_set_memory, "--memory", "64M,shared",
               "--memory: '64M,shared': shared is for backing=anon (memfd and hugetlb memory is "
               "always shared)");
    expect_bad(config_set_memory, "--memory", "64M,backing=anon,shared,merge=on",
               "--memory: '64M,backing=anon,shared,merge=on': merge=on needs backing=anon "
               "without shared (KSM merges only private anonymous memory)");
    expect_bad(config_set_memory, "--memory", "64M,backing=hugetlb,merge=on",
               "--memory: '64M,backing=hugetlb,merge=on': merge=on needs backing=anon without "
               "shared (KSM merges only private anonymous memory)");
    expect_bad(config_set_memory, "--memory", "5M,backing=hugetlb",
               "--memory: '5M,backing=hugetlb' is not a multiple of 2 MiB (expected whole huge "
               "pages with backing=hugetlb, e.g. 6M)");
    expect_bad(config_set_memory, "--memory", "12Q,prealloc",
               "--memory: '12Q,prealloc' is not a size (expected a number with an optional K, M "
               "or G suffix, e.g. 512M)");
    expect_bad(config_set_memory, "--memory", "1M,prealloc",
               "--memory: '1M' is out of range (expected 4M to 1024G)");
}

static void expect_list(const char *text, const unsigned *want, int count)
{
    unsigned cpus[CONFIG_MAX_PIN_CPUS];
    struct error err;
    assert_int_equal(config_parse_cpu_list(text, cpus, CONFIG_MAX_PIN_CPUS, &err), count);
    for (int i = 0; i < count; i++)
        assert_int_equal(cpus[i], want[i]);
}

static void test_cpu_lists(void **state)
{
    (void)state;
    expect_list("0", (unsigned[]){0}, 1);
    expect_list("0-3", (unsigned[]){0, 1, 2, 3}, 4);
    expect_list("0,2,4-5", (unsigned[]){0, 2, 4, 5}, 4);
    expect_list("3,1,1", (unsigned[]){3, 1, 1}, 3); /* the list's order, repeats kept */
    expect_list("1023", (unsigned[]){1023}, 1);
    expect_list("7-7", (unsigned[]){7}, 1);
    unsigned cpus[CONFIG_MAX_PIN_CPUS];
    struct error err;
    assert_int_equal(config_parse_cpu_list("0-1023", cpus, CONFIG_MAX_PIN_CPUS, &err), 1024);
    const char *bad[][2] = {
        {"", "pin list '' is empty"},
        {"x", "pin list 'x' is not a CPU list"},
        {"1,", "pin list '1,' ends with a comma"},
        {",1", "pin list ',1' is not a CPU list"},
        {"1,,2", "pin list '1,,2' is not a CPU list"},
        {"-1", "pin list '-1' is not a CPU list"},
        {"1-", "pin list '1-' is not a CPU list"},
        {"1-2-3", "pin list '1-2-3' is not a CPU list"},
        {"3-1", "pin list '3-1' has a range that runs backwards"},
        {"1024", "pin list '1024' names a CPU past 1023"},
        {"99999999999", "pin list '99999999999' is not a CPU list"},
        {"0-1023,0", "pin list '0-1023,0' has more than 1024 entries"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(config_parse_cpu_list(bad[i][0], cpus, CONFIG_MAX_PIN_CPUS, &err),
                         -EINVAL);
        char want[300];
        snprintf(want, sizeof(want),
                 "%s (expected CPU numbers and ranges from 0 to 1023, e.g. 0-3 or 0,2,4-5)",
                 bad[i][1]);
        assert_string_equal(err.msg, want);
    }
}

static void test_cpus_with_pins(void **state)
{
    (void)state;
    struct vm_config cfg;
    config_init(&cfg);
    struct error err;
    assert_int_equal(config_set_cpus(&cfg, "--cpus", "3,pin=4-5,0", &err), 0);
    assert_int_equal(cfg.cpus, 3);
    assert_int_equal(cfg.ncpu_pin, 3);
    assert_int_equal(cfg.cpu_pin[0], 4);
    assert_int_equal(cfg.cpu_pin[2], 0);
    char *text;
    assert_int_equal(config_cpus_text(&cfg, &text), 0);
    assert_string_equal(text, "3,pin=4,5,0");
    free(text);
    /* A count alone unpins. */
    assert_int_equal(config_set_cpus(&cfg, "cpus", "2", &err), 0);
    assert_int_equal(cfg.ncpu_pin, 0);
    assert_null(cfg.cpu_pin);
    assert_int_equal(config_cpus_text(&cfg, &text), 0);
    assert_string_equal(text, "2");
    free(text);
    config_free(&cfg);
    expect_bad(config_set_cpus, "--cpus", "2,pim=0",
               "--cpus: '2,pim=0' has an unknown option (expected N[,pin=LIST], e.g. 2,pin=0-1)");
    expect_bad(config_set_cpus, "--cpus", "0,pin=1",
               "--cpus: '0' is not a valid vCPU count (expected 1 to 254)");
    expect_bad(config_set_cpus, "--cpus", "x,pin=1",
               "--cpus: 'x' is not a valid vCPU count (expected 1 to 254)");
    expect_bad(config_set_cpus, "vm.yaml:2:7: cpus", "2,pin=1-0",
               "vm.yaml:2:7: cpus: pin list '1-0' has a range that runs backwards (expected CPU "
               "numbers and ranges from 0 to 1023, e.g. 0-3 or 0,2,4-5)");
}

static void test_quota_weight_nice(void **state)
{
    (void)state;
    struct vm_config cfg;
    config_init(&cfg);
    struct error err;
    char *text;
    assert_int_equal(config_cpu_quota_text(&cfg, &text), 0); /* not given: left out */
    assert_null(text);
    assert_int_equal(config_nice_text(&cfg, &text), 0);
    assert_null(text);
    assert_int_equal(config_set_cpu_quota(&cfg, "--cpu-quota", "150%", &err), 0);
    assert_int_equal(cfg.cpu_quota, 150);
    assert_int_equal(config_set_cpu_quota(&cfg, "--cpu-quota", "100000", &err), 0);
    assert_int_equal(config_set_cpu_weight(&cfg, "--cpu-weight", "1", &err), 0);
    assert_int_equal(config_set_nice(&cfg, "--nice", "-20", &err), 0);
    assert_int_equal(cfg.nice, -20);
    assert_int_equal(config_set_nice(&cfg, "--nice", "0", &err), 0); /* 0 is a value given */
    assert_true(cfg.nice_given);
    assert_int_equal(config_nice_text(&cfg, &text), 0);
    assert_string_equal(text, "0");
    free(text);
    config_free(&cfg);
    const char *quota = "(expected a percentage of one host CPU from 1 to 100000, e.g. 150)";
    const char *weight = "(expected a cgroup cpu.weight from 1 to 10000)";
    const char *nice = "(expected a nice value from -20 to 19)";
    const struct {
        config_setter set;
        const char *label, *text, *what, *expected;
    } bad[] = {
        {config_set_cpu_quota, "--cpu-quota", "0", "is out of range", quota},
        {config_set_cpu_quota, "--cpu-quota", "100001", "is out of range", quota},
        {config_set_cpu_quota, "--cpu-quota", "1.5", "is not a number", quota},
        {config_set_cpu_quota, "--cpu-quota", "%", "is not a number", quota},
        {config_set_cpu_quota, "--cpu-quota", "-5", "is not a number", quota},
        {config_set_cpu_weight, "--cpu-weight", "0", "is out of range", weight},
        {config_set_cpu_weight, "--cpu-weight", "10001", "is out of range", weight},
        {config_set_cpu_weight, "--cpu-weight", "50%", "is not a number", weight},
        {config_set_nice, "--nice", "20", "is out of range", nice},
        {config_set_nice, "--nice", "-21", "is out of range", nice},
        {config_set_nice, "--nice", "-", "is not a number", nice},
        {config_set_nice, "--nice", "low", "is not a number", nice},
        {config_set_nice, "--nice", "", "is not a number", nice},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[300];
        snprintf(want, sizeof(want), "%s: '%s' %s %s", bad[i].label, bad[i].text, bad[i].what,
                 bad[i].expected);
        expect_bad(bad[i].set, bad[i].label, bad[i].text, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_options),    cmocka_unit_test(test_memory_bad_values),
        cmocka_unit_test(test_cpu_lists),         cmocka_unit_test(test_cpus_with_pins),
        cmocka_unit_test(test_quota_weight_nice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
