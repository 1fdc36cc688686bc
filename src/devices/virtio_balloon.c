/* virtio-balloon: inflate and deflate PFN lists, free page reports and statistics, served on
 * the event-loop thread; every PFN and range is checked against RAM before anything is touched. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/devices/virtio_balloon.h"
#include "kiln/util/container_of.h"
#include "kiln/util/counter.h"
#include "kiln/util/iov.h"
#include "kiln/util/page_bitmap.h"

#define BALLOON_QUEUE_SIZE 64
/* Chains per doorbell before the loop gets a turn: Linux sends 256 PFNs a chain. */
#define BALLOON_CHAINS_PER_CALL 8
#define PAGE_SIZE               (1ULL << VIRTIO_BALLOON_PAGE_SHIFT)
#define STAT_ENTRY_SIZE         10 /* le16 tag, le64 value, packed */
/* Linux reports up to 32 free blocks of up to 4 MiB in one chain: 128 MiB, more than the
 * 64 MiB other devices take. kiln never copies a report's bytes, and reads at most the VM's
 * page count of PFNs from an inflate or deflate chain, whatever its length. */
#define BALLOON_MAX_CHAIN_BYTES (1ULL << 30)

/* What a queue is for. Queues are numbered without gaps, so the statistics and reporting
 * queues' indexes depend on which of the two the driver took (Linux numbers them so too). */
enum queue_role { ROLE_INFLATE, ROLE_DEFLATE, ROLE_STATS, ROLE_REPORTING, ROLE_NONE };

static const char *const stat_names[VIRTIO_BALLOON_STAT_TAGS] = {
    "swap_in",          "swap_out",     "major_faults",
    "minor_faults",     "free_memory",  "total_memory",
    "available_memory", "disk_caches",  "hugetlb_allocations",
    "hugetlb_failures", "oom_kills",    "alloc_stalls",
    "async_scans",      "direct_scans", "async_reclaims",
    "direct_reclaims",
};

const char *virtio_balloon_stat_name(unsigned tag)
{
    return tag < VIRTIO_BALLOON_STAT_TAGS ? stat_names[tag] : NULL;
}

static enum queue_role queue_role(const struct virtio_dev *d, unsigned q)
{
    if (q <= 1)
        return q == 0 ? ROLE_INFLATE : ROLE_DEFLATE;
    unsigned next = 2;
    if (virtio_dev_feature(d, VIRTIO_BALLOON_F_STATS_VQ) && q == next++)
        return ROLE_STATS;
    if (virtio_dev_feature(d, VIRTIO_BALLOON_F_REPORTING) && q == next)
        return ROLE_REPORTING;
    return ROLE_NONE;
}

/* The statistics queue's index under the negotiated features, or -1 without one. */
static int stats_queue(const struct virtio_dev *d)
{
    return virtio_dev_feature(d, VIRTIO_BALLOON_F_STATS_VQ) ? 2 : -1;
}

/* One warning per kind of ignored input, so a hostile guest cannot flood the log. */
static void warn_once(struct virtio_balloon *b, bool *logged, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void warn_once(struct virtio_balloon *b, bool *logged, const char *fmt, ...)
{
    if (*logged)
        return;
    *logged = true;
    char what[160];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof(what), fmt, args);
    va_end(args);
    log_warn(b->vdev.log, "%s: %s (further ones are counted, not logged)", b->vdev.label, what);
}

/* Consecutive pages given back with one call. */
struct discard_run {
    uint64_t gpa, pages;
};

static void discard_flush(struct virtio_balloon *b, struct discard_run *run)
{
    if (run->pages == 0)
        return;
    int r = guest_mem_discard(b->vdev.mem, run->gpa, run->pages * PAGE_SIZE);
    if (r < 0) {
        counter_add(&b->counters.discard_errors, 1);
        warn_once(b, &b->logged_discard, "the host refused to take back %llu pages at 0x%llx: %s",
                  (unsigned long long)run->pages, (unsigned long long)run->gpa, strerror(-r));
    } else {
        counter_add(&b->counters.discarded_pages, run->pages);
    }
    run->pages = 0;
}

static void discard_add(struct virtio_balloon *b, struct discard_run *run, uint64_t gpa)
{
    if (run->pages > 0 && gpa == run->gpa + run->pages * PAGE_SIZE) {
        run->pages++;
        return;
    }
    discard_flush(b, run);
    *run = (struct discard_run){.gpa = gpa, .pages = 1};
}

