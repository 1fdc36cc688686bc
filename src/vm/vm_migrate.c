/* Sending a running VM to `kiln receive` (docs/migration.md): on the sender's thread, the
 * config, then rounds of pages (all, then those KVM's dirty log says changed) while the guest
 * runs; when the rest fits the downtime limit, the loop stops the vCPUs and copies the last
 * pages and the devices' state in one go; the thread sends them with KVM's state and hands the
 * disks over. Any failure before the hand-over leaves the VM running here, unchanged. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kiln/config/config_yaml.h"
#include "kiln/migrate/mig_proto.h"
#include "kiln/util/bytes.h"
#include "kiln/util/page_bitmap.h"
#include "kiln/vm/vm.h"
#include "kiln/vm/vm_dirty.h"
#include "kiln/vm/vm_limits.h"
#include "kiln/vm/vm_migrate.h"
#include "kiln/vm/vm_sections.h"
#include "kiln/vm/vm_snapshot.h"

#define CONNECT_TIMEOUT_MS 10000
#define REPLY_TIMEOUT_MS   60000 /* the receiver builds the VM, loads the state, locks disks */
#define DRAIN_POLL_MS      1
#define DRAIN_TIMEOUT_MS   10000
#define CANCEL_GRACE_MS    2000
/* Auto-converge: the vCPUs are held for throttle % of every THROTTLE_PERIOD_MS, starting at
 * THROTTLE_FIRST % and THROTTLE_STEP % more after each round that did not shrink what is left
 * by a fifth, up to THROTTLE_MAX % (QEMU's steps and ceiling). */
#define THROTTLE_PERIOD_MS 100
#define THROTTLE_FIRST     20
#define THROTTLE_STEP      10
#define THROTTLE_MAX       99
#define MIN_ROUND_MS       50 /* a round this short measures no useful rate: count it longer */

/* What the thread asks of the loop, which owns the devices (one at a time). */
enum loop_job {
    LOOP_IDLE,
    LOOP_START_LOG, /* turn KVM's dirty log on, with the vCPUs held meanwhile */
    LOOP_CAPTURE,   /* stop the vCPUs, drain I/O, copy the last dirty pages and device state */
    LOOP_RELEASE,   /* I/O drained again, then the disks' locks let go */
    LOOP_RETAKE,    /* the hand-over failed: take the disks' locks back */
    LOOP_THROTTLE,  /* start auto-converge's cycle (progress.throttle_percent) */
};

/* The last pages, copied on the loop with the vCPUs stopped. */
struct final_copy {
    uint64_t *dirty; /* which pages */
    uint8_t *pages;  /* their bytes, in page order */
    uint64_t npages;
};

struct vm_migrate {
    struct vm *vm;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    uv_async_t loop_async; /* the thread asks the loop for a job, or reports the end */
    uv_timer_t drain_timer;
    uv_timer_t cancel_timer;   /* a cancel the thread has not seen in time cuts the link */
    uv_timer_t throttle_timer; /* auto-converge's hold/run cycle */
    bool throttle_holding;     /* loop's: the throttle has the vCPUs held now */
    bool handles_open;

    /* Under lock. */
    bool job_ready, quit;
    enum loop_job loop_job;
    bool loop_job_done;
    int loop_job_r;
    char loop_job_error[sizeof(((struct error *)0)->msg)];
    bool finished; /* the thread's result is ready for the loop */
    struct vm_migrate_progress progress;
    bool ever;
    bool cancel;
    bool past_point_of_no_return; /* GO is being sent: a cancel is too late */
    struct mig_link *link;        /* for a cancel to unblock the thread */

    /* The job: set on the loop before job_ready, the thread's until finished. */
    bool busy; /* loop's */
    struct vm_migrate_request request;
    vm_migrate_done_fn *done;
    void *opaque;
    bool was_paused;
    uint64_t started_ns, paused_ns;
    struct vm_sections sections;
    struct final_copy final;
    uint64_t *dirty; /* the thread's: this round's pages */
    struct vm_migrate_result result;
};

static uint64_t ms_since(uint64_t start_ns)
{
    return (uv_hrtime() - start_ns) / 1000000;
}

static void set_state(struct vm_migrate *m, const char *state)
{
    pthread_mutex_lock(&m->lock);
    m->progress.state = state;
    pthread_mutex_unlock(&m->lock);
}

static bool cancelled(struct vm_migrate *m)
{
    pthread_mutex_lock(&m->lock);
    bool c = m->cancel;
    pthread_mutex_unlock(&m->lock);
    return c;
}

