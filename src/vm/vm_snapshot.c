/* Taking a snapshot of a running VM (docs/snapshots.md): on the loop, pause the vCPUs, let
 * block I/O drain and copy each device's state; on the writer thread, read KVM's state of the
 * paused VM, flush the disks and write the files; back on the loop, run on and report. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kiln/config/config_yaml.h"
#include "kiln/snapshot/snap_cpu.h"
#include "kiln/snapshot/snap_dir.h"
#include "kiln/snapshot/snap_state.h"
#include "kiln/snapshot/snap_mem.h"
#include "kiln/util/page_bitmap.h"
#include "kiln/vm/vm.h"
#include "kiln/vm/vm_dirty.h"
#include "kiln/vm/vm_migrate.h"
#include "kiln/vm/vm_sections.h"
#include "kiln/vm/vm_limits.h"
#include "kiln/vm/vm_snapshot.h"
#include "kiln/vm/vm_snapshot_sections.h"

/* How long block I/O already on the thread pool may take to finish before a snapshot gives up
 * (the vCPUs are paused meanwhile, so no new requests come). */
#define DRAIN_TIMEOUT_MS 10000
#define DRAIN_POLL_MS    1

struct vm_snapshot {
    struct vm *vm;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool job_ready; /* under lock: the writer has a job */
    bool quit;      /* under lock: the writer ends */
    uv_async_t done_async;
    uv_async_t captured_async; /* the paused VM is read: it may run while the files are flushed */
    bool captured;             /* under lock: what the writer needs of the paused VM is read */
    uv_timer_t drain_timer;
    bool handles_open;

    /* The writer's own, kept from one snapshot to the next: dirty-page logging is on from the
     * first snapshot; `dirty` holds the pages written since the last snapshot that succeeded
     * (folded in from KVM's log and the devices' marks at each snapshot, cleared only when
     * one succeeds, so a failed diff loses nothing); the last one's folder, by identity. */
    bool logging;
    uint64_t *dirty;
    bool have_last;
    dev_t last_dev;
    ino_t last_ino;
    char last_dir[PATH_MAX];

    /* The job under way (the loop's until job_ready, then the writer's until done_async). */
    bool busy;
    char dir[PATH_MAX];
    char base[PATH_MAX]; /* a diff's base folder, "" for a full snapshot */
    bool stop_after, was_paused;
    bool resumed;      /* the loop's: the guest runs again while the writer flushes the files */
    bool devices_held; /* the loop's: vm_devices_hold from the state's reading to RAM's */
    uint64_t started_ns, paused_ns;
    vm_snapshot_done_fn *done;
    void *opaque;
    struct vm_sections sections;
    struct vm_snapshot_result result;
};

static uint64_t ms_since(uint64_t start_ns)
{
    return (uv_hrtime() - start_ns) / 1000000;
}

/* ---- the writer thread ---- */

static int write_config(struct vm *vm, const char *path, struct error *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return error_fmt(err, -errno, "%s: %s", path, strerror(errno));
    int r = vm_running_config_emit(vm, f, err); /* the limits the API set included */
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        r = r < 0 ? r : error_fmt(err, -errno, "%s: %s", path, strerror(errno));
    if (fclose(f) != 0 && r == 0)
        r = error_fmt(err, -errno, "%s: %s", path, strerror(errno));
    return r;
}

/* A diff holds the pages written since the last snapshot: its base must be that one. Checked
 * by identity (device and inode), so any spelling of the folder's path will do. */
static int check_base(const struct vm_snapshot *s, struct error *err)
{
    struct stat st;
    if (!s->have_last)
        return error_fmt(err, -ESTALE,
                         "diff against %s: this VM has taken no snapshot yet (take a full one "
                         "first)",
                         s->base);
    if (stat(s->base, &st) < 0)
        return error_fmt(err, -ESTALE, "diff against %s: %s (this VM's last snapshot is %s)",
                         s->base, strerror(errno), s->last_dir);
    if (st.st_dev != s->last_dev || st.st_ino != s->last_ino)
        return error_fmt(err, -ESTALE,
                         "diff against %s: not this VM's last snapshot, %s (a diff holds only "
                         "the pages written since the last one)",
                         s->base, s->last_dir);
    return 0;
}

/* The guest's RAM: for a diff the pages written since the base (memory.diff, memory.dirty and
 * the base's path), else all of it. Logging starts before RAM is read, so every later write
 * is in the next diff; the fold takes all writes up to now into `dirty`. */