/* The page of the RAM mapping that pfn is, or false (counted) if it is not RAM. */
static bool pfn_page(struct virtio_balloon *b, uint32_t pfn, uint64_t *page)
{
    uint64_t gpa = (uint64_t)pfn << VIRTIO_BALLOON_PAGE_SHIFT;
    const uint8_t *hva = guest_mem_ptr(b->vdev.mem, gpa, PAGE_SIZE);
    if (!hva) {
        counter_add(&b->counters.bad_pfns, 1);
        warn_once(b, &b->logged_bad, "ignored PFN 0x%x: not RAM (the MMIO hole or past the end)",
                  pfn);
        return false;
    }
    *page = (uint64_t)(hva - (const uint8_t *)b->vdev.mem->mapping) / PAGE_SIZE;
    return true;
}

static void inflate_pfn(struct virtio_balloon *b, uint32_t pfn, struct discard_run *run)
{
    uint64_t page;
    if (!pfn_page(b, pfn, &page))
        return;
    if (page_bitmap_test(b->in_balloon, page)) {
        counter_add(&b->counters.repeated_pfns, 1);
        warn_once(b, &b->logged_repeated, "ignored PFN 0x%x: already in the balloon", pfn);
        return;
    }
    b->in_balloon[page / 64] |= 1ULL << (page % 64);
    b->pages_in_balloon++;
    counter_add(&b->counters.inflated_pages, 1);
    discard_add(b, run, (uint64_t)pfn << VIRTIO_BALLOON_PAGE_SHIFT);
}

/* Deflating needs nothing from the host: the page comes back when the guest touches it. */
static void deflate_pfn(struct virtio_balloon *b, uint32_t pfn)
{
    uint64_t page;
    if (!pfn_page(b, pfn, &page))
        return;
    if (!page_bitmap_test(b->in_balloon, page)) {
        counter_add(&b->counters.repeated_pfns, 1);
        warn_once(b, &b->logged_repeated, "ignored PFN 0x%x: deflated but not in the balloon", pfn);
        return;
    }
    b->in_balloon[page / 64] &= ~(1ULL << (page % 64));
    b->pages_in_balloon--;
    counter_add(&b->counters.deflated_pages, 1);
}

/* Each little-endian 32-bit PFN of the chain's readable buffers, at most the VM's page count:
 * more cannot mean anything, so the rest is counted and not even read (a 64 MiB chain would
 * otherwise hold the loop for a while). A PFN may straddle two buffers. */
static void take_pfns(struct virtio_balloon *b, const struct virtq_chain *chain, bool inflate)
{
    uint64_t total = chain->readable_len / 4;
    uint64_t limit = total < b->ram_pages ? total : b->ram_pages;
    struct discard_run run = {0};
    uint64_t taken = 0;
    uint32_t word = 0;
    unsigned have = 0;
    for (unsigned i = 0; i < chain->nreadable && taken < limit; i++) {
        const uint8_t *p = chain->iov[i].iov_base;
        for (size_t k = 0; k < chain->iov[i].iov_len && taken < limit; k++) {
            word |= (uint32_t)p[k] << (8 * have);
            if (++have < 4)
                continue;
            if (inflate)
                inflate_pfn(b, word, &run);
            else
                deflate_pfn(b, word);
            taken++;
            word = 0;
            have = 0;
        }
    }
    discard_flush(b, &run);
    if (total > limit) {
        counter_add(&b->counters.excess_pfns, total - limit);
        warn_once(b, &b->logged_excess,
                  "ignored %llu PFNs of a buffer of %llu: more than the VM's %llu pages",
                  (unsigned long long)(total - limit), (unsigned long long)total,
                  (unsigned long long)b->ram_pages);
    }
    if (chain->readable_len % 4 != 0)
        virtio_dev_log_once(&b->vdev, "a PFN list of %llu bytes (expected whole 4-byte PFNs)",
                            (unsigned long long)chain->readable_len);
}

/* hva lies in RAM (the ring walker checked every buffer): its guest-physical address. */
static uint64_t gpa_of(const struct guest_mem *mem, const uint8_t *hva)
{
    for (int i = 0; i < mem->nregions; i++) {
        const struct guest_mem_region *r = &mem->regions[i];
        if (hva >= r->hva && (uint64_t)(hva - r->hva) < r->size)
            return r->gpa + (uint64_t)(hva - r->hva);
    }
    return 0;
}