static uint64_t ram_pages(const struct vm *vm)
{
    return vm->mem.size / MIG_PAGE_SIZE;
}

/* ---- the thread ---- */

/* Runs job on the loop and waits for it. */
static int ask_loop(struct vm_migrate *m, enum loop_job job, struct error *err)
{
    pthread_mutex_lock(&m->lock);
    m->loop_job = job;
    m->loop_job_done = false;
    pthread_mutex_unlock(&m->lock);
    uv_async_send(&m->loop_async);
    pthread_mutex_lock(&m->lock);
    while (!m->loop_job_done && !m->quit)
        pthread_cond_wait(&m->wake, &m->lock);
    int r = m->loop_job_done ? m->loop_job_r : -ECANCELED;
    if (r < 0)
        error_fmt(err, r, "%s", m->loop_job_done ? m->loop_job_error : "the VM is stopping");
    m->loop_job = LOOP_IDLE;
    pthread_mutex_unlock(&m->lock);
    return r;
}

/* Keeps the stream at the requested rate: sleeps while more was sent than it allows by now. */
static void pace(struct vm_migrate *m, uint64_t round_start_ns, uint64_t round_bytes)
{
    if (!m->request.bandwidth_mib)
        return;
    uint64_t allowed_ns = round_bytes * 1000000000ull / ((uint64_t)m->request.bandwidth_mib << 20);
    uint64_t elapsed = uv_hrtime() - round_start_ns;
    if (allowed_ns > elapsed) {
        uint64_t wait = allowed_ns - elapsed;
        struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000ull),
                              .tv_nsec = (long)(wait % 1000000000ull)};
        nanosleep(&ts, NULL);
    }
}

/* Sends pages [first, first + count), all set in the round's bitmap: runs of zero pages as
 * ZERO records, the others as PAGES records of up to MIG_MAX_RUN_PAGES, read from `from`
 * (the guest's RAM while it runs, or the final copy). */
static int send_run(struct vm_migrate *m, const uint8_t *from, uint64_t first, uint64_t count,
                    struct error *err)
{
    uint64_t page = first, end = first + count;
    while (page < end) {
        const uint8_t *p = from + (page - first) * MIG_PAGE_SIZE;
        bool zero = bytes_all_zero(p, MIG_PAGE_SIZE);
        uint64_t n = 1;
        while (page + n < end && n < MIG_MAX_RUN_PAGES &&
               bytes_all_zero(p + n * MIG_PAGE_SIZE, MIG_PAGE_SIZE) == zero)
            n++;
        uint8_t head[16];
        mig_put_u64(head, page);
        mig_put_u64(head + 8, n);
        int r = zero ? mig_send(m->link, MIG_REC_ZERO, head, 16, NULL, 0, err)
                     : mig_send(m->link, MIG_REC_PAGES, head, 8, p, n * MIG_PAGE_SIZE, err);
        if (r < 0)
            return r;
        if (zero)
            m->result.zero_pages += n;
        else
            m->result.pages_sent += n;
        page += n;
    }
    return 0;
}

/* One pre-copy round: every page set in m->dirty, read from the running guest's RAM. */
static int send_round(struct vm_migrate *m, uint64_t *bytes, struct error *err)
{
    struct vm *vm = m->vm;
    uint64_t pages = ram_pages(vm), start_ns = uv_hrtime(), sent0 = mig_link_bytes_sent(m->link);
    uint64_t left = page_bitmap_count(m->dirty, pages);
    for (uint64_t page = 0; page < pages;) {
        if (!page_bitmap_test(m->dirty, page)) {
            page++;
            continue;
        }
        uint64_t n = 1;
        while (page + n < pages && n < MIG_MAX_RUN_PAGES && page_bitmap_test(m->dirty, page + n))
            n++;
        if (cancelled(m))
            return error_fmt(err, -ECANCELED, "cancelled");
        if (ms_since(m->started_ns) / 1000 >= m->request.timeout_s)
            return error_fmt(err, -ETIMEDOUT,
                             "did not converge in %u s: round %u still had %llu pages to send; "
                             "the VM runs on here",
                             m->request.timeout_s, m->progress.round, (unsigned long long)left);
        int r = send_run(m, (const uint8_t *)vm->mem.mapping + page * MIG_PAGE_SIZE, page, n, err);
        if (r < 0)
            return r;
        left -= n;
        page += n;
        uint64_t sent = mig_link_bytes_sent(m->link) - sent0;
        pthread_mutex_lock(&m->lock);
        m->progress.pages_left = left;
        m->progress.bytes_sent = mig_link_bytes_sent(m->link);
        pthread_mutex_unlock(&m->lock);
        pace(m, start_ns, sent);
    }
    int r = mig_link_flush(m->link, err);
    *bytes = mig_link_bytes_sent(m->link) - sent0;
    return r;
}

