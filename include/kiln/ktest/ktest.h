/* `kiln test`: scripted test boots. A test file (YAML, docs/kiln-test.md) lists cases; each
 * boots a VM as a child `kiln run` and runs steps against its console (expect, expect-not,
 * send, expect-exit, sleep). Parsing, running, and the reports (lines, TAP, JUnit XML). */
#ifndef KILN_KTEST_H
#define KILN_KTEST_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "kiln/config/config.h"
#include "kiln/config/config_yaml.h"
#include "kiln/util/error.h"

#define KTEST_DEFAULT_TIMEOUT_MS (60 * 1000)
#define KTEST_MAX_DURATION_MS    (24ULL * 3600 * 1000)
#define KTEST_MAX_NODES          20000 /* a test file may hold many cases */
#define KTEST_MAX_NAME           64

enum ktest_step_kind {
    KTEST_EXPECT,      /* wait until the console matches regex */
    KTEST_EXPECT_NOT,  /* the case fails if any console line ever matches regex */
    KTEST_SEND,        /* write text to the console's input */
    KTEST_EXPECT_EXIT, /* wait for the VM to end; its status must be status */
    KTEST_SLEEP,       /* wait ms */
};

struct ktest_step {
    enum ktest_step_kind kind;
    char *text;      /* the regex (expect, expect-not) or the bytes to send */
    size_t text_len; /* send: bytes in text (it may hold NULs) */
    regex_t regex;   /* compiled when regex_ok */
    bool regex_ok;
    int status;            /* expect-exit: 0..255 */
    uint64_t ms;           /* sleep: how long; expect/expect-exit: own timeout (0: the case's) */
    unsigned line, column; /* where the step is in its file (1-based) */
};

struct ktest_case {
    char *name;  /* unique within its file: letters, digits, '.', '_', '-' */
    char *suite; /* the test file's name without folder and .yaml: "guestkit" */
    char *file;  /* the test file as named */
    unsigned line, column;
    struct vm_config vm;              /* loaded (and checked) VM; its console is replaced */
    struct config_yaml_origin origin; /* where vm's values were, for messages */
    uint64_t timeout_ms;
    char *skip; /* reason to skip, or NULL */
    struct ktest_step *steps;
    unsigned nsteps;
};

struct ktest_file {
    char *path;
    struct ktest_case *cases;
    unsigned ncases;
};

/* Loads the test file at path: every problem goes to problems as "FILE:LINE:COLUMN: KEY: what
 * is wrong (expected ...)" (the VM files it names report their own). Returns 0 when the file
 * and every case are right, else the first problem's negative errno. Free with
 * ktest_file_free (also after a failure). */
int ktest_file_load(const char *path, struct ktest_file *file, struct config_problems *problems);
/* The same from memory: name starts messages, dir is the folder relative paths are resolved
 * against (NULL: as written). */
int ktest_file_load_buffer(const char *name, const char *dir, const char *data, size_t size,
                           struct ktest_file *file, struct config_problems *problems);
void ktest_file_free(struct ktest_file *file);
void ktest_case_free(struct ktest_case *tc);

/* "30s", "500ms", "2m", "1h", "1.5s"; a plain number is seconds. 0 < duration <= 24 h.
 * Returns 0 or -EINVAL / -ERANGE. */
int ktest_parse_duration(const char *text, uint64_t *ms);
#define KTEST_DURATION_EXPECTED "a duration such as 30s, 500ms or 2m"
/* "2.5s", "120ms" into buf. */
const char *ktest_duration_text(uint64_t ms, char *buf, size_t size);
/* The checks `kiln run` makes on tc's VM and the files it names, each problem named where the
 * test file (or VM file) set the value. */
void ktest_case_check_files(const struct ktest_case *tc, struct config_problems *problems);
/* A step as the file wrote it, for reports: "expect 'login:'". */
const char *ktest_step_text(const struct ktest_step *step, char *buf, size_t size);

/* A case's console output as the steps see it: '\r' dropped and NUL bytes made spaces, the
 * newest KTEST_CONSOLE_MAX bytes at most. Offsets are absolute (bytes ever appended). */
#define KTEST_CONSOLE_MAX (1024 * 1024)
struct ktest_console {
    char *buf;             /* NUL-terminated */
    size_t len, cap;       /* bytes held */
    size_t dropped;        /* bytes dropped from the front */
    size_t expect_from;    /* the next expect looks from here: the previous match's end */
    size_t expect_scanned; /* the current expect has looked at everything before this */
    size_t lines_checked;  /* expect-not has looked at the lines before this */
};
int ktest_console_append(struct ktest_console *c, const char *data, size_t n);
/* Does the output since the previous match match re? If so, the next expect starts after it. */
bool ktest_console_expect(struct ktest_console *c, const regex_t *re, bool multiline);
/* The index of an expect-not step of steps whose pattern matches a console line not checked
 * before (complete lines; with final, the unfinished last one too), or -1. */