static int write_memory(struct vm_snapshot *s, struct snap_mem_stats *mem,
                        struct snap_mem_pending *pending, struct error *err)
{
    struct vm *vm = s->vm;
    int r = 0;
    if (!s->logging) {
        r = vm_dirty_start(vm, err);
        s->logging = r == 0;
    }
    if (r == 0)
        r = vm_dirty_collect(vm, s->dirty, err);
    char path[PATH_MAX + 32], bitmap_path[PATH_MAX + 32];
    if (r == 0 && s->base[0]) {
        snprintf(path, sizeof(path), "%s/%s", s->dir, SNAP_DIFF_FILE);
        snprintf(bitmap_path, sizeof(bitmap_path), "%s/%s", s->dir, SNAP_DIRTY_FILE);
        r = snap_mem_save_dirty(path, bitmap_path, vm->mem.mapping, vm->mem.size, s->dirty, mem,
                                err);
        if (r == 0)
            r = snap_dir_write_base(s->dir, s->base, err);
    } else if (r == 0) {
        snprintf(path, sizeof(path), "%s/%s", s->dir, SNAP_MEMORY_FILE);
        r = snap_mem_write_from(path, vm->mem.mapping, vm->mem.size, vm->mem.fd, mem, pending, err);
    }
    return r;
}

/* This snapshot is now the one the next diff is taken against. */
static void remember_last(struct vm_snapshot *s)
{
    struct stat st;
    memset(s->dirty, 0, page_bitmap_words(s->vm->mem.size / 4096) * sizeof(uint64_t));
    s->have_last = stat(s->dir, &st) == 0;
    s->last_dev = st.st_dev;
    s->last_ino = st.st_ino;
    snprintf(s->last_dir, sizeof(s->last_dir), "%s", s->dir);
}

/* Everything the paused VM has to give is read (its RAM is in the page cache, its state in
 * the state file's buffer): the loop may let it run while the files reach the disk. */
static void let_guest_run(struct vm_snapshot *s)
{
    pthread_mutex_lock(&s->lock);
    s->captured = true;
    pthread_mutex_unlock(&s->lock);
    uv_async_send(&s->captured_async);
}

/* The VM is paused until let_guest_run: the config, the state (KVM's, the devices' copied on
 * the loop, the disks' identities) into the state file's buffer, and the RAM's pages into
 * memory.kiln.tmp; then the memory file and last the state file are flushed and named, so a
 * folder with a state.kiln holds a whole snapshot. */
static int write_files(struct vm_snapshot *s, struct error *err)
{
    struct vm *vm = s->vm;
    char path[PATH_MAX + 32];
    int r = s->base[0] ? check_base(s, err) : 0;
    if (r == 0)
        r = snap_dir_prepare(s->dir, err);
    if (r == 0)
        r = vm_sections_flush_devices(vm, err);
    snprintf(path, sizeof(path), "%s/%s", s->dir, SNAP_CONFIG_FILE);
    if (r == 0)
        r = write_config(vm, path, err);

    struct snap_info info = {.memory_size = vm->mem.size, .flags = s->base[0] ? SNAP_FLAG_DIFF : 0};
    snprintf(info.kiln_version, sizeof(info.kiln_version), "%s", KILN_VERSION);
    snap_cpu_id_probe(&info.cpu);
    struct snap_writer w;
    snprintf(path, sizeof(path), "%s/%s", s->dir, SNAP_STATE_FILE);
    if (r < 0 || snap_writer_open(&w, path, &info, err) < 0)
        return r < 0 ? r : -EIO;
    r = vm_sections_write(vm, &s->sections, &w, err);

    struct snap_mem_stats mem = {0};
    struct snap_mem_pending pending = {.fd = -1};
    if (r == 0)
        r = write_memory(s, &mem, &pending, err);
    s->result.memory_bytes = vm->mem.size;
    s->result.memory_data_bytes = mem.bytes_written;
    s->result.diff = s->base[0] != 0;
    s->result.dirty_pages = s->result.diff ? mem.pages : 0;
    if (r == 0)
        let_guest_run(s);
    if (r == 0 && pending.fd >= 0)
        r = snap_mem_commit(&pending, err);
    snap_mem_pending_abort(&pending);
    if (r == 0)
        r = snap_writer_finish(&w, err);
    else
        snap_writer_abort(&w);
    if (r == 0)
        remember_last(s);
    return r;
}