/* Round 0's pages: those RAM's memfd holds data for (SEEK_DATA), so a page the guest never
 * wrote is neither read (which would allocate it) nor sent: the receiver's RAM starts zero.
 * RAM that is no memfd (a lazily restored VM's private mapping of its snapshot) is sent
 * whole. Returns how many pages were left out. */
static uint64_t first_round_pages(const struct vm *vm, uint64_t *bitmap)
{
    uint64_t pages = ram_pages(vm), size = pages * MIG_PAGE_SIZE;
    if (vm->mem.fd < 0) {
        page_bitmap_set_all(bitmap, pages);
        return 0;
    }
    memset(bitmap, 0, page_bitmap_words(pages) * sizeof(uint64_t));
    off_t at = 0;
    while ((uint64_t)at < size) {
        off_t data = lseek(vm->mem.fd, at, SEEK_DATA);
        if (data < 0)
            break; /* ENXIO: no data past at */
        off_t hole = lseek(vm->mem.fd, data, SEEK_HOLE);
        if (hole < 0 || (uint64_t)hole > size)
            hole = (off_t)size;
        for (uint64_t page = (uint64_t)data / MIG_PAGE_SIZE;
             page < ((uint64_t)hole + MIG_PAGE_SIZE - 1) / MIG_PAGE_SIZE; page++)
            bitmap[page / 64] |= 1ull << (page % 64);
        at = hole;
    }
    return pages - page_bitmap_count(bitmap, pages);
}

static int send_config(struct vm_migrate *m, struct error *err)
{
    char *yaml = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&yaml, &len);
    if (!f)
        return error_fmt(err, -ENOMEM, "out of memory");
    int r = vm_running_config_emit(m->vm, f, err); /* the limits the API set included */
    fclose(f);
    if (r == 0)
        r = mig_send(m->link, MIG_REC_CONFIG, yaml, len, NULL, 0, err);
    free(yaml);
    if (r == 0)
        r = mig_link_flush(m->link, err);
    void *body;
    size_t body_len;
    if (r == 0)
        r = mig_expect(m->link, MIG_REC_READY, "receiver", &body, &body_len, err);
    return r;
}

/* Auto-converge: hold the vCPUs for a larger share of each period (the loop runs the cycle). */
static int throttle_harder(struct vm_migrate *m, struct error *err)
{
    pthread_mutex_lock(&m->lock);
    uint32_t now = m->progress.throttle_percent;
    uint32_t next = now == 0 ? THROTTLE_FIRST : now + THROTTLE_STEP;
    if (next > THROTTLE_MAX)
        next = THROTTLE_MAX;
    m->progress.throttle_percent = next;
    pthread_mutex_unlock(&m->lock);
    if (now == THROTTLE_MAX)
        return 0;
    log_debug(&m->vm->log, "migration: not converging: the vCPUs are held %u%% of the time now",
              next);
    return ask_loop(m, LOOP_THROTTLE, err);
}

/* Pre-copy: round 0 sends every page, each later round those written during the one before,
 * until the last round's dirty pages would go in downtime_ms at the rate measured. */
