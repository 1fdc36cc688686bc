/* The seccomp filters of the loop thread and of libuv's thread pool. The pool is the
 * process's, made once on first use, so its threads are started here (signals blocked) and
 * each is handed one work item that installs its filter; a rebuilt VM finds them ready. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln/vm/vm.h"
#include "kiln/vm/vm_sandbox.h"

/* What libuv 1.x does with UV_THREADPOOL_SIZE (threadpool.c: default 4, 0 means 1, at most
 * 1024): how many threads the pool will have. */
static unsigned pool_size(void)
{
    const char *text = getenv("UV_THREADPOOL_SIZE");
    unsigned n = text ? (unsigned)atoi(text) : 4;
    if (n == 0)
        n = 1;
    return n > 1024 ? 1024 : n;
}

/* The pool would start only where it has work (disks), and only once per process. */
static bool pool_needed(const struct vm *vm)
{
    return vm->config->ndisks > 0 && vm->boot_index == 0;
}

/* The work items share this: each waits until every item has a thread (so no thread takes
 * two), then filters its own. */
struct pool_filtering {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    unsigned expected, arrived, done;
    const struct sandbox_filter *filter;
    int result;
    struct error err;
};

struct pool_item {
    uv_work_t work;
    struct pool_filtering *shared;
};

/* How long an item waits for the others: only reached if libuv made fewer threads than
 * pool_size() says, and then the items left run on threads already filtered. */
#define POOL_ARRIVAL_TIMEOUT_S 5

static void filter_pool_thread(uv_work_t *work)
{
    struct pool_item *item = work->data;
    struct pool_filtering *f = item->shared;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += POOL_ARRIVAL_TIMEOUT_S;
    pthread_mutex_lock(&f->lock);
    f->arrived++;
    pthread_cond_broadcast(&f->changed);
    while (f->arrived < f->expected)
        if (pthread_cond_timedwait(&f->changed, &f->lock, &deadline) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&f->lock);
    struct error err = {{0}};
    int r = sandbox_filter_load(f->filter, &err);
    pthread_mutex_lock(&f->lock);
    if (r < 0 && f->result == 0) {
        f->result = r;
        f->err = err;
    }
    pthread_mutex_unlock(&f->lock);
}

static void pool_thread_filtered(uv_work_t *work, int status)
{
    struct pool_item *item = work->data;
    item->shared->done++; /* on the loop thread, like the wait below */
}

int vm_sandbox_io_pool(struct vm *vm, struct error *err)
{
    /* Without disks nothing uses the pool, so it is never started: the loop's filter has
     * no clone, which is what would start it. A rebuilt VM finds it filtered already. */
    if (!pool_needed(vm))
        return 0;
    /* The threads inherit this thread's signal mask: with the stop signals blocked, a SIGTERM
     * always goes to the loop's thread, never to a pool thread, where it would be lost once
     * the loop's handles close between two boots, or end kiln before the disks are flushed. */
    sigset_t old_mask;
    vm_block_loop_signals(&old_mask);
    struct pool_filtering f = {.expected = pool_size(),
                               .filter = &vm->thread_filters[SANDBOX_THREAD_IO_POOL]};
    struct pool_item *items = calloc(f.expected, sizeof(*items));
    if (!items)
        return error_fmt(err, -ENOMEM, "seccomp: out of memory");
    pthread_mutex_init(&f.lock, NULL);
    pthread_cond_init(&f.changed, NULL);
    unsigned queued = 0;
    int r = 0;
    for (; queued < f.expected; queued++) {
        items[queued].work.data = &items[queued];
        items[queued].shared = &f;
        r = uv_queue_work(&vm->loop, &items[queued].work, filter_pool_thread, pool_thread_filtered);
        if (r < 0) {
            error_fmt(err, r, "seccomp: cannot start the I/O pool: %s", uv_strerror(r));
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    /* The completions come back through the loop; nothing else on it runs yet (no vCPU). */
    while (f.done < queued)
        uv_run(&vm->loop, UV_RUN_ONCE);
    if (r == 0 && f.result < 0) {
        r = f.result;
        *err = f.err;
    }
    pthread_cond_destroy(&f.changed);
    pthread_mutex_destroy(&f.lock);
    free(items);
    return r;
}

/* What the loop's filter adds for this VM's configuration. */
static unsigned loop_needs(const struct vm_config *config)
{
    unsigned needs = 0;
    if (config->console == CONSOLE_PTY ||
        (config->vconsole && config->vconsole_kind == CONSOLE_PTY))
        needs |= SANDBOX_NEED_PTY;
    if (config->on_reset == RESET_RESTART)
        needs |= SANDBOX_NEED_REBUILD;
    if ((config->cpu_quota || config->cpu_weight) && !config->jail_dir)
        needs |= SANDBOX_NEED_CGROUP;
    if (config->balloon.enabled)
        needs |= SANDBOX_NEED_BALLOON;
    return needs;
}

struct filter_builder {
    struct vm *vm;
    bool wanted[SANDBOX_THREAD_KINDS];
    int result;
    struct error err;
};

static void *build_filters(void *arg)
{
    struct filter_builder *b = arg;
    struct vm *vm = b->vm;
    for (unsigned kind = 0; b->result == 0 && kind < SANDBOX_THREAD_KINDS; kind++) {
        unsigned needs = kind == SANDBOX_THREAD_LOOP ? loop_needs(vm->config) : 0;
        if (b->wanted[kind])
            b->result = sandbox_filter_build(&vm->thread_filters[kind], kind, needs,
                                             vm->config->seccomp, &b->err);
    }
    return NULL;
}

int vm_sandbox_build(struct vm *vm, struct error *err)
{
    if (vm->config->seccomp == SANDBOX_OFF)
        return 0;
    struct filter_builder b = {
        .vm = vm,
        .wanted =
            {
                [SANDBOX_THREAD_VCPU] = true,
                /* Filtered on the first boot, with what rebuilding takes. */
                [SANDBOX_THREAD_LOOP] = vm->boot_index == 0,
                [SANDBOX_THREAD_IO_POOL] = pool_needed(vm),
                [SANDBOX_THREAD_SNAPSHOT] = vm->api_fd >= 0,
                [SANDBOX_THREAD_MIGRATE] = vm->api_fd >= 0,
            },
    };
    /* On a thread of its own: when it ends, glibc hands the blocks its per-thread cache kept
     * back to the heap, and the trim below returns libseccomp's garbage to the kernel. Built
     * on this thread, that cache would pin the pages for the life of the VM. */
    pthread_t builder;
    if (vm_start_worker(&builder, build_filters, &b) == 0)
        pthread_join(builder, NULL);
    else
        build_filters(&b);
    malloc_trim(0);
    if (b.result < 0)
        *err = b.err;
    return b.result;
}

void vm_sandbox_free(struct vm *vm)
{
    for (unsigned kind = 0; kind < SANDBOX_THREAD_KINDS; kind++)
        sandbox_filter_free(&vm->thread_filters[kind]);
}

int vm_sandbox_loop(struct vm *vm, struct error *err)
{
    if (vm->boot_index > 0)
        return 0; /* filtered on the first boot, with what rebuilding takes */
    return sandbox_filter_load(&vm->thread_filters[SANDBOX_THREAD_LOOP], err);
}