/* Free page reporting: every buffer is a range of free guest memory; its whole pages go back
 * to the host. The ring walker refused any buffer outside RAM already. */
static void take_report(struct virtio_balloon *b, const struct virtq_chain *chain)
{
    for (unsigned i = 0; i < chain->nreadable + chain->nwritable; i++) {
        const uint8_t *hva = chain->iov[i].iov_base;
        uint64_t len = chain->iov[i].iov_len;
        if (len == 0)
            continue;
        counter_add(&b->counters.reported_pages, len / PAGE_SIZE);
        uint64_t gpa = gpa_of(b->vdev.mem, hva);
        int r = guest_mem_discard(b->vdev.mem, gpa, len);
        if (r < 0) {
            counter_add(&b->counters.discard_errors, 1);
            warn_once(b, &b->logged_discard,
                      "the host refused to take back %llu bytes at 0x%llx: %s",
                      (unsigned long long)len, (unsigned long long)gpa, strerror(-r));
        } else {
            counter_add(&b->counters.discarded_pages, len / PAGE_SIZE);
        }
    }
}

/* A statistics buffer: tag/value pairs, kept until the timer asks for new ones. */
static void take_stats(struct virtio_balloon *b, unsigned q, const struct virtq_chain *chain)
{
    if (b->stats_held) /* a driver that gives two: the older goes back */
        virtio_dev_push(&b->vdev, q, b->stats_head, 0);
    uint8_t entry[STAT_ENTRY_SIZE];
    uint32_t seen = 0;
    for (size_t offset = 0; offset + STAT_ENTRY_SIZE <= chain->readable_len;
         offset += STAT_ENTRY_SIZE) {
        iov_to_buf(chain->iov, chain->nreadable, offset, entry, sizeof(entry));
        uint16_t tag = (uint16_t)(entry[0] | entry[1] << 8);
        uint64_t value = 0;
        for (int i = 7; i >= 0; i--)
            value = value << 8 | entry[2 + i];
        if (tag < VIRTIO_BALLOON_STAT_TAGS) {
            b->stats[tag] = value;
            seen |= 1u << tag;
        }
    }
    b->stats_seen = seen;
    b->stats_updates++;
    b->stats_held = true;
    b->stats_head = chain->head;
}

/* Every chain is taken at once (the balloon has no rate limit). */
static bool serve_chain(struct virtio_dev *d, unsigned q, struct virtq_chain *chain)
{
    struct virtio_balloon *b = container_of(d, struct virtio_balloon, vdev);
    switch (queue_role(d, q)) {
    case ROLE_INFLATE:
    case ROLE_DEFLATE:
        take_pfns(b, chain, queue_role(d, q) == ROLE_INFLATE);
        virtio_dev_push(d, q, chain->head, 0);
        break;
    case ROLE_REPORTING:
        take_report(b, chain);
        virtio_dev_push(d, q, chain->head, 0);
        break;
    case ROLE_STATS:
        take_stats(b, q, chain);
        break;
    case ROLE_NONE:
        virtio_dev_reject(d, q, chain->head, "a queue the negotiated features do not have");
        break;
    }
    return true;
}

static void balloon_queue_notify(struct virtio_dev *d, unsigned q)
{
    struct virtio_balloon *b = container_of(d, struct virtio_balloon, vdev);
    virtio_dev_drain(d, q, &b->chain, BALLOON_CHAINS_PER_CALL, NULL, serve_chain);
    virtio_dev_notify_used(d, q);
}

static void balloon_config_read(struct virtio_dev *d, uint32_t offset, uint8_t *data, unsigned size)
{
    struct virtio_balloon *b = container_of(d, struct virtio_balloon, vdev);
    virtio_dev_config_copy(&b->config, sizeof(b->config), offset, data, size);
}

/* Only actual is the driver's to write (§5.5.6); num_pages is the host's. */
static void balloon_config_write(struct virtio_dev *d, uint32_t offset, const uint8_t *data,
                                 unsigned size)
{
    struct virtio_balloon *b = container_of(d, struct virtio_balloon, vdev);
    uint32_t actual_at = (uint32_t)offsetof(__typeof__(b->config), actual);
    if (offset < actual_at || offset + size > actual_at + sizeof(b->config.actual)) {
        virtio_dev_log_once(d, "a config write at offset %u (only actual, at %u, is the driver's)",
                            offset, actual_at);
        return;
    }
    memcpy((uint8_t *)&b->config.actual + (offset - actual_at), data, size);
}

