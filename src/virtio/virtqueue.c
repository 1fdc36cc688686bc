/* Virtio layer 1 of 4, the rings: split virtqueue validation, bounded chain walks into iovecs,
 * used entries and doorbell/interrupt suppression. Knows guest memory, no device or transport. */
#include <errno.h>
#include <string.h>

#include "kiln/virtio/virtqueue.h"

/* Ring sizes in bytes (virtio 1.2 §2.7): the avail ring carries used_event after its entries
 * and the used ring carries avail_event, whether or not EVENT_IDX is negotiated. */
static uint64_t desc_table_bytes(uint16_t size)
{
    return 16ULL * size;
}
static uint64_t avail_ring_bytes(uint16_t size)
{
    return 6ULL + 2ULL * size;
}
static uint64_t used_ring_bytes(uint16_t size)
{
    return 6ULL + 8ULL * size;
}

/* Every write kiln makes into guest RAM must be marked for diff snapshots (guest_mem.h): the
 * used ring is marked whole whenever the device writes to it (a page or two). */
static void mark_used_ring(struct virtqueue *vq)
{
    guest_mem_mark_written(vq->mem, vq->used, used_ring_bytes(vq->size));
}

static bool head_busy(const struct virtqueue *vq, uint16_t head)
{
    return vq->busy_heads[head / 8] & (1u << (head % 8));
}

static void mark_busy(struct virtqueue *vq, uint16_t head)
{
    vq->busy_heads[head / 8] |= (uint8_t)(1u << (head % 8));
    vq->busy_count++;
}

/* Heads the device never held are ignored: each busy head is released exactly once. */
static void release(struct virtqueue *vq, uint16_t head)
{
    if (head >= VIRTQ_MAX_SIZE || !head_busy(vq, head))
        return;
    vq->busy_heads[head / 8] &= (uint8_t) ~(1u << (head % 8));
    vq->busy_count--;
}

static void release_all(struct virtqueue *vq)
{
    memset(vq->busy_heads, 0, sizeof(vq->busy_heads));
    vq->busy_count = 0;
}

void virtqueue_reset(struct virtqueue *vq, const struct guest_mem *mem, uint16_t max_size)
{
    memset(vq, 0, sizeof(*vq));
    vq->mem = mem;
    vq->max_size = max_size;
    vq->size = max_size;
    vq->max_chain_bytes = VIRTQ_MAX_CHAIN_BYTES;
}

static bool is_power_of_two(uint32_t n)
{
    return n != 0 && (n & (n - 1)) == 0;
}

/* Checks size and ring addresses, and points desc/avail/used into guest RAM. */
static int map_rings(struct virtqueue *vq, const char **why)
{
    if (!is_power_of_two(vq->size) || vq->size > vq->max_size) {
        *why = "queue size is not a power of 2 no larger than QueueNumMax";
        return -EINVAL;
    }
    if (vq->desc_gpa % 16 || vq->avail_gpa % 2 || vq->used_gpa % 4) {
        *why = "ring address misaligned (descriptors need 16 bytes, driver area 2, device area 4)";
        return -EINVAL;
    }
    vq->desc = guest_mem_ptr(vq->mem, vq->desc_gpa, desc_table_bytes(vq->size));
    vq->avail = guest_mem_ptr(vq->mem, vq->avail_gpa, avail_ring_bytes(vq->size));
    vq->used = guest_mem_ptr(vq->mem, vq->used_gpa, used_ring_bytes(vq->size));
    if (!vq->desc || !vq->avail || !vq->used) {
        vq->desc = NULL;
        vq->avail = NULL;
        vq->used = NULL;
        *why = "a ring lies outside guest RAM";
        return -EINVAL;
    }
    return 0;
}

int virtqueue_enable(struct virtqueue *vq, bool event_idx, bool indirect, const char **why)
{
    if (map_rings(vq, why) < 0)
        return -EINVAL;
    /* The device area is the device's to write: start it clean whatever the driver left in
     * that memory, so a stale NO_NOTIFY flag cannot silence the driver's doorbell. */
    __atomic_store_n(&vq->used->flags, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&vq->used->idx, 0, __ATOMIC_RELAXED);
    mark_used_ring(vq);
    vq->event_idx = event_idx;
    vq->indirect = indirect;
    vq->last_avail = 0;
    vq->used_idx = 0;
    vq->signalled = 0;
    vq->signalled_valid = false;
    vq->quiet = false;
    release_all(vq);
    vq->ready = true;
    return 0;
}

/* Ring fields are shared with vCPUs that write them concurrently: every read of a guest-owned
 * field is a single atomic load, so the device acts on one consistent value. */