static void *writer_thread(void *arg)
{
    struct vm_snapshot *s = arg;
    pthread_setname_np(pthread_self(), "kiln-snapshot");
    struct error filter_err = {{0}};
    int filtered =
        sandbox_filter_load(&s->vm->thread_filters[SANDBOX_THREAD_SNAPSHOT], &filter_err);
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->job_ready && !s->quit)
            pthread_cond_wait(&s->wake, &s->lock);
        if (!s->job_ready)
            break; /* quit, with no job left */
        pthread_mutex_unlock(&s->lock);
        struct error err = {{0}};
        int r =
            filtered < 0 ? error_fmt(&err, filtered, "%s", filter_err.msg) : write_files(s, &err);
        s->result.r = r;
        if (r < 0)
            snprintf(s->result.message, sizeof(s->result.message), "%s", err.msg);
        pthread_mutex_lock(&s->lock);
        s->job_ready = false;
        uv_async_send(&s->done_async);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- the loop's side ---- */

static void release_devices(struct vm_snapshot *s)
{
    if (s->devices_held)
        vm_devices_hold(s->vm, false);
    s->devices_held = false;
}

static void finish(struct vm_snapshot *s)
{
    struct vm *vm = s->vm;
    release_devices(s);
    vm_sections_free(&s->sections);
    s->result.total_ms = ms_since(s->started_ns);
    if (!s->resumed)
        s->result.paused_ms = ms_since(s->paused_ns);
    s->result.stopped = s->stop_after && s->result.r == 0;
    if (s->result.stopped)
        vm_request_stop(vm, VM_STOP_SNAPSHOT, 0, "stopped after a snapshot");
    else if (!s->was_paused && !s->resumed)
        vm_resume(vm);
    s->busy = false;
    s->resumed = false;
    if (s->result.r == 0 && s->result.diff)
        log_info(&vm->log,
                 "diff snapshot: %s (base %s): %llu dirty pages, %llu KiB written, vCPUs held "
                 "%llu ms",
                 s->dir, s->base, (unsigned long long)s->result.dirty_pages,
                 (unsigned long long)(s->result.memory_data_bytes >> 10),
                 (unsigned long long)s->result.paused_ms);
    else if (s->result.r == 0)
        log_info(&vm->log, "snapshot: %s: %llu of %llu MiB of RAM written, vCPUs held %llu ms",
                 s->dir, (unsigned long long)(s->result.memory_data_bytes >> 20),
                 (unsigned long long)(s->result.memory_bytes >> 20),
                 (unsigned long long)s->result.paused_ms);
    else
        log_warn(&vm->log, "snapshot: %s: %s", s->dir, s->result.message);
    s->done(s->opaque, &s->result);
}

/* The writer has read the paused VM: unless it is to stop (or was paused before), it runs on
 * while its files are flushed. */
static void on_captured(uv_async_t *handle)
{
    struct vm_snapshot *s = handle->data;
    pthread_mutex_lock(&s->lock);
    bool captured = s->captured;
    pthread_mutex_unlock(&s->lock);
    if (s->busy && captured)
        release_devices(s);
    if (!s->busy || !captured || s->resumed || s->stop_after)
        return;
    s->result.paused_ms = ms_since(s->paused_ns);
    s->resumed = true;
    if (!s->was_paused)
        vm_resume(s->vm);
}

static void on_written(uv_async_t *handle)
{
    struct vm_snapshot *s = handle->data;
    pthread_mutex_lock(&s->lock);
    bool still_writing = s->job_ready;
    pthread_mutex_unlock(&s->lock);
    if (s->busy && !still_writing)
        finish(s);
}

static void fail(struct vm_snapshot *s, int r, const char *message)
{
    s->result.r = r;
    snprintf(s->result.message, sizeof(s->result.message), "%s", message);
    finish(s);
}

