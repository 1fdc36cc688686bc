/* Runs `kiln test` cases: one libuv loop drives every case's VM, each a child `kiln run` in its
 * own process group (stdin/stdout/stderr pipes, the VM definition on fd 3 from a memfd), its
 * steps, timers and log, and kills the group when the case ends, passes, fails or times out. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uv.h>

#include "kiln/ktest/ktest.h"

#define SECOND_TERM_MS 100  /* SIGTERM (power button), this much later SIGTERM (stop now), */
#define KILL_GRACE_MS  1000 /* then SIGKILL this much later, */
#define GIVE_UP_MS     5000 /* then stop waiting for the pipes */
#define KEEP_STDERR    (16 * 1024)
#define READ_CHUNK     (64 * 1024)
#define VM_FD          3

struct runner;

struct case_run {
    struct runner *runner;
    size_t index;
    const struct ktest_case *tc;
    struct ktest_result *result;
    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_timer_t case_timer, step_timer, kill_timer;
    unsigned open_handles;
    bool started, exited, out_eof, err_eof, decided, step_waiting, closing;
    bool stopping;   /* the runner signalled the VM */
    int term_signal; /* the signal that ended the VM's kiln, or 0 */
    unsigned kills;  /* stages of stopping: 1 SIGTERM, 2 SIGTERM, 3 SIGKILL or exited, 4 given up */
    unsigned step;
    uint64_t start_ms;
    struct ktest_console console;
    char *stderr_text;
    size_t stderr_len;
    FILE *log;
};

struct runner {
    uv_loop_t loop;
    const struct ktest_case *const *cases;
    size_t n, next, running;
    struct ktest_result *results;
    const struct ktest_runner_options *opt;
    struct case_run *runs;
    uv_signal_t sigint, sigterm;
    char **env; /* ours, with KTEST_RUNNER_ENV: the VMs die with the runner */
    int stop_signal;
    bool no_kvm;
};

static void start_more(struct runner *rn);
static void advance(struct case_run *r);

static void set_message(struct ktest_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_message(struct ktest_result *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof(res->message), fmt, ap);
    va_end(ap);
}

/* "exit status 3", "killed by signal 9": how the VM's kiln ended. */
static const char *ended_text(const struct case_run *r, char *buf, size_t size)
{
    if (r->result->exit_status >= 0)
        snprintf(buf, size, "exit status %d", r->result->exit_status);
    else if (r->term_signal == SIGSYS)
        snprintf(buf, size,
                 "killed by SIGSYS: a system call its seccomp filter forbids (the VM's "
                 "`seccomp: log` names it)");
    else
        snprintf(buf, size, "killed by signal %d", r->term_signal);
    return buf;
}

static void on_closed(uv_handle_t *h)
{
    struct case_run *r = h->data;
    if (--r->open_handles > 0)
        return;
    struct ktest_result *res = r->result;
    res->seconds = (double)(uv_now(&r->runner->loop) - r->start_ms) / 1000.0;
    res->console = strdup(ktest_console_tail(&r->console, KTEST_KEEP_CONSOLE));
    res->kiln_stderr = r->stderr_text;
    r->stderr_text = NULL;
    ktest_console_free(&r->console);
    if (r->log)
        fclose(r->log);
    r->log = NULL;
    r->runner->running--;
    if (r->runner->opt->done)
        r->runner->opt->done(r->runner->opt->ctx, r->index, r->tc, res);
    start_more(r->runner);
}

static void close_handle(struct case_run *r, uv_handle_t *h)
{
    if (!uv_is_closing(h)) {
        r->open_handles++;
        uv_close(h, on_closed);
    }
}

