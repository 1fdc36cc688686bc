/* Unit tests for how `kiln test` steps see a console: expect across output chunks and from the
 * previous match on, \r and NUL handling, expect-not once per line, the memory bound; and the
 * JUnit writer's escaping (control characters, bytes that are not UTF-8). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/ktest/ktest.h"

static regex_t compile(const char *pattern)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE), 0);
    return re;
}

static void append(struct ktest_console *c, const char *text)
{
    assert_int_equal(ktest_console_append(c, text, strlen(text)), 0);
}

static void test_expect_across_chunks(void **state)
{
    struct ktest_console c = {0};
    regex_t hello = compile("^Hello, world$");
    assert_false(ktest_console_expect(&c, &hello, false));
    append(&c, "boot\nHel");
    assert_false(ktest_console_expect(&c, &hello, false));
    append(&c, "lo, wor");
    assert_false(ktest_console_expect(&c, &hello, false));
    append(&c, "ld\r\nmore\n");
    assert_true(ktest_console_expect(&c, &hello, false));
    regfree(&hello);
    ktest_console_free(&c);
}

static void test_expect_from_previous_match(void **state)
{
    struct ktest_console c = {0};
    regex_t ok = compile("ok");
    append(&c, "ok 1\n");
    assert_true(ktest_console_expect(&c, &ok, false));
    /* The same "ok" cannot satisfy the next expect. */
    assert_false(ktest_console_expect(&c, &ok, false));
    append(&c, "ok 2\n");
    assert_true(ktest_console_expect(&c, &ok, false));
    /* ^ after a match in the middle of a line is not a line start. */
    regex_t start = compile("^b");
    append(&c, "ab\n");
    regex_t a = compile("a");
    assert_true(ktest_console_expect(&c, &a, false));
    assert_false(ktest_console_expect(&c, &start, false));
    append(&c, "b\n");
    assert_true(ktest_console_expect(&c, &start, false));
    regfree(&ok);
    regfree(&start);
    regfree(&a);
    ktest_console_free(&c);
}

static void test_multiline_and_nul(void **state)
{
    struct ktest_console c = {0};
    regex_t two = compile("one\ntwo");
    append(&c, "one\n");
    assert_false(ktest_console_expect(&c, &two, true));
    append(&c, "two\n");
    assert_true(ktest_console_expect(&c, &two, true));
    assert_int_equal(ktest_console_append(&c, "a\0b\n", 4), 0);
    regex_t ab = compile("^a b$");
    assert_true(ktest_console_expect(&c, &ab, false));
    regfree(&two);
    regfree(&ab);
    ktest_console_free(&c);
}

static void test_forbidden_lines(void **state)
{
    struct ktest_step steps[2] = {{.kind = KTEST_EXPECT}, {.kind = KTEST_EXPECT_NOT}};
    steps[1].regex = compile("Kernel panic");
    steps[1].regex_ok = true;
    struct ktest_console c = {0};
    append(&c, "fine\nKernel pan");
    assert_int_equal(ktest_console_forbidden(&c, steps, 2, false), -1);
    append(&c, "ic - not syncing");
    assert_int_equal(ktest_console_forbidden(&c, steps, 2, false), -1); /* line not complete */
    assert_int_equal(ktest_console_forbidden(&c, steps, 2, true), 1);   /* the VM ended */
    ktest_console_free(&c);
    append(&c, "Kernel panic\n");
    assert_int_equal(ktest_console_forbidden(&c, steps, 2, false), 1);
    /* Each line is checked once. */
    assert_int_equal(ktest_console_forbidden(&c, steps, 2, false), -1);
    regfree(&steps[1].regex);
    ktest_console_free(&c);
}

