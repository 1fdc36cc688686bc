/* The `kiln test` command: its flags, loading every test file (all problems, one line each),
 * choosing cases with --filter, running them, and the reports (lines or TAP, JUnit XML). */
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "kiln/ktest/ktest.h"
#include "kiln/vm/stop.h"

#define MAX_JOBS     64
#define DEFAULT_LOGS "kiln-test-logs"

struct test_args {
    const char **files;
    size_t nfiles;
    const char **filters;
    size_t nfilters;
    const char *junit, *logs;
    bool tap;
    unsigned jobs;
};

static const char *const test_flags[] = {"--junit",  "--tap",  "--jobs", "--logs",
                                         "--filter", "--help", "-h"};

static void print_test_help(FILE *out)
{
    fprintf(out,
            "usage: kiln test FILE... [--junit OUT.xml] [--tap] [--jobs N] [--logs DIR]\n"
            "                 [--filter GLOB]...\n"
            "\n"
            "Runs the cases of each test file (docs/kiln-test.md): boots each case's VM, runs its\n"
            "steps against the console, prints one line per case and a summary.\n"
            "\n"
            "  --junit OUT.xml   also write the results as JUnit XML\n"
            "  --tap             print TAP (version 13) instead of the result lines\n"
            "  --jobs N          run N VMs at a time, 1-%d (default: 1)\n"
            "  --logs DIR        keep each case's console log in DIR (default: %s)\n"
            "  --filter GLOB     only cases whose NAME or FILE/NAME matches (repeatable)\n"
            "\n"
            "exit status: 0 every case passed (or was skipped), 1 a case failed or timed out,\n"
            "125 a bad flag or test file (nothing run), 130/143 stopped by SIGINT/SIGTERM\n",
            MAX_JOBS, DEFAULT_LOGS);
}

static int add_item(const char ***items, size_t *n, const char *item)
{
    const char **grown = realloc(*items, (*n + 1) * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    grown[(*n)++] = item;
    *items = grown;
    return 0;
}

static int parse_jobs(const char *value, unsigned *jobs, struct error *err)
{
    char *end = NULL;
    errno = 0;
    long n = strtol(value, &end, 10);
    if (value[0] < '0' || value[0] > '9' || *end || errno || n < 1 || n > MAX_JOBS) {
        char quoted[CONFIG_QUOTE_SIZE];
        return error_fmt(err, -EINVAL, "--jobs: '%s' is not a job count (expected 1 to %d)",
                         config_quote(value, quoted, sizeof(quoted)), MAX_JOBS);
    }
    *jobs = (unsigned)n;
    return 0;
}

/* Returns 1 for --help, 0 when parsed, a negative errno with err filled otherwise. */
static int parse_test_args(int argc, char **argv, struct test_args *a, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE];
    a->jobs = 1;
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return 1;
        if (arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (add_item(&a->files, &a->nfiles, arg) < 0)
                return error_fmt(err, -ENOMEM, "out of memory");
            continue;
        }
        size_t len = strcspn(arg, "=");
        if (strncmp(arg, "--tap", len) == 0 && len == 5) {
            if (arg[len])
                return error_fmt(err, -EINVAL, "--tap takes no value (expected '--tap' alone)");
            a->tap = true;
            continue;
        }
        const char *names[] = {"--junit", "--jobs", "--logs", "--filter"};
        size_t k = 0;
        while (k < 4 && !(strlen(names[k]) == len && strncmp(names[k], arg, len) == 0))
            k++;
        if (k == 4) {
            snprintf(quoted, sizeof(quoted), "%.*s", (int)len, arg);
            const char *guess = config_closest(arg, len, test_flags, 7);
            char q[CONFIG_QUOTE_SIZE];
            config_quote(quoted, q, sizeof(q));
            if (guess)
                return error_fmt(err, -EINVAL,
                                 "unknown flag '%s' for 'kiln test' (did you mean '%s'?)", q,
                                 guess);
            return error_fmt(err, -EINVAL,
                             "unknown flag '%s' for 'kiln test' (see 'kiln test --help')", q);
        }
        const char *value = arg[len] ? arg + len + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (!value || !*value)
            return error_fmt(err, -EINVAL, "%s: missing value (expected %s)", names[k],
                             k == 0   ? "the path of the JUnit XML file to write"
                             : k == 1 ? "a job count from 1 to 64"
                             : k == 2 ? "a folder for the console logs"
                                      : "a glob pattern such as 'hello*'");
        if (k == 0 && a->junit)
            return error_fmt(err, -EINVAL, "--junit given twice (expected it once)");
        if (k == 2 && a->logs)
            return error_fmt(err, -EINVAL, "--logs given twice (expected it once)");
        int r = 0;
        if (k == 0)
            a->junit = value;
        else if (k == 1)
            r = parse_jobs(value, &a->jobs, err);
        else if (k == 2)
            a->logs = value;
        else if (add_item(&a->filters, &a->nfilters, value) < 0)
            r = error_fmt(err, -ENOMEM, "out of memory");
        if (r < 0)
            return r;
    }
    if (a->nfiles == 0)
        return error_fmt(
            err, -EINVAL,
            "missing test file (expected 'kiln test FILE...'; see 'kiln test --help')");
    return 0;
}

static bool selected(const struct test_args *a, const struct ktest_case *tc)
{
    if (a->nfilters == 0)
        return true;
    char full[2 * KTEST_MAX_NAME + PATH_MAX];
    snprintf(full, sizeof(full), "%s/%s", tc->suite, tc->name);
    for (size_t i = 0; i < a->nfilters; i++)
        if (fnmatch(a->filters[i], tc->name, 0) == 0 || fnmatch(a->filters[i], full, 0) == 0)
            return true;
    return false;
}