/* Once the verdict is in and the VM is gone (or given up on): release the case's handles. */
static void try_finish(struct case_run *r)
{
    if (!r->decided || r->closing)
        return;
    bool gone = r->exited && r->out_eof && r->err_eof;
    if (!gone && r->kills < 4)
        return;
    r->closing = true;
    r->open_handles = 1; /* held until every close below is queued */
    close_handle(r, (uv_handle_t *)&r->case_timer);
    close_handle(r, (uv_handle_t *)&r->step_timer);
    close_handle(r, (uv_handle_t *)&r->kill_timer);
    close_handle(r, (uv_handle_t *)&r->in);
    close_handle(r, (uv_handle_t *)&r->out);
    close_handle(r, (uv_handle_t *)&r->err);
    close_handle(r, (uv_handle_t *)&r->proc);
    on_closed((uv_handle_t *)&r->case_timer);
}

static void signal_vm(struct case_run *r, int sig)
{
    /* Once reaped, the group's ID may be someone else's. */
    if (r->proc.pid > 0 && !r->exited)
        kill(-r->proc.pid, sig); /* the whole process group */
}

static void on_kill_timer(uv_timer_t *t)
{
    struct case_run *r = t->data;
    r->kills++;
    if (r->kills == 2) {
        signal_vm(r, SIGTERM);
        uv_timer_start(&r->kill_timer, on_kill_timer, KILL_GRACE_MS, 0);
    } else if (r->kills == 3) {
        signal_vm(r, SIGKILL);
        uv_timer_start(&r->kill_timer, on_kill_timer, GIVE_UP_MS, 0);
    } else {
        try_finish(r); /* nothing came back after SIGKILL: stop waiting */
    }
}

/* The verdict: stop the timers and the VM; the case ends when the VM is gone. */
static void decide(struct case_run *r, enum ktest_outcome outcome, int step)
{
    if (r->decided)
        return;
    r->decided = true;
    r->result->outcome = outcome;
    r->result->failed_step = step;
    uv_timer_stop(&r->case_timer);
    uv_timer_stop(&r->step_timer);
    if (!r->exited) {
        /* The first SIGTERM presses the power button, the second stops kiln at once (sent
         * apart, so they are not merged into one), SIGKILL if kiln is stuck. */
        signal_vm(r, SIGTERM);
        r->stopping = true;
        r->kills = 1;
        uv_timer_start(&r->kill_timer, on_kill_timer, SECOND_TERM_MS, 0);
    }
    try_finish(r);
}