static int precopy(struct vm_migrate *m, struct error *err)
{
    struct vm *vm = m->vm;
    uint64_t pages = ram_pages(vm);
    int r = ask_loop(m, LOOP_START_LOG, err);
    if (r < 0)
        return r;
    vm_snapshot_note_dirty(vm, m->dirty);
    m->result.zero_pages += first_round_pages(vm, m->dirty); /* logging is on: later writes
                                                                 come in round 1 */
    set_state(m, "copying");
    uint64_t last_dirty = pages;
    for (uint32_t round = 0;; round++) {
        uint64_t round_start = uv_hrtime(), bytes = 0;
        pthread_mutex_lock(&m->lock);
        m->progress.round = round;
        pthread_mutex_unlock(&m->lock);
        r = send_round(m, &bytes, err);
        uint8_t number[4];
        mig_put_u32(number, round);
        if (r == 0)
            r = mig_send(m->link, MIG_REC_ROUND, number, 4, NULL, 0, err);
        if (r < 0)
            return r;
        m->result.rounds = round + 1;
        uint64_t round_ms = ms_since(round_start);
        if (round_ms < MIN_ROUND_MS)
            round_ms = MIN_ROUND_MS;
        memset(m->dirty, 0, page_bitmap_words(pages) * sizeof(uint64_t));
        r = vm_dirty_collect(vm, m->dirty, err);
        if (r < 0)
            return r;
        vm_snapshot_note_dirty(vm, m->dirty);
        uint64_t dirty = page_bitmap_count(m->dirty, pages);
        uint64_t bytes_per_s = bytes * 1000 / round_ms;
        if (bytes_per_s == 0)
            bytes_per_s = 1;
        uint64_t expected_ms = dirty * MIG_PAGE_SIZE * 1000 / bytes_per_s;
        pthread_mutex_lock(&m->lock);
        m->progress.pages_left = dirty;
        m->progress.dirty_pages_per_s = dirty * 1000 / round_ms;
        m->progress.expected_downtime_ms = expected_ms;
        m->progress.mib_per_s = bytes_per_s >> 20;
        pthread_mutex_unlock(&m->lock);
        log_debug(&vm->log,
                  "migration: round %u: %llu KiB in %llu ms, %llu pages dirtied since, expected "
                  "downtime %llu ms",
                  round, (unsigned long long)(bytes >> 10), (unsigned long long)round_ms,
                  (unsigned long long)dirty, (unsigned long long)expected_ms);
        if (expected_ms <= m->request.downtime_ms)
            return 0;
        if (m->request.auto_converge && round >= 1 && dirty * 5 > last_dirty * 4) {
            r = throttle_harder(m, err);
            if (r < 0)
                return r;
        }
        last_dirty = dirty;
        if (ms_since(m->started_ns) / 1000 >= m->request.timeout_s)
            return error_fmt(err, -ETIMEDOUT,
                             "did not converge in %u s: %llu pages are dirtied per round, whose "
                             "copy would stop the VM for %llu ms (limit %u ms); the VM runs on "
                             "here",
                             m->request.timeout_s, (unsigned long long)dirty,
                             (unsigned long long)expected_ms, m->request.downtime_ms);
    }
}

/* Where the downtime goes (--log-level debug): the time since the vCPUs stopped. */
static void log_stopped(struct vm_migrate *m, const char *what)
{
    log_debug(&m->vm->log, "migration: %s, %.1f ms after the vCPUs stopped", what,
              (double)(uv_hrtime() - m->paused_ns) / 1e6);
}

/* The VM is stopped: the last pages (copied by the loop), KVM's and the devices' state, with
 * the disks flushed first, then the receiver's LOADED. */
static int send_final(struct vm_migrate *m, struct error *err)
{
    struct vm *vm = m->vm;
    log_stopped(m, "the last pages and devices copied");
    uint64_t pages = ram_pages(vm), at = 0;
    int r = 0;
    for (uint64_t page = 0; r == 0 && page < pages;) {
        if (!page_bitmap_test(m->final.dirty, page)) {
            page++;
            continue;
        }
        uint64_t n = 1;
        while (page + n < pages && n < MIG_MAX_RUN_PAGES &&
               page_bitmap_test(m->final.dirty, page + n))
            n++;
        r = send_run(m, m->final.pages + at * MIG_PAGE_SIZE, page, n, err);
        at += n;
        page += n;
    }
    if (r == 0) {
        log_stopped(m, "the last pages sent");
        r = vm_sections_flush_devices(vm, err);
    }
    struct snap_info info = {.memory_size = vm->mem.size};
    snap_cpu_id_probe(&info.cpu);
    struct snap_writer w;
    if (r == 0)
        r = snap_writer_open_memory(&w, "the migrated state", &info, err);
    if (r < 0)
        return r;
    r = vm_sections_write(vm, &m->sections, &w, err);
    uint8_t *state = NULL;
    size_t state_len = 0;
    if (r == 0)
        r = snap_writer_take(&w, &state, &state_len, err);
    else
        snap_writer_abort(&w);
    if (r == 0)
        r = mig_send(m->link, MIG_REC_STATE, state, state_len, NULL, 0, err);
    free(state);
    if (r == 0)
        r = mig_link_flush(m->link, err);
    void *body;
    size_t len;
    if (r == 0) {
        log_stopped(m, "the state sent");
        r = mig_expect(m->link, MIG_REC_LOADED, "receiver", &body, &len, err);
    }
    if (r == 0)
        log_stopped(m, "the receiver loaded the state");
    return r;
}

/* The receiver has the whole VM: let go of the disks, tell it to take over, and wait for its
 * RUNNING. Past GO the outcome is the receiver's: if the link fails now, the disks' locks tell
 * whether it took over (docs/migration.md). */