static uint16_t load16(const uint16_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static void store16(uint16_t *p, uint16_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static uint16_t *used_event_field(struct virtqueue *vq)
{
    return &vq->avail->ring[vq->size];
}

static uint16_t *avail_event_field(struct virtqueue *vq)
{
    return (uint16_t *)&vq->used->ring[vq->size];
}

bool virtqueue_has_available(const struct virtqueue *vq)
{
    return vq->ready && load16(&vq->avail->idx) != vq->last_avail;
}

/* A descriptor copied out of guest memory once, so the guest cannot change it between the
 * checks and the use. Tables need not be aligned (indirect ones), hence memcpy. */
static void read_desc(const uint8_t *table, uint32_t index, struct vring_desc *out)
{
    memcpy(out, table + (size_t)index * sizeof(*out), sizeof(*out));
}

struct chain_walk {
    const uint8_t *table;
    uint32_t table_size; /* descriptors in the current table */
    uint32_t visited;    /* descriptors visited in the current table: > size means a loop */
    bool in_indirect;
};

static enum virtq_pop_result bad(const char **why, const char *reason)
{
    *why = reason;
    return VIRTQ_POP_BAD_CHAIN;
}

/* Switches the walk into the indirect table that d points at. */
static enum virtq_pop_result enter_indirect(struct virtqueue *vq, struct chain_walk *w,
                                            const struct vring_desc *d, const char **why)
{
    if (!vq->indirect)
        return bad(why, "indirect descriptor, but VIRTIO_RING_F_INDIRECT_DESC was not negotiated");
    if (w->in_indirect)
        return bad(why, "indirect descriptor inside an indirect table");
    if (d->flags & VRING_DESC_F_NEXT)
        return bad(why, "indirect descriptor with the NEXT flag");
    if (d->len == 0 || d->len % sizeof(struct vring_desc))
        return bad(why, "indirect table length is not a non-zero multiple of 16");
    /* The spec bounds a whole chain by the queue size, indirect tables included. */
    if (d->len / sizeof(struct vring_desc) > vq->size)
        return bad(why, "indirect table holds more descriptors than the queue size");
    w->table = guest_mem_ptr(vq->mem, d->addr, d->len);
    if (!w->table)
        return bad(why, "indirect table outside guest RAM");
    w->table_size = d->len / sizeof(struct vring_desc);
    w->visited = 0;
    w->in_indirect = true;
    return VIRTQ_POP_CHAIN;
}

/* Adds one buffer descriptor to the chain: bounds, ordering and total-length checks. */
static enum virtq_pop_result add_buffer(struct virtqueue *vq, struct virtq_chain *chain,
                                        const struct vring_desc *d, const char **why)
{
    if (d->len == 0)
        return bad(why, "zero-length descriptor");
    void *host = guest_mem_ptr(vq->mem, d->addr, d->len);
    if (!host)
        return bad(why, "buffer outside guest RAM");
    unsigned n = chain->nreadable + chain->nwritable;
    if (n == VIRTQ_MAX_SIZE)
        return bad(why, "chain has more buffers than the largest queue size");
    uint64_t total = chain->readable_len + chain->writable_len + d->len;
    if (total > vq->max_chain_bytes)
        return bad(why, vq->max_chain_bytes == VIRTQ_MAX_CHAIN_BYTES
                            ? "chain is longer than 64 MiB"
                            : "chain is longer than the device takes");
    if (d->flags & VRING_DESC_F_WRITE) {
        chain->nwritable++;
        chain->writable_len += d->len;
    } else {
        if (chain->nwritable)
            return bad(why, "device-readable buffer after a device-writable one");
        chain->nreadable++;
        chain->readable_len += d->len;
    }
    chain->iov[n].iov_base = host;
    chain->iov[n].iov_len = d->len;
    return VIRTQ_POP_CHAIN;
}

static enum virtq_pop_result walk_chain(struct virtqueue *vq, struct virtq_chain *chain,
                                        const char **why)
{
    struct chain_walk w = {.table = (const uint8_t *)vq->desc, .table_size = vq->size};
    uint32_t index = chain->head;
    for (;;) {
        if (index >= w.table_size)
            return bad(why, "next descriptor index out of range");
        if (++w.visited > w.table_size)
            return bad(why, "descriptor loop (chain longer than its table)");
        struct vring_desc d;
        read_desc(w.table, index, &d);
        enum virtq_pop_result r = (d.flags & VRING_DESC_F_INDIRECT)
                                      ? enter_indirect(vq, &w, &d, why)
                                      : add_buffer(vq, chain, &d, why);
        if (r != VIRTQ_POP_CHAIN)
            return r;
        if (d.flags & VRING_DESC_F_INDIRECT) {
            index = 0;
            continue;
        }
        if (!(d.flags & VRING_DESC_F_NEXT))
            return VIRTQ_POP_CHAIN;
        index = d.next;
    }
}

/* With EVENT_IDX the device tells the driver which avail index should trigger the next
 * doorbell; then it must look again, or a chain made available in between would wait forever. */
static bool publish_avail_event(struct virtqueue *vq)
{
    store16(avail_event_field(vq), vq->last_avail);
    mark_used_ring(vq);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return load16(&vq->avail->idx) != vq->last_avail;
}

enum virtq_pop_result virtqueue_pop(struct virtqueue *vq, struct virtq_chain *chain,
                                    const char **why)
{
    if (!vq->ready)
        return VIRTQ_POP_EMPTY;
    uint16_t avail_idx = load16(&vq->avail->idx);
    if (avail_idx == vq->last_avail) {
        if (!vq->event_idx || vq->quiet || !publish_avail_event(vq))
            return VIRTQ_POP_EMPTY;
        avail_idx = load16(&vq->avail->idx);
    }
    if ((uint16_t)(avail_idx - vq->last_avail) > vq->size) {
        *why = "available index ran more than the queue size ahead";
        return VIRTQ_POP_BROKEN_RING;
    }
    /* The ring entry and the descriptors it names are read only after the index. */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint16_t head = load16(&vq->avail->ring[vq->last_avail % vq->size]);
    if (head >= vq->size) {
        *why = "available ring names a descriptor past the queue size";
        return VIRTQ_POP_BROKEN_RING;
    }
    /* Without this check a driver could re-offer one head in a loop and have the device
     * start an unbounded number of requests that all answer to the same descriptors. */
    if (head_busy(vq, head)) {
        *why = "available ring offers a head the device has not given back yet";
        return VIRTQ_POP_BROKEN_RING;
    }
    mark_busy(vq, head);
    vq->popped_heads[vq->last_avail % vq->size] = head;
    vq->last_avail++;
    if (vq->event_idx && !vq->quiet) {
        store16(avail_event_field(vq), vq->last_avail);
        mark_used_ring(vq);
    }

    memset(chain, 0, offsetof(struct virtq_chain, iov));
    chain->head = head;
    enum virtq_pop_result r = walk_chain(vq, chain, why);
    /* The device may write any of the writable buffers from now until it pushes the chain,
     * which a snapshot always waits for (in-flight requests drain first): marking them here,
     * whole, covers every byte any device writes, whichever way it copies. */
    if (r == VIRTQ_POP_CHAIN) {
        const struct iovec *w = virtq_chain_writable(chain);
        for (unsigned i = 0; i < chain->nwritable; i++)
            guest_mem_mark_written(vq->mem, w[i].iov_base, w[i].iov_len);
    }
    return r;
}

/* Marks the writable buffers of the chain at head again, now that the device has written
 * them. The mark made at the pop is not enough for a migration: its thread takes the marks
 * while the devices run, so a mark taken (and the page sent) between the pop and the device's
 * write would leave the destination with the old bytes. The guest may have changed the
 * descriptors since the pop; then other pages are marked, which costs a resend and no more.
 * The walk has walk_chain's bounds (the chain's length and total bytes too), so a bad chain
 * ends it without marking further and no chain costs more than the pop did. */
static void mark_chain_written(struct virtqueue *vq, uint16_t head)
{
    struct chain_walk w = {.table = (const uint8_t *)vq->desc, .table_size = vq->size};
    uint32_t index = head;
    uint64_t total = 0;
    while (index < w.table_size && ++w.visited <= w.table_size) {
        struct vring_desc d;
        read_desc(w.table, index, &d);
        if (d.flags & VRING_DESC_F_INDIRECT) {
            if (w.in_indirect || !vq->indirect || d.len % sizeof(struct vring_desc) ||
                d.len / sizeof(struct vring_desc) > vq->size)
                return;
            w.table = guest_mem_ptr(vq->mem, d.addr, d.len);
            if (!w.table)
                return;
            w.table_size = d.len / sizeof(struct vring_desc);
            w.visited = 0;
            w.in_indirect = true;
            index = 0;
            continue;
        }
        if (d.len > vq->max_chain_bytes - total)
            return;
        total += d.len;
        if (d.flags & VRING_DESC_F_WRITE) {
            void *host = guest_mem_ptr(vq->mem, d.addr, d.len);
            if (host)
                guest_mem_mark_written(vq->mem, host, d.len);
        }
        if (!(d.flags & VRING_DESC_F_NEXT))
            return;
        index = d.next;
    }
}

/* avail_event stays where the pops left it: a device puts chains back because it needs more
 * than there are (virtio-net waiting for receive buffers), so the doorbell it wants is for the
 * next new chain, not for the ones it already saw (which the driver will not ring for again). */
void virtqueue_unpop(struct virtqueue *vq, uint16_t n)
{
    for (uint16_t i = 0; i < n; i++) {
        vq->last_avail--;
        release(vq, vq->popped_heads[vq->last_avail % vq->size]);
    }
}

void virtqueue_push(struct virtqueue *vq, uint16_t head, uint32_t len)
{
    /* A queue the driver stopped (QueueReady = 0) or reset is not ours to touch (§4.2.2.1):
     * a completion that arrives late is dropped. */
    if (!vq->ready)
        return;
    if (head < vq->size && head_busy(vq, head))
        mark_chain_written(vq, head);
    release(vq, head);
    struct vring_used_elem *elem = &vq->used->ring[vq->used_idx % vq->size];
    __atomic_store_n(&elem->id, head, __ATOMIC_RELAXED);
    __atomic_store_n(&elem->len, len, __ATOMIC_RELAXED);
    vq->used_idx++;
    /* Release: the driver must see the element (and the data written into the buffers)
     * before it sees the index that covers it. */
    __atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
    mark_used_ring(vq);
}

bool virtqueue_should_interrupt(struct virtqueue *vq)
{
    if (!vq->ready)
        return false;
    /* Order the used->idx store before reading the driver's suppression fields. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!vq->event_idx)
        return !(load16(&vq->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
    uint16_t old = vq->signalled;
    bool valid = vq->signalled_valid;
    vq->signalled = vq->used_idx;
    vq->signalled_valid = true;
    return !valid || vring_need_event(load16(used_event_field(vq)), vq->used_idx, old);
}

void virtqueue_quiet(struct virtqueue *vq)
{
    if (!vq->ready || vq->quiet)
        return;
    vq->quiet = true;
    /* With EVENT_IDX, avail_event simply stays where it is while pops go past it: the driver
     * notifies only when it crosses that index, which it already has. */
    if (!vq->event_idx) {
        __atomic_store_n(&vq->used->flags, VRING_USED_F_NO_NOTIFY, __ATOMIC_RELAXED);
        mark_used_ring(vq);
    }
}

bool virtqueue_wake(struct virtqueue *vq)
{
    if (!vq->ready)
        return false;
    vq->quiet = false;
    if (vq->event_idx)
        store16(avail_event_field(vq), vq->last_avail);
    else
        __atomic_store_n(&vq->used->flags, 0, __ATOMIC_RELAXED);
    mark_used_ring(vq);
    /* The driver checks our flag after publishing its index; we check its index after
     * publishing our flag: one of the two sees the other. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return load16(&vq->avail->idx) != vq->last_avail;
}

void virtqueue_save(const struct virtqueue *vq, struct virtqueue_state *out)
{
    memset(out, 0, sizeof(*out));
    out->desc_gpa = vq->desc_gpa;
    out->avail_gpa = vq->avail_gpa;
    out->used_gpa = vq->used_gpa;
    out->size = vq->size;
    out->last_avail = vq->last_avail;
    out->used_idx = vq->used_idx;
    out->signalled = vq->signalled;
    out->ready = vq->ready;
    out->event_idx = vq->event_idx;
    out->indirect = vq->indirect;
    out->signalled_valid = vq->signalled_valid;
    out->quiet = vq->quiet;
}

int virtqueue_restore(struct virtqueue *vq, const struct virtqueue_state *in, const char **why)
{
    uint64_t max_chain_bytes = vq->max_chain_bytes;
    virtqueue_reset(vq, vq->mem, vq->max_size);
    vq->max_chain_bytes = max_chain_bytes;
    vq->size = in->size;
    vq->desc_gpa = in->desc_gpa;
    vq->avail_gpa = in->avail_gpa;
    vq->used_gpa = in->used_gpa;
    if (!in->ready)
        return 0; /* set-up registers only; QueueReady will check them */
    /* The indexes need no check: any value is one a driver could have caused, and the pop
     * path already treats a bad distance to avail->idx as a broken ring. */
    if (map_rings(vq, why) < 0) {
        virtqueue_reset(vq, vq->mem, vq->max_size);
        vq->max_chain_bytes = max_chain_bytes;
        return -EINVAL;
    }
    vq->last_avail = in->last_avail;
    vq->used_idx = in->used_idx;
    vq->signalled = in->signalled;
    vq->event_idx = in->event_idx != 0;
    vq->indirect = in->indirect != 0;
    vq->signalled_valid = in->signalled_valid != 0;
    vq->quiet = in->quiet != 0;
    vq->ready = true;
    return 0;
}