static void fail_step(struct case_run *r, enum ktest_outcome outcome, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_step(struct case_run *r, enum ktest_outcome outcome, const char *fmt, ...)
{
    char what[128], text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    const struct ktest_step *s = &r->tc->steps[r->step];
    char where[PATH_MAX + 32] = "";
    if (s->line)
        snprintf(where, sizeof(where), " (%s:%u:%u)", r->tc->file, s->line, s->column);
    set_message(r->result, "step %u%s %s: %s", r->step + 1, where,
                ktest_step_text(s, what, sizeof(what)), text);
    decide(r, outcome, (int)r->step);
}

static void on_step_timer(uv_timer_t *t)
{
    struct case_run *r = t->data;
    const struct ktest_step *s = &r->tc->steps[r->step];
    r->step_waiting = false;
    char d[32];
    if (s->kind == KTEST_SLEEP) {
        r->step++;
        advance(r);
    } else if (s->kind == KTEST_EXPECT) {
        fail_step(r, KTEST_FAIL, "no match within %s", ktest_duration_text(s->ms, d, sizeof(d)));
    } else {
        fail_step(r, KTEST_FAIL, "the VM was still running after %s",
                  ktest_duration_text(s->ms, d, sizeof(d)));
    }
}

static void on_case_timer(uv_timer_t *t)
{
    struct case_run *r = t->data;
    char d[32];
    ktest_duration_text(r->tc->timeout_ms, d, sizeof(d));
    char killed[64] = "";
    if (!r->exited)
        snprintf(killed, sizeof(killed), "; the VM (pid %d) was killed", r->proc.pid);
    if (r->step < r->tc->nsteps)
        fail_step(r, KTEST_TIMEOUT, "timed out: the case took more than %s%s", d, killed);
    else
        decide(r, KTEST_TIMEOUT, -1);
}

static void wait_step(struct case_run *r, uint64_t ms)
{
    if (r->step_waiting || ms == 0)
        return;
    r->step_waiting = true;
    uv_timer_start(&r->step_timer, on_step_timer, ms, 0);
}

static void step_done(struct case_run *r)
{
    if (r->step_waiting)
        uv_timer_stop(&r->step_timer);
    r->step_waiting = false;
    r->step++;
}

static void on_written(uv_write_t *req, int status)
{
    free(req);
}

static int send_text(struct case_run *r, const struct ktest_step *s)
{
    uv_write_t *req = malloc(sizeof(*req) + s->text_len);
    if (!req)
        return -ENOMEM;
    char *copy = (char *)(req + 1);
    memcpy(copy, s->text, s->text_len);
    uv_buf_t buf = uv_buf_init(copy, (unsigned)s->text_len);
    int e = uv_write(req, (uv_stream_t *)&r->in, &buf, 1, on_written);
    if (e < 0)
        free(req);
    return e;
}

/* Runs the steps as far as the console and the VM allow; each waiting step returns. */
static void advance(struct case_run *r)
{
    const struct ktest_case *tc = r->tc;
    char ended[128];
    if (r->decided)
        return;
    bool over = r->exited && r->out_eof;
    int bad = ktest_console_forbidden(&r->console, tc->steps, tc->nsteps, over);
    if (bad >= 0) {
        r->step = (unsigned)bad;
        fail_step(r, KTEST_FAIL, "the console printed a forbidden line");
        return;
    }
    while (r->step < tc->nsteps) {
        const struct ktest_step *s = &tc->steps[r->step];
        switch (s->kind) {
        case KTEST_EXPECT_NOT:
            step_done(r);
            continue;
        case KTEST_EXPECT:
            if (ktest_console_expect(&r->console, &s->regex, strchr(s->text, '\n') != NULL)) {
                step_done(r);
                continue;
            }
            if (over) {
                fail_step(r, KTEST_FAIL, "the VM ended (%s) before the console matched",
                          ended_text(r, ended, sizeof(ended)));
                return;
            }
            wait_step(r, s->ms);
            return;
        case KTEST_SEND:
            if (r->exited || send_text(r, s) < 0) {
                fail_step(r, KTEST_FAIL, "the VM ended (%s) before the input could be sent",
                          ended_text(r, ended, sizeof(ended)));
                return;
            }
            step_done(r);
            continue;
        case KTEST_SLEEP:
            wait_step(r, s->ms);
            return;
        case KTEST_EXPECT_EXIT:
            if (!over) {
                wait_step(r, s->ms);
                return;
            }
            if (r->result->exit_status != s->status) {
                fail_step(r, KTEST_FAIL, "the VM ended with %s",
                          ended_text(r, ended, sizeof(ended)));
                return;
            }
            step_done(r);
            continue;
        }
    }
    decide(r, KTEST_PASS, -1);
}

static void on_vm_exit(uv_process_t *proc, int64_t status, int term_signal)
{
    struct case_run *r = proc->data;
    r->exited = true;
    r->result->exit_status = term_signal ? -1 : (int)status;
    r->term_signal = term_signal;
    /* Its output pipes close now, unless something else holds them: stop waiting after a
     * while then. */
    r->kills = 3;
    uv_timer_start(&r->kill_timer, on_kill_timer, GIVE_UP_MS, 0);
    advance(r);
    try_finish(r);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    buf->base = malloc(READ_CHUNK);
    buf->len = buf->base ? READ_CHUNK : 0;
}

static void keep_stderr(struct case_run *r, const char *data, size_t n)
{
    if (n > KEEP_STDERR) {
        data += n - KEEP_STDERR;
        n = KEEP_STDERR;
    }
    if (r->stderr_len + n > KEEP_STDERR) {
        size_t cut = r->stderr_len + n - KEEP_STDERR;
        memmove(r->stderr_text, r->stderr_text + cut, r->stderr_len - cut);
        r->stderr_len -= cut;
    }
    if (!r->stderr_text && !(r->stderr_text = malloc(KEEP_STDERR + 1)))
        return;
    memcpy(r->stderr_text + r->stderr_len, data, n);
    r->stderr_len += n;
    r->stderr_text[r->stderr_len] = '\0';
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct case_run *r = stream->data;
    bool is_out = stream == (uv_stream_t *)&r->out;
    if (nread > 0) {
        if (!is_out) {
            if (!r->stopping) /* not what kiln says when the runner stops it */
                keep_stderr(r, buf->base, (size_t)nread);
        } else {
            if (r->log) { /* flushed: the log can be followed while the case runs */
                fwrite(buf->base, 1, (size_t)nread, r->log);
                fflush(r->log);
            }
            if (r->runner->opt->echo) {
                fwrite(buf->base, 1, (size_t)nread, r->runner->opt->echo);
                fflush(r->runner->opt->echo);
            }
            if (ktest_console_append(&r->console, buf->base, (size_t)nread) < 0)
                set_message(r->result, "out of memory for the console output");
        }
    } else if (nread < 0) {
        uv_read_stop(stream);
        if (is_out)
            r->out_eof = true;
        else
            r->err_eof = true;
    }
    free(buf->base);
    if (nread != 0) {
        advance(r);
        try_finish(r);
    }
}

/* The case's VM definition with its console on stdio, in a memfd for the child's fd 3. */
static int vm_memfd(const struct ktest_case *tc, struct error *err)
{
    struct vm_config vm = tc->vm; /* a shallow copy: only the consoles differ */
    vm.console = CONSOLE_STDIO;
    vm.console_path = NULL;
    /* The steps drive `console`; a vconsole keeps its sink, but stdio is taken. */
    if (vm.vconsole && vm.vconsole_kind == CONSOLE_STDIO)
        vm.vconsole_kind = CONSOLE_NONE;
    int fd = memfd_create("kiln-test-vm", MFD_CLOEXEC);
    if (fd < 0)
        return error_fmt(err, -errno, "memfd_create: %s", strerror(errno));
    int copy = dup(fd);
    FILE *f = copy >= 0 ? fdopen(copy, "w") : NULL;
    if (!f) {
        int e = errno;
        if (copy >= 0)
            close(copy);
        close(fd);
        return error_fmt(err, -e, "memfd: %s", strerror(e));
    }
    int r = config_yaml_emit(&vm, f, err);
    if (fclose(f) != 0 && r == 0)
        r = error_fmt(err, -EIO, "writing the VM definition failed");
    if (r < 0) {
        close(fd);
        return r;
    }
    return fd;
}

/* The checks `kiln run` would make on the files (kernel, initrd, disks). */
static bool check_vm_files(struct case_run *r)
{
    struct config_problems problems = {.count = 0};
    ktest_case_check_files(r->tc, &problems);
    bool ok = config_problems_total(&problems) == 0;
    if (!ok)
        set_message(r->result, "the VM cannot start: %s%s",
                    problems.count ? problems.lines[0] : "out of memory",
                    config_problems_total(&problems) > 1 ? " (and more)" : "");
    config_problems_free(&problems);
    return ok;
}

static char *log_path(const char *dir, const struct ktest_case *tc)
{
    char *path = NULL;
    if (asprintf(&path, "%s/%s.%s.log", dir, tc->suite, tc->name) < 0)
        return NULL;
    return path;
}

static int spawn_vm(struct case_run *r, struct error *err)
{
    struct runner *rn = r->runner;
    int fd = vm_memfd(r->tc, err);
    if (fd < 0)
        return fd;
    char vm_path[32];
    snprintf(vm_path, sizeof(vm_path), "/dev/fd/%d", VM_FD);
    char *args[] = {(char *)rn->opt->kiln_path, "run", vm_path, NULL};
    uv_stdio_container_t stdio[VM_FD + 1];
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&r->in;
    if (rn->opt->inherit_stdin) {
        stdio[0].flags = UV_INHERIT_FD;
        stdio[0].data.fd = STDIN_FILENO;
    }
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&r->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&r->err;
    stdio[VM_FD].flags = UV_INHERIT_FD;
    stdio[VM_FD].data.fd = fd;
    uv_process_options_t o = {
        .exit_cb = on_vm_exit,
        .file = rn->opt->kiln_path,
        .args = args,
        .flags = UV_PROCESS_DETACHED, /* its own session and process group */
        .stdio_count = VM_FD + 1,
        .stdio = stdio,
        .env = rn->env,
    };
    int e = uv_spawn(&rn->loop, &r->proc, &o);
    close(fd);
    if (e < 0)
        return error_fmt(err, e, "cannot start '%s': %s", rn->opt->kiln_path, uv_strerror(e));
    r->result->pid = r->proc.pid;
    uv_read_start((uv_stream_t *)&r->out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&r->err, on_alloc, on_read);
    return 0;
}

/* A case that never gets a VM: skipped, or unable to start. */
static void end_without_vm(struct case_run *r, enum ktest_outcome outcome)
{
    r->result->outcome = outcome;
    r->result->console = strdup("");
    if (r->runner->opt->done)
        r->runner->opt->done(r->runner->opt->ctx, r->index, r->tc, r->result);
}

static void start_case(struct runner *rn, size_t index)
{
    struct case_run *r = &rn->runs[index];
    const struct ktest_case *tc = rn->cases[index];
    r->runner = rn;
    r->index = index;
    r->tc = tc;
    r->result = &rn->results[index];
    r->result->failed_step = -1;
    r->result->exit_status = -1;
    if (tc->skip) {
        set_message(r->result, "%s", tc->skip);
        end_without_vm(r, KTEST_SKIP);
        return;
    }
    if (rn->stop_signal) {
        set_message(r->result, "not run: stopped by %s",
                    rn->stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
        end_without_vm(r, KTEST_SKIP);
        return;
    }
    if (rn->no_kvm) {
        const char *kvm = getenv("KILN_KVM_DEVICE");
        if (kvm && *kvm)
            set_message(r->result, "no KVM device %s (KILN_KVM_DEVICE)", kvm);
        else
            set_message(r->result, "no /dev/kvm");
        end_without_vm(r, KTEST_SKIP);
        return;
    }
    if (!check_vm_files(r)) {
        end_without_vm(r, KTEST_FAIL);
        return;
    }
    if (rn->opt->logs_dir) {
        r->result->log_path = log_path(rn->opt->logs_dir, tc);
        r->log = r->result->log_path ? fopen(r->result->log_path, "we") : NULL;
        if (!r->log) {
            set_message(r->result, "cannot write the console log '%s': %s",
                        r->result->log_path ? r->result->log_path : "?", strerror(errno));
            end_without_vm(r, KTEST_FAIL);
            return;
        }
    }
    uv_loop_t *loop = &rn->loop;
    uv_pipe_init(loop, &r->in, 0);
    uv_pipe_init(loop, &r->out, 0);
    uv_pipe_init(loop, &r->err, 0);
    uv_timer_init(loop, &r->case_timer);
    uv_timer_init(loop, &r->step_timer);
    uv_timer_init(loop, &r->kill_timer);
    r->in.data = r->out.data = r->err.data = r;
    r->case_timer.data = r->step_timer.data = r->kill_timer.data = r->proc.data = r;
    r->started = true;
    rn->running++;
    uv_update_time(loop);
    r->start_ms = uv_now(loop);
    struct error err = {{0}};
    if (spawn_vm(r, &err) < 0) {
        set_message(r->result, "%s", err.msg);
        /* Nothing runs: the handles close at once. */
        r->exited = r->out_eof = r->err_eof = true;
        r->decided = true;
        r->result->outcome = KTEST_FAIL;
        try_finish(r);
        return;
    }
    uv_timer_start(&r->case_timer, on_case_timer, tc->timeout_ms, 0);
    advance(r);
}

static void start_more(struct runner *rn)
{
    while (rn->next < rn->n && rn->running < rn->opt->jobs)
        start_case(rn, rn->next++);
    if (rn->next == rn->n && rn->running == 0 && !uv_is_closing((uv_handle_t *)&rn->sigint)) {
        uv_close((uv_handle_t *)&rn->sigint, NULL);
        uv_close((uv_handle_t *)&rn->sigterm, NULL);
    }
}

static void on_stop_signal(uv_signal_t *s, int signum)
{
    struct runner *rn = s->data;
    if (rn->stop_signal)
        return;
    rn->stop_signal = signum;
    for (size_t i = 0; i < rn->next; i++) {
        struct case_run *r = &rn->runs[i];
        if (r->started && !r->decided) {
            set_message(r->result, "stopped by %s; the VM (pid %d) was killed",
                        signum == SIGINT ? "SIGINT" : "SIGTERM", r->proc.pid);
            decide(r, KTEST_FAIL, -1);
        }
    }
}

extern char **environ;

/* environ without KTEST_RUNNER_ENV, plus KTEST_RUNNER_ENV=<our pid>. */
static char **child_env(void)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof(*env));
    if (!env)
        return NULL;
    size_t used = 0, name_len = strlen(KTEST_RUNNER_ENV);
    for (size_t i = 0; i < n; i++)
        if (!(strncmp(environ[i], KTEST_RUNNER_ENV, name_len) == 0 && environ[i][name_len] == '='))
            env[used++] = environ[i];
    if (asprintf(&env[used], "%s=%d", KTEST_RUNNER_ENV, (int)getpid()) < 0) {
        free(env);
        return NULL;
    }
    return env;
}