static int hand_over(struct vm_migrate *m, struct error *err)
{
    int r = ask_loop(m, LOOP_RELEASE, err);
    if (r < 0)
        return r;
    log_stopped(m, "the disks released");
    pthread_mutex_lock(&m->lock);
    bool too_late = !m->cancel;
    m->past_point_of_no_return = too_late;
    pthread_mutex_unlock(&m->lock);
    if (!too_late)
        r = error_fmt(err, -ECANCELED, "cancelled");
    uint8_t flags[4];
    mig_put_u32(flags, m->was_paused ? MIG_GO_PAUSED : 0);
    if (r == 0)
        r = mig_send(m->link, MIG_REC_GO, flags, 4, NULL, 0, err);
    if (r == 0)
        r = mig_link_flush(m->link, err);
    void *body;
    size_t len;
    if (r == 0)
        r = mig_expect(m->link, MIG_REC_RUNNING, "receiver", &body, &len, err);
    m->result.downtime_us = (uv_hrtime() - m->paused_ns) / 1000;
    if (r < 0 && m->vm->config->ndisks == 0) {
        /* No lock to ask: GO may have arrived and the destination may run the VM. Running it
         * here too could put two copies on the network, so it waits for the user. */
        char why[sizeof(err->msg)];
        snprintf(why, sizeof(why), "%s", err->msg);
        m->result.left_paused = true;
        return error_fmt(err, r,
                         "the link failed after the destination was told to take over (%s), "
                         "and the VM has no disk whose lock would tell whether it did: the VM "
                         "stays paused here; resume it (kiln ctl SOCKET resume) only if the "
                         "destination does not run it",
                         why);
    }
    if (r < 0) {
        struct error retake_err = {{0}};
        if (ask_loop(m, LOOP_RETAKE, &retake_err) < 0) {
            log_warn(&m->vm->log,
                     "migration: the destination took over the disks (%s), so it runs the VM "
                     "now; the link failed before it said so: %s",
                     retake_err.msg, err->msg);
            return 0;
        }
    }
    return r;
}

static int migrate(struct vm_migrate *m, struct error *err)
{
    int fd = mig_connect(&m->request.to, CONNECT_TIMEOUT_MS, err);
    if (fd < 0)
        return fd;
    struct mig_link *link;
    int r = mig_link_open(&link, fd, true, m->request.has_psk ? m->request.psk : NULL,
                          REPLY_TIMEOUT_MS, err);
    if (r < 0) {
        close(fd); /* a link that failed to open leaves its fd to us */
        return r;
    }
    pthread_mutex_lock(&m->lock);
    m->link = link;
    bool cancel = m->cancel;
    pthread_mutex_unlock(&m->lock);
    if (cancel)
        mig_link_cancel(link);
    r = send_config(m, err);
    if (r == 0)
        r = precopy(m, err);
    if (r == 0) {
        set_state(m, "switching");
        r = ask_loop(m, LOOP_CAPTURE, err);
    }
    if (r == 0)
        r = send_final(m, err);
    if (r == 0)
        r = hand_over(m, err);
    if (r < 0 && r != -EPIPE && r != -ECONNABORTED) {
        struct error ignored = {{0}};
        if (mig_send(link, r == -ECANCELED ? MIG_REC_CANCEL : MIG_REC_ERROR, err->msg,
                     r == -ECANCELED ? 0 : strnlen(err->msg, sizeof(err->msg)), NULL, 0,
                     &ignored) == 0)
            mig_link_flush(link, &ignored);
    }
    m->result.bytes_sent = mig_link_bytes_sent(link);
    pthread_mutex_lock(&m->lock);
    m->link = NULL;
    pthread_mutex_unlock(&m->lock);
    mig_link_close(link);
    return r;
}

