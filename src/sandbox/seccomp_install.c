/* Turns a kind of thread's allow-lists into a libseccomp filter and loads it on the calling
 * thread: forbidden calls kill the process (kill) or are reported and fail (log). */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kiln/sandbox/seccomp_policy.h"

static const char *const thread_names[SANDBOX_THREAD_KINDS] = {
    [SANDBOX_THREAD_VCPU] = "vcpu",
    [SANDBOX_THREAD_LOOP] = "event loop",
    [SANDBOX_THREAD_IO_POOL] = "I/O pool",
    [SANDBOX_THREAD_SNAPSHOT] = "snapshot writer",
    [SANDBOX_THREAD_MIGRATE] = "migration sender",
};

const char *sandbox_thread_name(enum sandbox_thread kind)
{
    return (unsigned)kind < SANDBOX_THREAD_KINDS ? thread_names[kind] : "unknown";
}

static int add_rule(scmp_filter_ctx ctx, const struct sandbox_rule *rule)
{
    uint32_t action = rule->fail_enosys ? SCMP_ACT_ERRNO(ENOSYS) : SCMP_ACT_ALLOW;
    /* Spelled out rather than SCMP_CMP(), whose three-argument form leaves datum_b to the
     * compiler (clang's -Wmissing-field-initializers). */
    struct scmp_arg_cmp cmp = {.arg = rule->arg, .op = SCMP_CMP_EQ, .datum_a = rule->value};
    switch (rule->check) {
    case SANDBOX_ARG_EQUALS:
        return seccomp_rule_add_array(ctx, action, rule->syscall, 1, &cmp);
    case SANDBOX_ARG_MASKED:
        cmp.op = SCMP_CMP_MASKED_EQ;
        cmp.datum_a = rule->mask;
        cmp.datum_b = rule->value;
        return seccomp_rule_add_array(ctx, action, rule->syscall, 1, &cmp);
    case SANDBOX_ANY_ARGS:
        break;
    }
    return seccomp_rule_add(ctx, action, rule->syscall, 0);
}

static int add_lists(scmp_filter_ctx ctx, enum sandbox_thread kind, unsigned needs,
                     struct error *err)
{
    const struct sandbox_rule_list *lists[SANDBOX_MAX_LISTS];
    size_t n = sandbox_policy(kind, needs, lists);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < lists[i]->count; j++) {
            const struct sandbox_rule *rule = &lists[i]->rules[j];
            int r = add_rule(ctx, rule);
            /* -EEXIST: the same call is already allowed by another list (e.g. KVM_IRQ_LINE
             * for both the loop and the vCPUs it starts). */
            if (r < 0 && r != -EEXIST)
                return error_fmt(err, r, "seccomp: the %s filter's %s rule #%zu (%s): %s",
                                 sandbox_thread_name(kind), lists[i]->name, j, rule->why,
                                 strerror(-r));
        }
    }
    return 0;
}

void sandbox_prepare(void)
{
    tzset();
}

/* The filter as BPF, through libseccomp's only exporter in this version (to a file). */
static int export_bpf(scmp_filter_ctx ctx, struct sandbox_filter *f, struct error *err)
{
    const char *name = sandbox_thread_name(f->kind);
    int fd = memfd_create("kiln-seccomp-bpf", MFD_CLOEXEC);
    if (fd < 0)
        return error_fmt(err, -errno, "seccomp: the %s filter: memfd_create: %s", name,
                         strerror(errno));
    /* The kernel takes at most BPF_MAXINSNS instructions; one more tells a bigger export. */
    size_t capacity = (BPF_MAXINSNS + 1) * sizeof(struct sock_filter);
    struct sock_filter *insns = malloc(capacity);
    int r = insns ? seccomp_export_bpf(ctx, fd) : -ENOMEM;
    ssize_t n = r == 0 ? pread(fd, insns, capacity, 0) : -1;
    if (r == 0 && n < 0)
        r = -errno;
    close(fd);
    if (r < 0) {
        free(insns);
        return error_fmt(err, r, "seccomp: cannot export the %s filter: %s", name, strerror(-r));
    }
    if (n == 0 || n % sizeof(struct sock_filter) != 0 || (size_t)n == capacity) {
        free(insns);
        return error_fmt(err, -E2BIG,
                         "seccomp: the %s filter exported %zd bytes (expected whole BPF "
                         "instructions, at most %d)",
                         name, n, BPF_MAXINSNS);
    }
    /* A block of the program's size, not the 32 KiB one it was read into. */
    f->insns = malloc((size_t)n);
    if (f->insns)
        memcpy(f->insns, insns, (size_t)n);
    free(insns);
    if (!f->insns)
        return error_fmt(err, -ENOMEM, "seccomp: the %s filter: out of memory", name);
    f->count = (unsigned short)(n / sizeof(struct sock_filter));
    return 0;
}

int sandbox_filter_build(struct sandbox_filter *f, enum sandbox_thread kind, unsigned needs,
                         enum sandbox_mode mode, struct error *err)
{
    memset(f, 0, sizeof(*f));
    f->kind = kind;
    f->mode = mode;
    if (mode == SANDBOX_OFF)
        return 0;
    /* KILL_PROCESS, not KILL_THREAD: a VM with one thread gone would hang half-alive. */
    uint32_t forbidden = mode == SANDBOX_KILL ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_TRAP;
    scmp_filter_ctx ctx = seccomp_init(forbidden);
    if (!ctx)
        return error_fmt(err, -ENOSYS,
                         "seccomp: cannot start the %s filter (no seccomp here, e.g. under "
                         "valgrind? --seccomp off runs without filters)",
                         sandbox_thread_name(kind));
    /* A 32-bit call (int 0x80) gets the same answer, not libseccomp's default of killing
     * only the thread, which would leave the VM half-alive. */
    int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, forbidden);
    if (r < 0)
        error_fmt(err, r, "seccomp: the %s filter's answer to 32-bit calls: %s",
                  sandbox_thread_name(kind), strerror(-r));
    if (r == 0)
        r = add_lists(ctx, kind, needs, err);
    if (r == 0)
        r = export_bpf(ctx, f, err);
    seccomp_release(ctx);
    return r;
}

int sandbox_filter_load(const struct sandbox_filter *f, struct error *err)
{
    if (f->mode == SANDBOX_OFF)
        return 0;
    const char *name = sandbox_thread_name(f->kind);
    if (f->mode == SANDBOX_LOG) {
        int r = sandbox_reporter_install(name, err);
        if (r < 0)
            return r;
    }
    /* What seccomp_load does with libseccomp's default attributes: no new privileges, then
     * the filter on this thread alone (no TSYNC), which threads it creates later inherit. */
    struct sock_fprog prog = {.len = f->count, .filter = f->insns};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
        return error_fmt(err, -errno, "seccomp: cannot load the %s filter: %s", name,
                         strerror(errno));
    return 0;
}

void sandbox_filter_free(struct sandbox_filter *f)
{
    free(f->insns);
    f->insns = NULL;
    f->count = 0;
}

int sandbox_enter(enum sandbox_thread kind, unsigned needs, enum sandbox_mode mode,
                  struct error *err)
{
    struct sandbox_filter filter;
    int r = sandbox_filter_build(&filter, kind, needs, mode, err);
    /* Building leaves libseccomp's freed blocks all over the heap. Trimmed before the filter
     * goes in: ThreadSanitizer's allocator calls getrandom when it trims, which no list has. */
    malloc_trim(0);
    if (r == 0)
        r = sandbox_filter_load(&filter, err);
    sandbox_filter_free(&filter);
    return r;
}
