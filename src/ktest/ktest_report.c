/* What `kiln test` prints as each case ends: one result line (or a TAP line), and for a failure
 * the step, what was expected, the last console lines and kiln's own errors; then a summary. */
#include <string.h>

#include "kiln/ktest/ktest.h"

#define TAIL_LINES 10

void ktest_report_start(struct ktest_report *report, FILE *out, bool tap, size_t total)
{
    memset(report, 0, sizeof(*report));
    report->out = out;
    report->tap = tap;
    report->total = total;
    if (tap)
        fprintf(out, "TAP version 13\n1..%zu\n", total);
    fflush(out);
}

/* Each line of text with prefix before it (text may lack a final newline). */
static void print_lines(FILE *out, const char *prefix, const char *text)
{
    while (*text) {
        const char *nl = strchr(text, '\n');
        size_t len = nl ? (size_t)(nl - text) : strlen(text);
        fprintf(out, "%s%.*s\n", prefix, (int)len, text);
        text += len + (nl ? 1 : 0);
    }
}

static void print_details(FILE *out, const char *indent, const struct ktest_result *result)
{
    char prefix[32];
    fprintf(out, "%s%s\n", indent, result->message[0] ? result->message : "failed");
    if (result->log_path)
        fprintf(out, "%sconsole log: %s\n", indent, result->log_path);
    const char *tail = ktest_last_lines(result->console, TAIL_LINES);
    if (*tail) {
        fprintf(out, "%slast console lines:\n", indent);
        snprintf(prefix, sizeof(prefix), "%s| ", indent);
        print_lines(out, prefix, tail);
    }
    const char *errors = ktest_last_lines(result->kiln_stderr, TAIL_LINES);
    if (*errors) {
        fprintf(out, "%skiln said:\n", indent);
        snprintf(prefix, sizeof(prefix), "%s! ", indent);
        print_lines(out, prefix, errors);
    }
}

static const char *outcome_word(enum ktest_outcome outcome)
{
    switch (outcome) {
    case KTEST_PASS:
        return "PASS";
    case KTEST_FAIL:
        return "FAIL";
    case KTEST_TIMEOUT:
        return "TIMEOUT";
    case KTEST_SKIP:
        return "SKIP";
    }
    return "?";
}

void ktest_report_case(struct ktest_report *report, const struct ktest_case *tc,
                       const struct ktest_result *result)
{
    FILE *out = report->out;
    report->reported++;
    switch (result->outcome) {
    case KTEST_PASS:
        report->passed++;
        break;
    case KTEST_SKIP:
        report->skipped++;
        break;
    case KTEST_TIMEOUT:
        report->timed_out++;
        /* fall through */
    case KTEST_FAIL:
        report->failed++;
        break;
    }
    if (report->tap) {
        if (result->outcome == KTEST_SKIP) {
            fprintf(out, "ok %zu - %s/%s # SKIP %s\n", report->reported, tc->suite, tc->name,
                    result->message);
        } else if (result->outcome == KTEST_PASS) {
            fprintf(out, "ok %zu - %s/%s # time=%.2fs\n", report->reported, tc->suite, tc->name,
                    result->seconds);
        } else {
            fprintf(out, "not ok %zu - %s/%s%s # time=%.2fs\n", report->reported, tc->suite,
                    tc->name, result->outcome == KTEST_TIMEOUT ? " (timed out)" : "",
                    result->seconds);
            print_details(out, "# ", result);
        }
    } else if (result->outcome == KTEST_SKIP) {
        fprintf(out, "%-8s %s/%s (%s)\n", "SKIP", tc->suite, tc->name, result->message);
    } else {
        fprintf(out, "%-8s %s/%s (%.2fs)\n", outcome_word(result->outcome), tc->suite, tc->name,
                result->seconds);
        if (result->outcome != KTEST_PASS)
            print_details(out, "         ", result);
    }
    fflush(out);
}

void ktest_report_summary(struct ktest_report *report)
{
    char timed_out[48] = "";
    if (report->timed_out)
        snprintf(timed_out, sizeof(timed_out), " (%zu timed out)", report->timed_out);
    fprintf(report->out, "%s%zu passed, %zu failed%s, %zu skipped\n", report->tap ? "# " : "",
            report->passed, report->failed, timed_out, report->skipped);
    fflush(report->out);
}