/* After a reset the guest owns all its pages again; kiln's view of the balloon starts over. */
static void balloon_reset(struct virtio_dev *d)
{
    struct virtio_balloon *b = container_of(d, struct virtio_balloon, vdev);
    memset(b->in_balloon, 0, page_bitmap_words(b->ram_pages) * sizeof(uint64_t));
    b->pages_in_balloon = 0;
    b->stats_held = false;
    b->config.actual = 0;
}

static const struct virtio_dev_ops virtio_balloon_ops = {
    .config_read = balloon_config_read,
    .config_write = balloon_config_write,
    .queue_notify = balloon_queue_notify,
    .reset = balloon_reset,
};

int virtio_balloon_init(struct virtio_balloon *b, const struct virtio_balloon_options *options,
                        const struct guest_mem *mem, const struct log *log, struct error *err)
{
    memset(b, 0, sizeof(*b));
    b->options = *options;
    b->ram_pages = mem->size / PAGE_SIZE;
    if (options->target_pages > b->ram_pages)
        return error_fmt(err, -EINVAL,
                         "virtio-balloon: a target of %u pages is more than the %llu "
                         "pages of RAM",
                         options->target_pages, (unsigned long long)b->ram_pages);
    b->in_balloon = calloc(page_bitmap_words(b->ram_pages), sizeof(uint64_t));
    if (!b->in_balloon)
        return error_fmt(err, -ENOMEM, "virtio-balloon: out of memory");
    b->config.num_pages = options->target_pages;
    uint64_t features = 0;
    unsigned queues = 2;
    if (options->stats_seconds) {
        features |= 1ULL << VIRTIO_BALLOON_F_STATS_VQ;
        queues++;
    }
    if (options->free_page_reporting) {
        features |= 1ULL << VIRTIO_BALLOON_F_REPORTING;
        queues++;
    }
    if (options->deflate_on_oom)
        features |= 1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
    struct virtio_device_info info = {
        .name = "virtio-balloon",
        .device_id = VIRTIO_ID_BALLOON,
        .features = features,
        .num_queues = queues,
        .queue_max_size = BALLOON_QUEUE_SIZE,
        .config_size = sizeof(b->config),
        .max_chain_bytes = BALLOON_MAX_CHAIN_BYTES,
        .ops = &virtio_balloon_ops,
    };
    int r = virtio_dev_init(&b->vdev, &info, mem, log, err);
    if (r < 0) {
        free(b->in_balloon);
        b->in_balloon = NULL;
    }
    return r;
}

void virtio_balloon_request_stats(struct virtio_balloon *b)
{
    virtio_dev_lock(&b->vdev);
    int q = stats_queue(&b->vdev);
    /* Not while a snapshot holds the device: the next tick asks. */
    if (b->stats_held && q >= 0 && virtio_dev_queue_live(&b->vdev, (unsigned)q) &&
        !virtio_dev_held(&b->vdev)) {
        b->stats_held = false;
        virtio_dev_push(&b->vdev, (unsigned)q, b->stats_head, 0);
        virtio_dev_notify_used(&b->vdev, (unsigned)q);
    }
    virtio_dev_unlock(&b->vdev);
}

static void stats_timer_fired(uv_timer_t *timer)
{
    struct virtio_balloon *b = timer->data;
    if (b->guest_runs(b->guest_runs_opaque))
        virtio_balloon_request_stats(b);
}

int virtio_balloon_attach(struct virtio_balloon *b, uv_loop_t *loop,
                          bool (*guest_runs)(void *opaque), void *opaque, struct error *err)
{
    b->guest_runs = guest_runs;
    b->guest_runs_opaque = opaque;
    if (b->options.stats_seconds == 0)
        return 0;
    int r = uv_timer_init(loop, &b->stats_timer);
    if (r < 0)
        return error_fmt(err, r, "virtio-balloon: cannot make its statistics timer: %s",
                         uv_strerror(r));
    b->stats_timer.data = b;
    b->timer_started = true;
    uint64_t ms = (uint64_t)b->options.stats_seconds * 1000;
    uv_timer_start(&b->stats_timer, stats_timer_fired, ms, ms);
    return 0;
}

void virtio_balloon_detach(struct virtio_balloon *b)
{
    if (b->timer_started)
        uv_close((uv_handle_t *)&b->stats_timer, NULL);
    b->timer_started = false;
}

