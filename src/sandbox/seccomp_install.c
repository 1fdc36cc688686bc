/* Turns a kind of thread's allow-lists into a libseccomp filter and loads it on the calling
 * thread: forbidden calls kill the process (kill) or are reported and fail (log). */
#include <errno.h>
#include <seccomp.h>
#include <string.h>
#include <time.h>

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

int sandbox_enter(enum sandbox_thread kind, unsigned needs, enum sandbox_mode mode,
                  struct error *err)
{
    if (mode == SANDBOX_OFF)
        return 0;
    if (mode == SANDBOX_LOG) {
        int r = sandbox_reporter_install(sandbox_thread_name(kind), err);
        if (r < 0)
            return r;
    }
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
    /* Without TSYNC (the default) the filter is this thread's, and its future children's. */
    if (r == 0)
        r = add_lists(ctx, kind, needs, err);
    if (r == 0) {
        r = seccomp_load(ctx);
        if (r < 0)
            error_fmt(err, r, "seccomp: cannot load the %s filter: %s", sandbox_thread_name(kind),
                      strerror(-r));
    }
    seccomp_release(ctx);
    return r;
}