static void *migrate_thread(void *arg)
{
    struct vm_migrate *m = arg;
    pthread_setname_np(pthread_self(), "kiln-migrate");
    struct error filter_err = {{0}};
    int filtered = sandbox_filter_load(&m->vm->thread_filters[SANDBOX_THREAD_MIGRATE], &filter_err);
    pthread_mutex_lock(&m->lock);
    for (;;) {
        while (!m->job_ready && !m->quit)
            pthread_cond_wait(&m->wake, &m->lock);
        if (!m->job_ready)
            break;
        pthread_mutex_unlock(&m->lock);
        struct error err = {{0}};
        int r = filtered < 0 ? error_fmt(&err, filtered, "%s", filter_err.msg) : migrate(m, &err);
        m->result.r = r;
        if (r != 0)
            snprintf(m->result.message, sizeof(m->result.message), "%s", err.msg);
        pthread_mutex_lock(&m->lock);
        m->job_ready = false;
        m->finished = true;
        uv_async_send(&m->loop_async);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

/* ---- the loop's side ---- */

static void loop_job_done(struct vm_migrate *m, int r, const char *message)
{
    pthread_mutex_lock(&m->lock);
    m->loop_job_r = r;
    snprintf(m->loop_job_error, sizeof(m->loop_job_error), "%s", message ? message : "");
    m->loop_job_done = true;
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->lock);
}

/* With the vCPUs stopped and no I/O in flight, in one callback: the pages written since the
 * last round and every device's state, so nothing the guest can see moves in between (a frame
 * a TAP delivers later changes only this copy, which is dropped). */
static int capture(struct vm_migrate *m, struct error *err)
{
    struct vm *vm = m->vm;
    uint64_t pages = ram_pages(vm);
    struct final_copy *f = &m->final;
    f->dirty = m->dirty; /* the last round's dirty pages, not sent yet, and those since */
    int r = vm_dirty_collect(vm, f->dirty, err);
    if (r < 0)
        return r;
    vm_snapshot_note_dirty(vm, f->dirty);
    f->npages = page_bitmap_count(f->dirty, pages);
    f->pages = malloc(f->npages ? f->npages * MIG_PAGE_SIZE : 1);
    if (!f->pages)
        return error_fmt(err, -ENOMEM, "no memory to copy the last %llu dirty pages",
                         (unsigned long long)f->npages);
    uint64_t at = 0;
    for (uint64_t page = 0; page < pages; page++)
        if (page_bitmap_test(f->dirty, page))
            memcpy(f->pages + at++ * MIG_PAGE_SIZE,
                   (const uint8_t *)vm->mem.mapping + page * MIG_PAGE_SIZE, MIG_PAGE_SIZE);
    return vm_sections_collect(vm, &m->sections, err);
}

static void on_drained(uv_timer_t *timer)
{
    struct vm_migrate *m = timer->data;
    if (vm_devices_in_flight(m->vm) > 0) {
        if (ms_since(m->paused_ns) < DRAIN_TIMEOUT_MS)
            return;
        uv_timer_stop(timer);
        loop_job_done(m, -ETIMEDOUT, "block I/O did not finish within 10 s");
        return;
    }
    uv_timer_stop(timer);
    struct error err = {{0}};
    int r =
        m->loop_job == LOOP_CAPTURE ? capture(m, &err) : vm_devices_hand_over(m->vm, true, &err);
    loop_job_done(m, r, err.msg);
}

/* One step of auto-converge's cycle: hold the vCPUs for throttle % of the period, then let
 * them run for the rest. Never while the API has the VM paused, and never once the
 * switch-over has stopped them (the cycle is stopped then). */
static void on_throttle(uv_timer_t *timer)
{
    struct vm_migrate *m = timer->data;
    pthread_mutex_lock(&m->lock);
    uint32_t percent = m->progress.throttle_percent;
    pthread_mutex_unlock(&m->lock);
    if (m->throttle_holding) {
        m->throttle_holding = false;
        if (!m->vm->paused)
            vm_resume(m->vm);
        uv_timer_start(timer, on_throttle, THROTTLE_PERIOD_MS * (100 - percent) / 100, 0);
        return;
    }
    if (percent == 0 || !m->busy || m->vm->paused)
        return;
    vm_pause(m->vm);
    m->throttle_holding = true;
    uv_timer_start(timer, on_throttle, THROTTLE_PERIOD_MS * percent / 100, 0);
}

/* Ends the cycle; with resume, vCPUs it holds run again (not at the switch-over). */
static void stop_throttle(struct vm_migrate *m, bool resume)
{
    uv_timer_stop(&m->throttle_timer);
    if (m->throttle_holding && resume && !m->vm->paused)
        vm_resume(m->vm);
    m->throttle_holding = false;
}

static void finish(struct vm_migrate *m)
{
    struct vm *vm = m->vm;
    m->busy = false;
    pthread_mutex_lock(&m->lock);
    m->finished = false;
    m->progress.throttle_percent = 0;
    pthread_mutex_unlock(&m->lock);
    uv_timer_stop(&m->cancel_timer);
    stop_throttle(m, m->paused_ns == 0); /* after the capture the vCPUs are the capture's */
    vm_sections_free(&m->sections);
    free(m->final.pages);
    m->final.pages = NULL;
    m->result.total_ms = ms_since(m->started_ns);
    const char *state = m->result.r == 0 ? "completed" : m->cancel ? "cancelled" : "failed";
    set_state(m, state);
    if (m->result.r == 0) {
        log_info(&vm->log,
                 "migrated to %s: %u rounds, %llu MiB sent, %llu ms in all, vCPUs stopped %.1f ms",
                 m->request.to.text, m->result.rounds,
                 (unsigned long long)(m->result.bytes_sent >> 20),
                 (unsigned long long)m->result.total_ms, (double)m->result.downtime_us / 1000);
        char message[sizeof(m->request.to.text) + 64];
        snprintf(message, sizeof(message), "migrated to %s: the VM runs there now",
                 m->request.to.text);
        vm_request_stop(vm, VM_STOP_MIGRATED, 0, message);
    } else {
        log_warn(&vm->log, "migration to %s: %s", m->request.to.text, m->result.message);
        if (m->result.left_paused)
            vm->paused = true; /* held since the capture; `kiln ctl SOCKET resume` decides */
        else if (m->paused_ns && !m->was_paused && !vm_is_stopping(vm))
            vm_resume(vm);
    }
    m->done(m->opaque, &m->result);
}

static void on_loop_async(uv_async_t *handle)
{
    struct vm_migrate *m = handle->data;
    pthread_mutex_lock(&m->lock);
    enum loop_job job = m->loop_job_done ? LOOP_IDLE : m->loop_job;
    bool finished = m->finished;
    pthread_mutex_unlock(&m->lock);
    if (finished && m->busy) {
        finish(m);
        return;
    }
    struct error err = {{0}};
    switch (job) {
    case LOOP_IDLE:
        break;
    case LOOP_CAPTURE:
        stop_throttle(m, false); /* held or not, the vCPUs stop now */
        if (!m->was_paused)
            vm_pause(m->vm);
        m->paused_ns = uv_hrtime();
        uv_timer_start(&m->drain_timer, on_drained, 0, DRAIN_POLL_MS);
        break;
    case LOOP_RELEASE:
        uv_timer_start(&m->drain_timer, on_drained, 0, DRAIN_POLL_MS);
        break;
    case LOOP_START_LOG: {
        /* With the vCPUs held: on our hosts, a guest that ran while its memory slots changed
         * went on computing wrong results (tests/integration/test_migrate.sh found it). */
        struct vm *vm = m->vm;
        if (!vm->paused)
            vm_pause(vm);
        memset(m->dirty, 0, page_bitmap_words(ram_pages(vm)) * sizeof(uint64_t));
        int r = vm_dirty_start(vm, &err);
        if (r == 0) /* a clean log: round 0 sends every page anyway */
            r = vm_dirty_collect(vm, m->dirty, &err);
        if (!vm->paused)
            vm_resume(vm);
        loop_job_done(m, r, err.msg);
        break;
    }
    case LOOP_RETAKE: {
        int r = vm_devices_hand_over(m->vm, false, &err);
        loop_job_done(m, r, err.msg);
        break;
    }
    case LOOP_THROTTLE:
        if (!uv_is_active((uv_handle_t *)&m->throttle_timer))
            uv_timer_start(&m->throttle_timer, on_throttle, 0, 0);
        loop_job_done(m, 0, NULL);
        break;
    }
}

int vm_migrate_start(struct vm *vm, const struct vm_migrate_request *request,
                     vm_migrate_done_fn *done, void *opaque, struct error *err)
{
    struct vm_migrate *m = vm->migrate;
    if (!m || !m->thread_started)
        return error_fmt(err, -ENOTSUP, "migration needs the control API's thread");
    if (m->busy)
        return error_fmt(err, -EBUSY, "a migration to %s is under way", m->request.to.text);
    if (vm_snapshot_busy(vm))
        return error_fmt(err, -EBUSY, "a snapshot is being taken; migrate after it");
    if (vm->config->jail_dir) /* its sender would run in the jail: no network, no other files */
        return error_fmt(err, -ENOTSUP, "a VM run with --jail cannot be migrated yet");
    if (request->to.kind == MIG_ADDR_TCP && !request->has_psk)
        log_warn(&vm->log,
                 "migration to %s: no pre-shared key, so the VM's memory crosses the "
                 "network in the clear",
                 request->to.text);
    m->request = *request;
    m->done = done;
    m->opaque = opaque;
    m->busy = true;
    m->was_paused = vm->paused;
    m->started_ns = uv_hrtime();
    m->paused_ns = 0;
    memset(&m->result, 0, sizeof(m->result));
    memset(&m->final, 0, sizeof(m->final));
    pthread_mutex_lock(&m->lock);
    memset(&m->progress, 0, sizeof(m->progress));
    m->progress.state = "connecting";
    m->ever = true;
    m->cancel = false;
    m->past_point_of_no_return = false;
    m->job_ready = true;
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->lock);
    return 0;
}

