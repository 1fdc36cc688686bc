/* Unit tests for `kiln test` files: what a good file loads to (cases, steps, timeouts, inline
 * VMs with paths relative to the file), durations, and every class of mistake with its exact
 * FILE:LINE:COLUMN message, all reported in one pass. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/ktest/ktest.h"

static int load(const char *text, const char *dir, struct ktest_file *file,
                struct config_problems *problems)
{
    return ktest_file_load_buffer("t.yaml", dir, text, strlen(text), file, problems);
}

/* Loads text; the problems must be exactly the expected lines, in order. */
static void expect_problems_n(const char *text, const char *const *lines, size_t n)
{
    struct ktest_file file;
    struct config_problems problems = {.count = 0};
    int r = load(text, NULL, &file, &problems);
    for (size_t i = 0; i < n || i < problems.count; i++) {
        const char *got = i < problems.count ? problems.lines[i] : "(none)";
        const char *want = i < n ? lines[i] : "(none)";
        if (strcmp(got, want) != 0)
            fail_msg("problem %zu:\n got: %s\nwant: %s", i, got, want);
    }
    assert_true(r < 0);
    config_problems_free(&problems);
    ktest_file_free(&file);
}

#define EXPECT(text, ...)                                                                          \
    expect_problems_n((text), (const char *const[]){__VA_ARGS__},                                  \
                      sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

static void test_good_file(void **state)
{
    const char *text = "timeout: 2m\n"
                       "cases:\n"
                       "  - name: hello\n"
                       "    vm: {kernel: {path: guests/hello.elf, cmdline: a=1}, cpus: 2}\n"
                       "    steps:\n"
                       "      - expect: ^Hello$\n"
                       "        timeout: 500ms\n"
                       "      - send: \"q\\n\"\n"
                       "      - expect-not: panic\n"
                       "      - sleep: 1.5s\n"
                       "      - expect-exit: 3\n"
                       "  - name: second.case_2\n"
                       "    timeout: 5s\n"
                       "    skip: later\n"
                       "    vm: {kernel: {path: /abs/k}}\n"
                       "    steps: [{expect-exit: 0, timeout: 1s}]\n";
    struct ktest_file file;
    struct config_problems problems = {.count = 0};
    assert_int_equal(load(text, "/tests", &file, &problems), 0);
    assert_int_equal(problems.count, 0);
    assert_int_equal(file.ncases, 2);
    const struct ktest_case *a = &file.cases[0], *b = &file.cases[1];
    assert_string_equal(a->name, "hello");
    assert_string_equal(a->suite, "t");
    assert_string_equal(a->file, "t.yaml");
    assert_int_equal(a->line, 3);
    assert_int_equal(a->timeout_ms, 120000);
    assert_null(a->skip);
    assert_string_equal(a->vm.kernel_path, "/tests/guests/hello.elf");
    assert_string_equal(a->vm.cmdline, "a=1");
    assert_int_equal(a->vm.cpus, 2);
    assert_int_equal(a->nsteps, 5);
    assert_int_equal(a->steps[0].kind, KTEST_EXPECT);
    assert_true(a->steps[0].regex_ok);
    assert_int_equal(a->steps[0].ms, 500);
    assert_int_equal(a->steps[0].line, 6);
    assert_int_equal(a->steps[0].column, 9);
    assert_int_equal(a->steps[1].kind, KTEST_SEND);
    assert_string_equal(a->steps[1].text, "q\n");
    assert_int_equal(a->steps[1].text_len, 2);
    assert_int_equal(a->steps[2].kind, KTEST_EXPECT_NOT);
    assert_int_equal(a->steps[3].kind, KTEST_SLEEP);
    assert_int_equal(a->steps[3].ms, 1500);
    assert_int_equal(a->steps[4].kind, KTEST_EXPECT_EXIT);
    assert_int_equal(a->steps[4].status, 3);
    assert_string_equal(b->name, "second.case_2");
    assert_int_equal(b->timeout_ms, 5000);
    assert_string_equal(b->skip, "later");
    assert_string_equal(b->vm.kernel_path, "/abs/k");
    assert_int_equal(b->steps[0].ms, 1000);
    ktest_file_free(&file);
}

static void test_defaults_and_aliases(void **state)
{
    const char *text = "cases:\n"
                       "  - name: a\n"
                       "    vm: &vm {kernel: {path: /k}}\n"
                       "    steps: &steps [{expect: x}]\n"
                       "  - {name: b, vm: *vm, steps: *steps}\n";
    struct ktest_file file;
    struct config_problems problems = {.count = 0};
    assert_int_equal(load(text, NULL, &file, &problems), 0);
    assert_int_equal(file.ncases, 2);
    assert_int_equal(file.cases[0].timeout_ms, KTEST_DEFAULT_TIMEOUT_MS);
    assert_string_equal(file.cases[1].vm.kernel_path, "/k");
    assert_string_equal(file.cases[1].steps[0].text, "x");
    ktest_file_free(&file);
}

static void test_durations(void **state)
{
    uint64_t ms = 0;
    assert_int_equal(ktest_parse_duration("30s", &ms), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(ktest_parse_duration("30", &ms), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(ktest_parse_duration("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(ktest_parse_duration("2m", &ms), 0);
    assert_int_equal(ms, 120000);
    assert_int_equal(ktest_parse_duration("2min", &ms), 0);
    assert_int_equal(ms, 120000);
    assert_int_equal(ktest_parse_duration("1h", &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(ktest_parse_duration("1.25s", &ms), 0);
    assert_int_equal(ms, 1250);
    assert_int_equal(ktest_parse_duration("24h", &ms), 0);
    const char *bad[] = {"", "s", "-1s", "1.s", ".5s", "1 s", "1d", "1S", "0x10", "1e3", "5 min"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ktest_parse_duration(bad[i], &ms), -EINVAL);
    assert_int_equal(ktest_parse_duration("0s", &ms), -ERANGE);
    assert_int_equal(ktest_parse_duration("0.0001s", &ms), -ERANGE);
    assert_int_equal(ktest_parse_duration("25h", &ms), -ERANGE);
    assert_int_equal(ktest_parse_duration("99999999999999999999999s", &ms), -ERANGE);
    char buf[32];
    assert_string_equal(ktest_duration_text(30000, buf, sizeof(buf)), "30s");
    assert_string_equal(ktest_duration_text(250, buf, sizeof(buf)), "250ms");
    assert_string_equal(ktest_duration_text(1500, buf, sizeof(buf)), "1.500s");
}

#define STEPS "    steps: [{expect: x}]\n"
#define VM    "    vm: {kernel: {path: /k}}\n"

static void test_file_shape(void **state)
{
    EXPECT("", "t.yaml:1:1: no cases (expected a mapping with cases: [...])");
    EXPECT("- a\n", "t.yaml:1:1: the file is a list (expected a mapping with cases: [...])");
    EXPECT("timeout: 1s\n", "t.yaml:1:1: cases: missing (expected a list of cases, each a "
                            "mapping with name, vm and steps)");
    EXPECT("cases: []\n", "t.yaml:1:8: cases: a list is not valid here (expected a list of "
                          "cases, each a mapping with name, vm and steps)");
    EXPECT("cases:\n  - x\n", "t.yaml:2:5: cases[0]: 'x' is not valid here (expected a mapping "
                              "with name, vm, steps and optionally timeout, skip)");
    EXPECT("casez: []\n", "t.yaml:1:1: casez: unknown key (did you mean 'cases'?)",
           "t.yaml:1:1: cases: missing (expected a list of cases, each a mapping with name, vm "
           "and steps)");
    EXPECT("cases: [\n", "t.yaml:2:1: YAML syntax error: did not find expected node content "
                         "(while parsing a flow node at 2:1)");
    EXPECT("cases: []\n---\ncases: []\n",
           "t.yaml:2:1: a second YAML document (expected one test file per file)");
}

static void test_case_errors(void **state)
{
    EXPECT("cases:\n  - vm: {kernel: {path: /k}}\n" STEPS,
           "t.yaml:2:5: cases[0].name: missing (expected a name of 1 to 64 letters, digits, "
           "'.', '_' or '-')");
    EXPECT("cases:\n  - name: a/b\n" VM STEPS,
           "t.yaml:2:11: cases[0].name: 'a/b' is not a valid case name (expected a name of 1 to "
           "64 letters, digits, '.', '_' or '-')");
    EXPECT("cases:\n  - name: a\n" STEPS,
           "t.yaml:2:5: cases[0].vm: missing (expected the path of a VM definition file, or a "
           "mapping of VM settings)");
    EXPECT("cases:\n  - name: a\n" VM,
           "t.yaml:2:5: cases[0].steps: missing (expected a list of steps, each one of expect, "
           "expect-not, send, expect-exit or sleep)");
    EXPECT("cases:\n  - name: a\n" VM STEPS "    timeout: 0s\n",
           "t.yaml:5:14: cases[0].timeout: '0s' is out of range (expected more than 0 and at "
           "most 24h)");
    EXPECT("cases:\n  - name: a\n" VM STEPS "    tiemout: 1s\n",
           "t.yaml:5:5: cases[0].tiemout: unknown key (did you mean 'timeout'?)");
    EXPECT("cases:\n  - {name: a, vm: {kernel: {path: /k}}, steps: [{expect: x}]}\n"
           "  - {name: a, vm: {kernel: {path: /k}}, steps: [{expect: x}]}\n",
           "t.yaml:3:5: cases[1].name: 'a' is the name of cases[0] too (expected each case name "
           "once in a file)");
}

static void test_vm_errors(void **state)
{
    EXPECT("cases:\n  - name: a\n    vm: {cpus: 0, kernel: {path: /k}}\n" STEPS,
           "t.yaml:3:16: cases[0].vm.cpus: '0' is not a valid vCPU count (expected 1 to 254)");
    EXPECT("cases:\n  - name: a\n    vm: {cpus: 1}\n" STEPS,
           "t.yaml:3:9: kernel.path: missing (expected the path of a kernel image: bzImage, ELF "
           "vmlinux or PVH ELF)");
    EXPECT("cases:\n  - name: a\n    vm: {kernal: {path: /k}}\n" STEPS,
           "t.yaml:3:10: cases[0].vm.kernal: unknown key (did you mean 'kernel'?)");
    EXPECT("cases:\n  - name: a\n    vm: [1]\n" STEPS,
           "t.yaml:3:9: cases[0].vm: a list is not valid here (expected the path of a VM "
           "definition file, or a mapping of VM settings)");
    EXPECT("cases:\n  - name: a\n    vm: /nonexistent/vm.yaml\n" STEPS,
           "t.yaml:3:9: cases[0].vm: '/nonexistent/vm.yaml': No such file or directory "
           "(expected a VM definition file)");
}

static void test_step_errors(void **state)
{
#define CASE "cases:\n  - name: a\n" VM "    steps:\n"
    EXPECT(CASE "      - x\n", "t.yaml:5:9: cases[0].steps[0]: 'x' is not valid here (expected a "
                               "mapping with one of expect, expect-not, send, expect-exit or "
                               "sleep)");
    EXPECT(CASE "      - {}\n", "t.yaml:5:9: cases[0].steps[0]: no action (expected one of "
                                "expect, expect-not, send, expect-exit or sleep)");
    EXPECT(CASE "      - {expect: a, send: b}\n",
           "t.yaml:5:27: cases[0].steps[0]: both expect and send (expected one action per step)");
    EXPECT(CASE "      - {expect: \"a(\"}\n",
           "t.yaml:5:18: cases[0].steps[0].expect: 'a(' is not a valid regular expression: "
           "Unmatched ( or \\( (expected a POSIX extended regular expression)");
    EXPECT(CASE "      - {expect: \"\"}\n",
           "t.yaml:5:18: cases[0].steps[0].expect: an empty pattern (expected a POSIX extended "
           "regular expression)");
    EXPECT(CASE "      - {expect-not: }\n",
           "t.yaml:5:22: cases[0].steps[0].expect-not: no value (expected a POSIX extended "
           "regular expression)");
    EXPECT(CASE "      - {expect-exit: -1}\n",
           "t.yaml:5:23: cases[0].steps[0].expect-exit: '-1' is not an exit status (expected 0 "
           "to 255)");
    EXPECT(CASE "      - {expect-exit: 256}\n",
           "t.yaml:5:23: cases[0].steps[0].expect-exit: '256' is not an exit status (expected 0 "
           "to 255)");
    EXPECT(CASE "      - {sleep: forever}\n",
           "t.yaml:5:17: cases[0].steps[0].sleep: 'forever' is not a duration (expected a "
           "duration such as 30s, 500ms or 2m)");
    EXPECT(CASE "      - {sleep: 1s, timeout: 2s}\n",
           "t.yaml:5:30: cases[0].steps[0].timeout: a timeout on a sleep step (expected it only "
           "on expect and expect-exit)");
    EXPECT(CASE "      - {expect: x, wait: 2s}\n",
           "t.yaml:5:21: cases[0].steps[0].wait: unknown key (expected expect, expect-not, send, "
           "expect-exit, sleep or timeout)");
    EXPECT(CASE "      - {expect: x, expect: y}\n",
           "t.yaml:5:21: cases[0].steps[0].expect: duplicate key (expected each key once; the "
           "first is at 5:10)");
    EXPECT(CASE "      - {send: \"${KILN_TEST_UNSET_VARIABLE}\"}\n",
           "t.yaml:5:16: cases[0].steps[0].send: environment variable KILN_TEST_UNSET_VARIABLE "
           "is not set (expected it set, or ${KILN_TEST_UNSET_VARIABLE:-DEFAULT})");
#undef CASE
}

static void test_all_problems_in_one_pass(void **state)
{
    EXPECT("timeout: x\ncases:\n  - name: \"\"\n    vm: {kernel: {path: /k}, memory: 1M}\n"
           "    steps: [{sleep: 0}, {expect-exit: x}]\n",
           "t.yaml:1:10: timeout: 'x' is not a duration (expected a duration such as 30s, 500ms "
           "or 2m)",
           "t.yaml:3:11: cases[0].name: '' is not a valid case name (expected a name of 1 to 64 "
           "letters, digits, '.', '_' or '-')",
           "t.yaml:4:38: cases[0].vm.memory: '1M' is out of range (expected 4M to 1024G)",
           "t.yaml:5:21: cases[0].steps[0].sleep: '0' is out of range (expected more than 0 and "
           "at most 24h)",
           "t.yaml:5:39: cases[0].steps[1].expect-exit: 'x' is not an exit status (expected 0 "
           "to 255)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file),   cmocka_unit_test(test_defaults_and_aliases),
        cmocka_unit_test(test_durations),   cmocka_unit_test(test_file_shape),
        cmocka_unit_test(test_case_errors), cmocka_unit_test(test_vm_errors),
        cmocka_unit_test(test_step_errors), cmocka_unit_test(test_all_problems_in_one_pass),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