/* mkdir -p */
static int make_dirs(const char *path, struct error *err)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return error_fmt(err, -ENAMETOOLONG, "--logs: the path is too long");
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return error_fmt(err, -errno, "--logs: cannot create '%s': %s", buf, strerror(errno));
        *p = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return error_fmt(err, -ENOTDIR, "--logs: '%s' is not a folder", path);
    return 0;
}

/* Loads every file; prints every problem; returns false if there was any. */
static bool load_files(const struct test_args *a, struct ktest_file *files)
{
    bool ok = true;
    for (size_t i = 0; i < a->nfiles; i++) {
        struct config_problems problems = {.count = 0};
        if (ktest_file_load(a->files[i], &files[i], &problems) < 0)
            ok = false;
        for (unsigned j = 0; j < problems.count; j++)
            fprintf(stderr, "kiln: error: %s\n", problems.lines[j]);
        if (problems.dropped)
            fprintf(stderr, "kiln: error: ... and %u more problem%s\n", problems.dropped,
                    problems.dropped == 1 ? "" : "s");
        ok = ok && config_problems_total(&problems) == 0;
        config_problems_free(&problems);
    }
    return ok;
}

static void on_case_done(void *ctx, size_t index, const struct ktest_case *tc,
                         const struct ktest_result *result)
{
    ktest_report_case(ctx, tc, result);
}

static int write_junit(const char *path, const struct ktest_case *const *cases,
                       const struct ktest_result *results, size_t n)
{
    FILE *out = fopen(path, "we");
    if (!out) {
        fprintf(stderr, "kiln: error: --junit: cannot write '%s': %s\n", path, strerror(errno));
        return -1;
    }
    int r = ktest_junit_write(out, cases, results, n);
    if (fclose(out) != 0 || r < 0) {
        fprintf(stderr, "kiln: error: --junit: writing '%s' failed\n", path);
        return -1;
    }
    return 0;
}

static int run_cases(const struct test_args *a, const struct ktest_case *const *cases, size_t n)
{
    struct error err = {{0}};
    const char *logs = a->logs ? a->logs : DEFAULT_LOGS;
    if (make_dirs(logs, &err) < 0) {
        fprintf(stderr, "kiln: error: %s\n", err.msg);
        return EXIT_KILN_ERROR;
    }
    char exe[PATH_MAX];
    size_t size = sizeof(exe);
    if (uv_exepath(exe, &size) != 0) {
        fprintf(stderr, "kiln: error: cannot find the kiln binary (/proc/self/exe)\n");
        return EXIT_KILN_ERROR;
    }
    struct ktest_result *results = calloc(n, sizeof(*results));
    if (!results) {
        fprintf(stderr, "kiln: error: out of memory\n");
        return EXIT_KILN_ERROR;
    }
    struct ktest_report report;
    ktest_report_start(&report, stdout, a->tap, n);
    struct ktest_runner_options options = {
        .jobs = a->jobs,
        .logs_dir = logs,
        .kiln_path = exe,
        .skip_without_kvm = true,
        .done = on_case_done,
        .ctx = &report,
    };
    int r = ktest_run(cases, n, results, &options, &err);
    int status = 0;
    if (r < 0 && r != -EINTR) {
        fprintf(stderr, "kiln: error: %s\n", err.msg);
        status = EXIT_KILN_ERROR;
    } else {
        ktest_report_summary(&report);
        if (a->junit && write_junit(a->junit, cases, results, n) < 0)
            status = EXIT_FAILURE;
        if (report.failed)
            status = EXIT_FAILURE;
        if (r == -EINTR)
            status = strstr(err.msg, "SIGINT") ? 130 : 143;
    }
    for (size_t i = 0; i < n; i++)
        ktest_result_free(&results[i]);
    free(results);
    return status;
}

int ktest_main(int argc, char **argv)
{
    struct test_args a = {0};
    struct error err = {{0}};
    int r = parse_test_args(argc, argv, &a, &err);
    if (r != 0) {
        if (r > 0)
            print_test_help(stdout);
        else
            fprintf(stderr, "kiln: error: %s\n", err.msg);
        free(a.files);
        free(a.filters);
        return r > 0 ? 0 : EXIT_KILN_ERROR;
    }
    struct ktest_file *files = calloc(a.nfiles, sizeof(*files));
    int status = EXIT_KILN_ERROR;
    const struct ktest_case **cases = NULL;
    size_t n = 0, total = 0;
    if (!files) {
        fprintf(stderr, "kiln: error: out of memory\n");
    } else if (load_files(&a, files)) {
        for (size_t i = 0; i < a.nfiles; i++)
            total += files[i].ncases;
        cases = calloc(total ? total : 1, sizeof(*cases));
        for (size_t i = 0; cases && i < a.nfiles; i++)
            for (unsigned j = 0; j < files[i].ncases; j++)
                if (selected(&a, &files[i].cases[j]))
                    cases[n++] = &files[i].cases[j];
        if (!cases)
            fprintf(stderr, "kiln: error: out of memory\n");
        else if (n == 0)
            fprintf(stderr, "kiln: error: --filter: no case matches (expected a pattern such as "
                            "'hello*' or 'FILE/NAME')\n");
        else
            status = run_cases(&a, cases, n);
    }
    for (size_t i = 0; files && i < a.nfiles; i++)
        ktest_file_free(&files[i]);
    free(files);
    free(cases);
    free(a.files);
    free(a.filters);
    return status;
}
