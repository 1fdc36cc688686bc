/* JUnit XML for `kiln test --junit`: one <testsuite> per test file, a <testcase> per case with
 * <failure> or <skipped>, and the end of the console (and kiln's stderr) as system-out/-err.
 * Console bytes XML cannot carry are written as \xHH so the file always parses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln/ktest/ktest.h"
#include "kiln/util/utf8.h"

/* Length of a UTF-8 sequence at p that XML can hold, or 0: U+FFFE and U+FFFF are not XML
 * characters. */
static size_t xml_char_len(const unsigned char *p, size_t n)
{
    size_t len = utf8_sequence_length(p, n);
    if (len == 3 && p[0] == 0xef && p[1] == 0xbf && (p[2] == 0xbe || p[2] == 0xbf))
        return 0;
    return len;
}

void ktest_xml_escape(FILE *out, const char *text)
{
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    const unsigned char *end = p + strlen((const char *)p);
    while (*p) {
        switch (*p) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&apos;", out);
            break;
        default: {
            if (*p < 0x20 && *p != '\n' && *p != '\t' && *p != '\r') {
                fprintf(out, "\\x%02x", *p);
                break;
            }
            size_t len = xml_char_len(p, (size_t)(end - p));
            if (len == 0) {
                fprintf(out, "\\x%02x", *p);
                break;
            }
            fwrite(p, 1, len, out);
            p += len - 1;
        }
        }
        p++;
    }
}

static bool same_suite(const struct ktest_case *a, const struct ktest_case *b)
{
    return strcmp(a->suite, b->suite) == 0 && strcmp(a->file, b->file) == 0;
}

static void write_case(FILE *out, const struct ktest_case *tc, const struct ktest_result *res)
{
    fputs("    <testcase name=\"", out);
    ktest_xml_escape(out, tc->name);
    fputs("\" classname=\"", out);
    ktest_xml_escape(out, tc->suite);
    fputs("\" file=\"", out);
    ktest_xml_escape(out, tc->file);
    fprintf(out, "\" line=\"%u\" time=\"%.3f\">\n", tc->line, res->seconds);
    if (res->outcome == KTEST_SKIP) {
        fputs("      <skipped message=\"", out);
        ktest_xml_escape(out, res->message);
        fputs("\"/>\n", out);
    } else if (res->outcome != KTEST_PASS) {
        fprintf(out, "      <failure type=\"%s\" message=\"",
                res->outcome == KTEST_TIMEOUT ? "timeout" : "failure");
        ktest_xml_escape(out, res->message);
        fputs("\">", out);
        ktest_xml_escape(out, res->message);
        if (res->log_path) {
            fputs("\nconsole log: ", out);
            ktest_xml_escape(out, res->log_path);
        }
        fputs("\nlast console lines:\n", out);
        ktest_xml_escape(out, ktest_last_lines(res->console, 20));
        fputs("</failure>\n", out);
    }
    if (res->console && *res->console) {
        fputs("      <system-out>", out);
        ktest_xml_escape(out, res->console);
        fputs("</system-out>\n", out);
    }
    if (res->kiln_stderr && *res->kiln_stderr) {
        fputs("      <system-err>", out);
        ktest_xml_escape(out, res->kiln_stderr);
        fputs("</system-err>\n", out);
    }
    fputs("    </testcase>\n", out);
}

struct counts {
    size_t tests, failures, skipped;
    double seconds;
};

static void count(struct counts *c, const struct ktest_result *res)
{
    c->tests++;
    c->failures += res->outcome == KTEST_FAIL || res->outcome == KTEST_TIMEOUT;
    c->skipped += res->outcome == KTEST_SKIP;
    c->seconds += res->seconds;
}

int ktest_junit_write(FILE *out, const struct ktest_case *const *cases,
                      const struct ktest_result *results, size_t n)
{
    struct counts all = {0};
    for (size_t i = 0; i < n; i++)
        count(&all, &results[i]);
    char stamp[32] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", out);
    fprintf(out,
            "<testsuites name=\"kiln test\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" "
            "skipped=\"%zu\" time=\"%.3f\">\n",
            all.tests, all.failures, all.skipped, all.seconds);
    bool *written = calloc(n ? n : 1, sizeof(*written));
    if (!written)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (written[i])
            continue;
        struct counts suite = {0};
        for (size_t j = i; j < n; j++)
            if (same_suite(cases[i], cases[j]))
                count(&suite, &results[j]);
        fputs("  <testsuite name=\"", out);
        ktest_xml_escape(out, cases[i]->suite);
        fputs("\" file=\"", out);
        ktest_xml_escape(out, cases[i]->file);
        fprintf(out,
                "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"%zu\" time=\"%.3f\" "
                "timestamp=\"%s\">\n",
                suite.tests, suite.failures, suite.skipped, suite.seconds, stamp);
        for (size_t j = i; j < n; j++) {
            if (!written[j] && same_suite(cases[i], cases[j])) {
                write_case(out, cases[j], &results[j]);
                written[j] = true;
            }
        }
        fputs("  </testsuite>\n", out);
    }
    free(written);
    fputs("</testsuites>\n", out);
    return ferror(out) ? -1 : 0;
}