/* The thread is stuck in a send or receive (a stalled receiver): cut the link under it. */
static void on_cancel_overdue(uv_timer_t *timer)
{
    struct vm_migrate *m = timer->data;
    pthread_mutex_lock(&m->lock);
    if (m->link && !m->past_point_of_no_return)
        mig_link_cancel(m->link);
    pthread_mutex_unlock(&m->lock);
}

int vm_migrate_cancel(struct vm *vm, struct error *err)
{
    struct vm_migrate *m = vm->migrate;
    if (!m || !m->busy)
        return error_fmt(err, -ENOENT, "no migration is under way");
    pthread_mutex_lock(&m->lock);
    int r = 0;
    if (m->past_point_of_no_return)
        r = error_fmt(err, -EALREADY, "too late: the destination was told to take over");
    else
        m->cancel = true; /* seen between two records: the receiver is told (CANCEL) */
    pthread_mutex_unlock(&m->lock);
    if (r == 0)
        uv_timer_start(&m->cancel_timer, on_cancel_overdue, CANCEL_GRACE_MS, 0);
    return r;
}

bool vm_migrate_progress(struct vm *vm, struct vm_migrate_progress *out)
{
    struct vm_migrate *m = vm->migrate;
    if (!m)
        return false;
    pthread_mutex_lock(&m->lock);
    bool ever = m->ever;
    *out = m->progress;
    pthread_mutex_unlock(&m->lock);
    return ever;
}