static void test_memory_bound(void **state)
{
    struct ktest_console c = {0};
    char line[1024];
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 2] = '\n';
    line[sizeof(line) - 1] = '\0';
    for (int i = 0; i < 3000; i++)
        append(&c, line);
    assert_true(c.len <= KTEST_CONSOLE_MAX);
    append(&c, "the end\n");
    regex_t end = compile("^the end$");
    assert_true(ktest_console_expect(&c, &end, false));
    const char *tail = ktest_console_tail(&c, 100);
    assert_true(strlen(tail) <= 100);
    assert_string_equal(tail, "the end\n");
    regfree(&end);
    ktest_console_free(&c);
}

static void test_last_lines(void **state)
{
    assert_string_equal(ktest_last_lines("a\nb\nc\n", 2), "b\nc\n");
    assert_string_equal(ktest_last_lines("a\nb\nc", 2), "b\nc");
    assert_string_equal(ktest_last_lines("a\n", 5), "a\n");
    assert_string_equal(ktest_last_lines(NULL, 5), "");
}

static char *escaped(const char *text)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&buf, &size);
    ktest_xml_escape(out, text);
    fclose(out);
    return buf;
}

static void test_xml_escape(void **state)
{
    char *s = escaped("<a href=\"x\">&'</a>\n\tok");
    assert_string_equal(s, "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;\n\tok");
    free(s);
    s = escaped("bell\a esc\x1b[0m \xff \xc3\xa9 \xe2\x82\xac \xef\xbf\xbf");
    assert_string_equal(s, "bell\\x07 esc\\x1b[0m \\xff \xc3\xa9 \xe2\x82\xac \\xef\\xbf\\xbf");
    free(s);
}

static void test_junit(void **state)
{
    struct ktest_case a = {.name = "a", .suite = "s", .file = "s.yaml", .line = 3};
    struct ktest_case b = {.name = "b<", .suite = "s", .file = "s.yaml", .line = 9};
    struct ktest_case c = {.name = "c", .suite = "t", .file = "t.yaml", .line = 2};
    const struct ktest_case *cases[] = {&a, &c, &b};
    struct ktest_result results[3] = {
        {.outcome = KTEST_PASS, .seconds = 0.5, .console = "hi\n"},
        {.outcome = KTEST_SKIP, .message = "later"},
        {.outcome = KTEST_TIMEOUT,
         .seconds = 2,
         .message = "step 1: timed out",
         .console = "x\x01y\n",
         .kiln_stderr = "kiln: error: z\n"},
    };
    char *buf = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&buf, &size);
    assert_int_equal(ktest_junit_write(out, cases, results, 3), 0);
    fclose(out);
    assert_non_null(strstr(buf, "<testsuites name=\"kiln test\" tests=\"3\" failures=\"1\" "
                                "errors=\"0\" skipped=\"1\""));
    /* Suites in order of appearance, each with its cases. */
    const char *s = strstr(buf, "<testsuite name=\"s\" file=\"s.yaml\" tests=\"2\" failures=\"1\"");
    const char *t = strstr(buf, "<testsuite name=\"t\" file=\"t.yaml\" tests=\"1\" failures=\"0\" "
                                "errors=\"0\" skipped=\"1\"");
    assert_non_null(s);
    assert_non_null(t);
    assert_true(s < t);
    const char *bcase = strstr(buf, "<testcase name=\"b&lt;\" classname=\"s\"");
    assert_non_null(bcase);
    assert_true(bcase < t);
    assert_non_null(strstr(buf, "<failure type=\"timeout\" message=\"step 1: timed out\">"));
    assert_non_null(strstr(buf, "<system-out>x\\x01y\n</system-out>"));
    assert_non_null(strstr(buf, "<system-err>kiln: error: z\n</system-err>"));
    assert_non_null(strstr(buf, "<skipped message=\"later\"/>"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expect_across_chunks),
        cmocka_unit_test(test_expect_from_previous_match),
        cmocka_unit_test(test_multiline_and_nul),
        cmocka_unit_test(test_forbidden_lines),
        cmocka_unit_test(test_memory_bound),
        cmocka_unit_test(test_last_lines),
        cmocka_unit_test(test_xml_escape),
        cmocka_unit_test(test_junit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