static void free_child_env(char **env)
{
    if (!env)
        return;
    size_t i = 0;
    while (env[i + 1])
        i++;
    free(env[i]); /* ours is the last; the others belong to environ */
    free(env);
}

int ktest_run(const struct ktest_case *const *cases, size_t n, struct ktest_result *results,
              const struct ktest_runner_options *options, struct error *err)
{
    struct runner rn = {.cases = cases, .n = n, .results = results, .opt = options};
    memset(results, 0, n * sizeof(*results));
    rn.runs = calloc(n ? n : 1, sizeof(*rn.runs));
    rn.env = child_env();
    if (!rn.runs || !rn.env) {
        free(rn.runs);
        free_child_env(rn.env);
        return error_fmt(err, -ENOMEM, "out of memory");
    }
    const char *kvm = getenv("KILN_KVM_DEVICE");
    rn.no_kvm = options->skip_without_kvm && access(kvm && *kvm ? kvm : "/dev/kvm", F_OK) != 0;
    int e = uv_loop_init(&rn.loop);
    if (e < 0) {
        free(rn.runs);
        free_child_env(rn.env);
        return error_fmt(err, e, "uv_loop_init: %s", uv_strerror(e));
    }
    uv_signal_init(&rn.loop, &rn.sigint);
    uv_signal_init(&rn.loop, &rn.sigterm);
    rn.sigint.data = rn.sigterm.data = &rn;
    uv_signal_start(&rn.sigint, on_stop_signal, SIGINT);
    uv_signal_start(&rn.sigterm, on_stop_signal, SIGTERM);
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &stop_signals, NULL);
    start_more(&rn);
    uv_run(&rn.loop, UV_RUN_DEFAULT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    uv_loop_close(&rn.loop);
    free(rn.runs);
    free_child_env(rn.env);
    if (rn.stop_signal)
        return error_fmt(err, -EINTR, "stopped by %s",
                         rn.stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
    return 0;
}

void ktest_result_free(struct ktest_result *result)
{
    free(result->console);
    free(result->kiln_stderr);
    free(result->log_path);
    memset(result, 0, sizeof(*result));
}

const char *ktest_last_lines(const char *text, unsigned n)
{
    if (!text)
        return "";
    const char *end = text + strlen(text);
    if (end > text && end[-1] == '\n')
        end--;
    const char *p = end;
    while (p > text) {
        if (p[-1] == '\n' && --n == 0)
            break;
        p--;
    }
    return p;
}