bool vm_migrate_busy(const struct vm *vm)
{
    return vm->migrate && vm->migrate->busy;
}

int vm_migrate_thread_start(struct vm *vm, struct error *err)
{
    /* libsodium's set-up, here on the unfiltered main thread: the sender's filter could not
     * let it open what it may need. Only VMs that can migrate pay for it. */
    int r = mig_link_prepare(err);
    if (r < 0)
        return r;
    struct vm_migrate *m = calloc(1, sizeof(*m));
    if (!m)
        return error_fmt(err, -ENOMEM, "migration: out of memory");
    vm->migrate = m;
    m->vm = vm;
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->wake, NULL);
    uv_async_init(&vm->loop, &m->loop_async, on_loop_async);
    uv_unref((uv_handle_t *)&m->loop_async);
    uv_timer_init(&vm->loop, &m->drain_timer);
    uv_timer_init(&vm->loop, &m->cancel_timer);
    uv_timer_init(&vm->loop, &m->throttle_timer);
    m->loop_async.data = m->drain_timer.data = m->cancel_timer.data = m->throttle_timer.data = m;
    m->handles_open = true;
    m->dirty = calloc(page_bitmap_words(ram_pages(vm)), sizeof(uint64_t));
    if (!m->dirty)
        return error_fmt(err, -ENOMEM, "migration: no memory for the dirty-page bitmap");
    int e = vm_start_worker(&m->thread, migrate_thread, m);
    if (e != 0)
        return error_fmt(err, -e, "migration: cannot start its thread: %s", strerror(e));
    m->thread_started = true;
    return 0;
}

void vm_migrate_thread_stop(struct vm *vm)
{
    struct vm_migrate *m = vm->migrate;
    if (!m)
        return;
    if (m->thread_started) {
        pthread_mutex_lock(&m->lock);
        m->quit = true;
        m->cancel = true;
        if (m->link)
            mig_link_cancel(m->link);
        pthread_cond_broadcast(&m->wake);
        pthread_mutex_unlock(&m->lock);
        pthread_join(m->thread, NULL);
        m->thread_started = false;
    }
    if (m->handles_open) {
        uv_close((uv_handle_t *)&m->loop_async, NULL);
        uv_close((uv_handle_t *)&m->drain_timer, NULL);
        uv_close((uv_handle_t *)&m->cancel_timer, NULL);
        uv_close((uv_handle_t *)&m->throttle_timer, NULL);
        m->handles_open = false;
    }
}

void vm_migrate_free(struct vm *vm)
{
    struct vm_migrate *m = vm->migrate;
    if (!m)
        return;
    vm_sections_free(&m->sections);
    free(m->final.pages);
    free(m->dirty);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->wake);
    free(m);
    vm->migrate = NULL;
}