int ktest_console_forbidden(struct ktest_console *c, const struct ktest_step *steps,
                            unsigned nsteps, bool final);
/* The newest at most max bytes held, starting at a line start where it can. */
const char *ktest_console_tail(const struct ktest_console *c, size_t max);
void ktest_console_free(struct ktest_console *c);

enum ktest_outcome { KTEST_PASS, KTEST_FAIL, KTEST_TIMEOUT, KTEST_SKIP };

struct ktest_result {
    enum ktest_outcome outcome;
    double seconds;
    int failed_step;    /* index, or -1 (none, or not one step's fault) */
    char message[1024]; /* one line: what went wrong, or why skipped */
    char *console;      /* the end of the console output (at most KTEST_KEEP_CONSOLE bytes) */
    char *kiln_stderr;  /* the end of the child kiln's stderr */
    char *log_path;     /* the console log file, or NULL */
    pid_t pid;          /* the VM's kiln process (0: none started) */
    int exit_status;    /* -1: not exited by itself (killed, or never started) */
};
#define KTEST_KEEP_CONSOLE (64 * 1024)

void ktest_result_free(struct ktest_result *result);
/* The last n lines of text (a pointer into it). */
const char *ktest_last_lines(const char *text, unsigned n);

struct ktest_runner_options {
    unsigned jobs;         /* VMs at a time, >= 1 */
    const char *logs_dir;  /* console logs go here (created); NULL: none kept */
    const char *kiln_path; /* the kiln binary the cases run */
    FILE *echo;            /* copy every console byte here as it comes (NULL: no) */
    bool skip_without_kvm; /* no KVM device: skip the cases ("no /dev/kvm") instead of failing */
    bool inherit_stdin;    /* the VMs read our stdin (no send steps) instead of a pipe */
    /* Called as each case ends, in the order they end (index: into the cases given). */
    void (*done)(void *ctx, size_t index, const struct ktest_case *tc,
                 const struct ktest_result *result);
    void *ctx;
};

/* Runs cases (results[i] for cases[i]), at most options->jobs at a time, each VM a child
 * process group killed at its case's end. Returns 0 when every case ran to a verdict, or a
 * negative errno with err filled (the loop could not start; or SIGINT/SIGTERM: -EINTR, the
 * VMs killed and the unfinished cases failed). */
int ktest_run(const struct ktest_case *const *cases, size_t n, struct ktest_result *results,
              const struct ktest_runner_options *options, struct error *err);

/* The one-line results and summary of `kiln test` (human or TAP), as cases end. */
struct ktest_report {
    FILE *out;
    bool tap;
    size_t total, passed, failed, skipped, timed_out, reported;
};
void ktest_report_start(struct ktest_report *report, FILE *out, bool tap, size_t total);
void ktest_report_case(struct ktest_report *report, const struct ktest_case *tc,
                       const struct ktest_result *result);
void ktest_report_summary(struct ktest_report *report);

/* JUnit XML for the cases (one testsuite per suite, in order of appearance). */
int ktest_junit_write(FILE *out, const struct ktest_case *const *cases,
                      const struct ktest_result *results, size_t n);
/* text as XML character data: &<>"' escaped; control characters XML cannot hold and bytes
 * that are not UTF-8 written as \xHH. */
void ktest_xml_escape(FILE *out, const char *text);

/* A VM started by the runner has KTEST_RUNNER_ENV=<the runner's pid> in its environment;
 * ktest_child_setup (first thing in main) then makes it die with the runner (-ESRCH: the
 * runner is already gone). Does nothing without the variable. */
#define KTEST_RUNNER_ENV "KILN_TEST_RUNNER_PID"
int ktest_child_setup(void);

/* `kiln test FILE... [--junit OUT.xml] [--tap] [--jobs N] [--logs DIR] [--filter GLOB]`:
 * argv[1] is "test". Returns the exit status: 0 all passed (or skipped), 1 a case failed or
 * timed out, 125 a bad flag or test file (nothing run). */
int ktest_main(int argc, char **argv);

/* `kiln run ... --expect REGEX [--timeout DURATION]`: if argv is `kiln run` with --expect or
 * --timeout, removes them (and their values) from argv/argc, sets *regex and *timeout_ms and
 * returns 1; 0 if neither is there; a negative errno with err filled for a bad use. */
int ktest_expect_extract(int *argc, char **argv, const char **regex, uint64_t *timeout_ms,
                         struct error *err);
/* The quick form: runs the VM of config (console forced to stdio), echoing its console, until
 * the console matches regex (exit 0) or it ends or times out (1, with the last lines on
 * stderr). */
int ktest_expect_run(const struct vm_config *config, const char *regex, uint64_t timeout_ms);

#endif
