/* The quick form of `kiln test`: `kiln run ... --expect REGEX [--timeout DURATION]` runs the
 * VM as a one-case test, echoing its console, and exits 0 once the console matches; 1 with
 * the step, the last console lines and kiln's errors on stderr when it ends or times out. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "kiln/ktest/ktest.h"
#include "kiln/vm/stop.h"

#define DEFAULT_EXPECT_TIMEOUT_MS (60 * 1000)

/* --expect REGEX, --expect=REGEX: the value is the next word whatever it looks like. */
static int take_value(int *argc, char **argv, int i, const char *name, const char **value,
                      struct error *err)
{
    size_t len = strlen(name);
    int words = argv[i][len] == '=' ? 1 : 2;
    if (words == 2 && i + 1 >= *argc)
        return error_fmt(err, -EINVAL, "%s: missing value (expected %s)", name,
                         strcmp(name, "--expect") == 0 ? "a regular expression, e.g. 'login:'"
                                                       : KTEST_DURATION_EXPECTED);
    if (*value)
        return error_fmt(err, -EINVAL, "%s given twice (expected it once)", name);
    *value = words == 1 ? argv[i] + len + 1 : argv[i + 1];
    memmove(&argv[i], &argv[i + words], (size_t)(*argc - i - words + 1) * sizeof(*argv));
    *argc -= words;
    return 0;
}

static bool is_flag(const char *arg, const char *name)
{
    size_t len = strlen(name);
    return strncmp(arg, name, len) == 0 && (arg[len] == '\0' || arg[len] == '=');
}

int ktest_expect_extract(int *argc, char **argv, const char **regex, uint64_t *timeout_ms,
                         struct error *err)
{
    if (*argc < 2 || strcmp(argv[1], "run") != 0)
        return 0;
    const char *timeout = NULL;
    *regex = NULL;
    for (int i = 2; i < *argc;) {
        int r = 0;
        if (is_flag(argv[i], "--expect"))
            r = take_value(argc, argv, i, "--expect", regex, err);
        else if (is_flag(argv[i], "--timeout"))
            r = take_value(argc, argv, i, "--timeout", &timeout, err);
        else
            i++;
        if (r < 0)
            return r;
    }
    if (!*regex && !timeout)
        return 0;
    char quoted[CONFIG_QUOTE_SIZE];
    if (!*regex)
        return error_fmt(err, -EINVAL,
                         "--timeout: needs --expect (expected --expect REGEX "
                         "--timeout DURATION)");
    if (!**regex)
        return error_fmt(err, -EINVAL,
                         "--expect: an empty pattern (expected a regular "
                         "expression, e.g. 'login:')");
    *timeout_ms = DEFAULT_EXPECT_TIMEOUT_MS;
    if (timeout) {
        int r = ktest_parse_duration(timeout, timeout_ms);
        config_quote(timeout, quoted, sizeof(quoted));
        if (r == -ERANGE)
            return error_fmt(err, r,
                             "--timeout: '%s' is out of range (expected more than 0 and "
                             "at most 24h)",
                             quoted);
        if (r < 0)
            return error_fmt(
                err, r, "--timeout: '%s' is not a duration (expected " KTEST_DURATION_EXPECTED ")",
                quoted);
    }
    return 1;
}

static void print_failure(const struct ktest_result *res)
{
    fprintf(stderr, "kiln: --expect: %s\n", res->message);
    const char *tail = ktest_last_lines(res->console, 10);
    if (*tail) {
        fprintf(stderr, "kiln: last console lines:\n%s", tail);
        if (tail[strlen(tail) - 1] != '\n')
            fputc('\n', stderr);
    }
}

int ktest_expect_run(const struct vm_config *config, const char *regex, uint64_t timeout_ms)
{
    struct ktest_step step = {.kind = KTEST_EXPECT, .text = (char *)regex, .line = 0};
    int rc = regcomp(&step.regex, regex, REG_EXTENDED | REG_NEWLINE);
    if (rc != 0) {
        char why[128], quoted[CONFIG_QUOTE_SIZE];
        regerror(rc, &step.regex, why, sizeof(why));
        fprintf(stderr,
                "kiln: error: --expect: '%s' is not a valid regular expression: %s (expected a "
                "POSIX extended regular expression)\n",
                config_quote(regex, quoted, sizeof(quoted)), why);
        return EXIT_KILN_ERROR;
    }
    step.regex_ok = true;
    struct ktest_case tc = {.name = "expect",
                            .suite = "kiln-run",
                            .file = "--expect",
                            .vm = *config,
                            .timeout_ms = timeout_ms,
                            .steps = &step,
                            .nsteps = 1};
    char exe[PATH_MAX];
    size_t size = sizeof(exe);
    if (uv_exepath(exe, &size) != 0) {
        regfree(&step.regex);
        fprintf(stderr, "kiln: error: cannot find the kiln binary (/proc/self/exe)\n");
        return EXIT_KILN_ERROR;
    }
    /* Like kiln run: the VM reads our stdin (a terminal included: the child makes it raw). */
    struct ktest_runner_options options = {
        .jobs = 1, .kiln_path = exe, .echo = stdout, .inherit_stdin = true};
    const struct ktest_case *cases[] = {&tc};
    struct ktest_result result;
    struct error err = {{0}};
    int r = ktest_run(cases, 1, &result, &options, &err);
    regfree(&step.regex);
    int status = EXIT_FAILURE;
    if (result.kiln_stderr)
        fputs(result.kiln_stderr, stderr);
    if (r < 0 && r != -EINTR)
        fprintf(stderr, "kiln: error: %s\n", err.msg);
    else if (result.outcome == KTEST_PASS)
        status = EXIT_SUCCESS;
    else
        print_failure(&result);
    if (result.outcome != KTEST_PASS && result.exit_status == EXIT_KILN_ERROR)
        status = EXIT_KILN_ERROR; /* the VM could not start: say so, as kiln run does */
    ktest_result_free(&result);
    return status;
}