static void on_drain_tick(uv_timer_t *timer)
{
    struct vm_snapshot *s = timer->data;
    if (vm_devices_in_flight(s->vm) > 0) {
        if (ms_since(s->paused_ns) < DRAIN_TIMEOUT_MS)
            return;
        uv_timer_stop(timer);
        fail(s, -ETIMEDOUT, "block I/O did not finish within 10 s; the VM runs on, unsaved");
        return;
    }
    uv_timer_stop(timer);
    /* From here until the writer has read guest RAM, no device may write there: the RAM must
     * be what the state read now says (a frame from the TAP, a rate limit's timer). */
    vm_devices_hold(s->vm, true);
    s->devices_held = true;
    struct error err = {{0}};
    if (vm_sections_collect(s->vm, &s->sections, &err) < 0) {
        fail(s, -EIO, err.msg);
        return;
    }
    pthread_mutex_lock(&s->lock);
    s->job_ready = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

int vm_snapshot_take(struct vm *vm, const char *dir, const char *base, bool stop_after,
                     vm_snapshot_done_fn *done, void *opaque, struct error *err)
{
    struct vm_snapshot *s = vm->snapshot;
    if (!s || !s->thread_started)
        return error_fmt(err, -ENOTSUP, "snapshots need the control API's writer thread");
    if (s->busy)
        return error_fmt(err, -EBUSY, "a snapshot is already being taken (into %s)", s->dir);
    if (vm_migrate_busy(vm))
        return error_fmt(err, -EBUSY, "the VM is being migrated");
    if (dir[0] != '/' || strlen(dir) >= sizeof(s->dir) - 32)
        return error_fmt(err, -EINVAL, "snapshot folder '%s': expected an absolute path", dir);
    if (base && (base[0] != '/' || strlen(base) >= sizeof(s->base)))
        return error_fmt(err, -EINVAL, "base snapshot folder '%s': expected an absolute path",
                         base);
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    snprintf(s->base, sizeof(s->base), "%s", base ? base : "");
    s->busy = true;
    s->stop_after = stop_after;
    s->done = done;
    s->opaque = opaque;
    memset(&s->result, 0, sizeof(s->result));
    s->started_ns = uv_hrtime();
    s->was_paused = vm->paused;
    s->resumed = false;
    pthread_mutex_lock(&s->lock);
    s->captured = false;
    pthread_mutex_unlock(&s->lock);
    if (!vm->paused)
        vm_pause(vm);
    s->paused_ns = uv_hrtime();
    uv_timer_start(&s->drain_timer, on_drain_tick, 0, DRAIN_POLL_MS);
    return 0;
}

void vm_snapshot_note_dirty(struct vm *vm, const uint64_t *bitmap)
{
    struct vm_snapshot *s = vm->snapshot;
    if (!s || !s->dirty)
        return;
    for (uint64_t w = 0; w < page_bitmap_words(vm->mem.size / 4096); w++)
        s->dirty[w] |= bitmap[w];
}

bool vm_snapshot_busy(const struct vm *vm)
{
    return vm->snapshot && vm->snapshot->busy;
}

int vm_snapshot_writer_start(struct vm *vm, struct error *err)
{
    struct vm_snapshot *s = calloc(1, sizeof(*s));
    if (!s)
        return error_fmt(err, -ENOMEM, "snapshot writer: out of memory");
    vm->snapshot = s;
    s->vm = vm;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    uv_async_init(&vm->loop, &s->done_async, on_written);
    uv_async_init(&vm->loop, &s->captured_async, on_captured);
    s->captured_async.data = s;
    uv_unref((uv_handle_t *)&s->captured_async);
    uv_timer_init(&vm->loop, &s->drain_timer);
    s->done_async.data = s->drain_timer.data = s;
    uv_unref((uv_handle_t *)&s->done_async);
    s->handles_open = true;
    s->dirty = calloc(page_bitmap_words(vm->mem.size / 4096), sizeof(uint64_t));
    if (!s->dirty)
        return error_fmt(err, -ENOMEM, "snapshot writer: no memory for the dirty-page bitmap");
    int e = vm_start_worker(&s->thread, writer_thread, s);
    if (e != 0)
        return error_fmt(err, -e, "snapshot writer: cannot start its thread: %s", strerror(e));
    s->thread_started = true;
    return 0;
}

void vm_snapshot_writer_stop(struct vm *vm)
{
    struct vm_snapshot *s = vm->snapshot;
    if (!s)
        return;
    /* Joined before the handles close: a file being written is finished (the writer never
     * stops half-way), and its wake-up cannot reach a closed handle. */
    if (s->thread_started) {
        pthread_mutex_lock(&s->lock);
        s->quit = true;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
        s->thread_started = false;
    }
    if (s->handles_open) {
        uv_close((uv_handle_t *)&s->done_async, NULL);
        uv_close((uv_handle_t *)&s->captured_async, NULL);
        uv_close((uv_handle_t *)&s->drain_timer, NULL);
        s->handles_open = false;
    }
}

void vm_snapshot_free(struct vm *vm)
{
    struct vm_snapshot *s = vm->snapshot;
    if (!s)
        return;
    vm_sections_free(&s->sections);
    free(s->dirty);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    free(s);
    vm->snapshot = NULL;
}