void virtio_balloon_destroy(struct virtio_balloon *b)
{
    virtio_dev_destroy(&b->vdev);
    free(b->in_balloon);
    b->in_balloon = NULL;
}

int virtio_balloon_set_target(struct virtio_balloon *b, uint64_t pages, struct error *err)
{
    if (pages > b->ram_pages) {
        const uint64_t per_mib = 1ULL << (20 - VIRTIO_BALLOON_PAGE_SHIFT);
        if (pages % per_mib == 0)
            return error_fmt(err, -EINVAL,
                             "a balloon of %llu MiB is more than the VM's %llu MiB of memory",
                             (unsigned long long)(pages / per_mib),
                             (unsigned long long)(b->ram_pages / per_mib));
        return error_fmt(err, -EINVAL,
                         "a balloon of %llu pages is more than the VM's %llu pages of memory",
                         (unsigned long long)pages, (unsigned long long)b->ram_pages);
    }
    virtio_dev_lock(&b->vdev);
    if (b->config.num_pages != pages) {
        b->config.num_pages = (uint32_t)pages;
        virtio_dev_config_changed(&b->vdev);
    }
    virtio_dev_unlock(&b->vdev);
    return 0;
}

void virtio_balloon_read_counters(const struct virtio_balloon *b,
                                  struct virtio_balloon_counters *out)
{
    const struct virtio_balloon_counters *c = &b->counters;
    *out = (struct virtio_balloon_counters){
        .inflated_pages = counter_read(&c->inflated_pages),
        .deflated_pages = counter_read(&c->deflated_pages),
        .discarded_pages = counter_read(&c->discarded_pages),
        .reported_pages = counter_read(&c->reported_pages),
        .bad_pfns = counter_read(&c->bad_pfns),
        .repeated_pfns = counter_read(&c->repeated_pfns),
        .excess_pfns = counter_read(&c->excess_pfns),
        .discard_errors = counter_read(&c->discard_errors),
    };
}

void virtio_balloon_read_info(struct virtio_balloon *b, struct virtio_balloon_info *out)
{
    memset(out, 0, sizeof(*out));
    virtio_dev_lock(&b->vdev);
    out->target_pages = b->config.num_pages;
    out->actual_pages = b->config.actual;
    out->pages_in_balloon = b->pages_in_balloon;
    out->stats_enabled = b->options.stats_seconds != 0;
    out->stats_seen = b->stats_seen;
    memcpy(out->stats, b->stats, sizeof(out->stats));
    out->stats_updates = b->stats_updates;
    virtio_dev_unlock(&b->vdev);
    virtio_balloon_read_counters(b, &out->counters);
}

void virtio_balloon_save(struct virtio_balloon *b, struct virtio_balloon_state *out)
{
    virtio_dev_lock(&b->vdev);
    memset(out, 0, sizeof(*out));
    virtio_dev_save(&b->vdev, &out->dev);
    out->num_pages = b->config.num_pages;
    out->actual = b->config.actual;
    out->stats_held = b->stats_held;
    virtio_dev_unlock(&b->vdev);
}

int virtio_balloon_restore(struct virtio_balloon *b, const struct virtio_balloon_state *in,
                           struct error *err)
{
    bool stats_negotiated = in->dev.driver_features & (1ULL << VIRTIO_BALLOON_F_STATS_VQ);
    bool pad_zero = true;
    for (size_t i = 0; i < sizeof(in->pad); i++)
        pad_zero = pad_zero && in->pad[i] == 0;
    if (in->num_pages > b->ram_pages || !pad_zero || in->stats_held > 1 ||
        (in->stats_held && (!stats_negotiated || !in->dev.queues[2].ready)))
        return error_fmt(err, -EINVAL,
                         "%s: saved balloon (target %u pages of %llu, statistics held %u) does not "
                         "fit this VM",
                         b->vdev.label, in->num_pages, (unsigned long long)b->ram_pages,
                         in->stats_held);
    virtio_dev_lock(&b->vdev);
    int r = virtio_dev_restore(&b->vdev, &in->dev, err);
    if (r == 0) {
        b->config.num_pages = in->num_pages;
        b->config.actual = in->actual;
        b->stats_held = false;
        /* The driver's statistics buffer is the last one taken from its queue: take it again
         * (and read it afresh) when the restored queue is kicked. */
        if (in->stats_held)
            virtqueue_unpop(&b->vdev.queues[2], 1);
    }
    virtio_dev_unlock(&b->vdev);
    return r;
}
