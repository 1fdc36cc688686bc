/* virtio-balloon (virtio 1.2 §5.5): the host asks the guest for pages back (num_pages), the
 * guest hands them over by PFN and kiln returns their memory to the host; plus statistics,
 * free page reporting and deflate-on-oom. docs/balloon.md. */
#ifndef KILN_DEVICES_VIRTIO_BALLOON_H
#define KILN_DEVICES_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "kiln/virtio/virtio_dev.h"

/* Feature bits (virtio 1.2 §5.5.3). kiln never offers MUST_TELL_HOST (a deflate needs nothing
 * from the host: a page comes back when the guest touches it), FREE_PAGE_HINT or PAGE_POISON. */
#define VIRTIO_BALLOON_F_STATS_VQ       1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_REPORTING      5

/* A PFN is a 4 KiB frame number whatever the guest's page size. */
#define VIRTIO_BALLOON_PAGE_SHIFT 12

/* The statistics tags kiln names (§5.5.6.3, and Linux's later ones); other tags are ignored. */
#define VIRTIO_BALLOON_STAT_TAGS 16
/* "swap_in", "free_memory", ...: the name of tag, or NULL past VIRTIO_BALLOON_STAT_TAGS. */
const char *virtio_balloon_stat_name(unsigned tag);

struct virtio_balloon_options {
    uint32_t target_pages;    /* the first num_pages */
    bool deflate_on_oom;      /* offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM */
    unsigned stats_seconds;   /* 0: no statistics queue; else how often to ask for them */
    bool free_page_reporting; /* offer VIRTIO_BALLOON_F_REPORTING */
};

/* kiln's own statistics of the device (never in a snapshot; they only grow). */
struct virtio_balloon_counters {
    uint64_t inflated_pages;  /* PFNs taken into the balloon */
    uint64_t deflated_pages;  /* PFNs taken out of it */
    uint64_t discarded_pages; /* pages given back to the host (inflated and reported) */
    uint64_t reported_pages;  /* free pages the guest reported */
    uint64_t bad_pfns;        /* PFNs outside RAM (the MMIO hole, past RAM): ignored */
    uint64_t repeated_pfns;   /* inflated while in the balloon, or deflated while not */
    uint64_t excess_pfns;     /* past the VM's page count in one buffer: ignored */
    uint64_t discard_errors;  /* the host refused to take pages back */
};

/* What GET /vm/balloon shows: the target, the guest's answer, its last statistics. */
struct virtio_balloon_info {
    uint32_t target_pages;
    uint32_t actual_pages;     /* as the driver last wrote it */
    uint64_t pages_in_balloon; /* inflated and not deflated since the device started or reset */
    bool stats_enabled;
    uint32_t stats_seen; /* bit t: tag t came in the last statistics */
    uint64_t stats[VIRTIO_BALLOON_STAT_TAGS];
    uint64_t stats_updates; /* statistics buffers received */
    struct virtio_balloon_counters counters;
};

struct virtio_balloon {
    struct virtio_dev vdev;
    struct {
        uint32_t num_pages; /* the host's target, in 4 KiB pages */
        uint32_t actual;    /* the driver's */
    } config;
    struct virtio_balloon_options options;
    uint64_t ram_pages;
    uint64_t *in_balloon; /* bit i: page i of the RAM mapping is in the balloon */
    uint64_t pages_in_balloon;
    /* The statistics buffer the driver gave, held until the next request. */
    bool stats_held;
    uint16_t stats_head;
    uint32_t stats_seen;
    uint64_t stats[VIRTIO_BALLOON_STAT_TAGS];
    uint64_t stats_updates;
    uv_timer_t stats_timer;
    bool timer_started;
    bool (*guest_runs)(void *opaque); /* may the timer write guest RAM now? (attach) */
    void *guest_runs_opaque;
    bool logged_bad, logged_repeated, logged_excess, logged_discard; /* one line per kind */
    struct virtio_balloon_counters counters;                         /* kiln/util/counter.h */
    struct virtq_chain chain;                                        /* scratch for popping */
};

/* Guest-visible state beyond the core's: the target and the driver's answer, and whether kiln
 * held a statistics buffer (taken again from the ring on restore). */
struct virtio_balloon_state {
    struct virtio_dev_state dev;
    uint32_t num_pages;
    uint32_t actual;
    uint8_t stats_held;
    uint8_t pad[7];
};
_Static_assert(sizeof(struct virtio_balloon_state) == sizeof(struct virtio_dev_state) + 16,
               "virtio_balloon_state has no padding");

int virtio_balloon_init(struct virtio_balloon *b, const struct virtio_balloon_options *options,
                        const struct guest_mem *mem, const struct log *log, struct error *err);
/* Starts (loop thread) / stops the statistics timer; nothing without statistics. Asking for
 * statistics writes the used ring in guest RAM, so a tick is skipped while guest_runs(opaque)
 * says the vCPUs are held: a snapshot's writer may be copying RAM then (and a held guest could
 * not answer anyway). */
int virtio_balloon_attach(struct virtio_balloon *b, uv_loop_t *loop,
                          bool (*guest_runs)(void *opaque), void *opaque, struct error *err);
void virtio_balloon_detach(struct virtio_balloon *b);
void virtio_balloon_destroy(struct virtio_balloon *b);

/* A new target (loop thread): num_pages changes and the driver gets a config interrupt.
 * -EINVAL if pages is more than the VM's RAM. */
int virtio_balloon_set_target(struct virtio_balloon *b, uint64_t pages, struct error *err);
void virtio_balloon_read_info(struct virtio_balloon *b, struct virtio_balloon_info *out);
/* The counters, from any thread without the lock. */
void virtio_balloon_read_counters(const struct virtio_balloon *b,
                                  struct virtio_balloon_counters *out);
/* The statistics timer's work: gives the held statistics buffer back so the driver refills
 * it. Public for the unit tests, which have no loop. */
void virtio_balloon_request_stats(struct virtio_balloon *b);

void virtio_balloon_save(struct virtio_balloon *b, struct virtio_balloon_state *out);
int virtio_balloon_restore(struct virtio_balloon *b, const struct virtio_balloon_state *in,
                           struct error *err);

#endif
