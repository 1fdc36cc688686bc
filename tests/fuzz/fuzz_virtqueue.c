/* libFuzzer target for the virtqueue walker: the input becomes the queue parameters, the
 * descriptor table, the avail ring and an indirect-table area in guest RAM (small, or split
 * around the MMIO hole); chains are popped, unpopped and pushed until the queue is empty. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/virtio/virtqueue.h"

/* Input layout (short inputs are padded with zeros):
 *   [0]     queue size = 1 << (byte % 9)
 *   [1]     bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 RAM across the MMIO hole,
 *           bits 3-4 ring placement (low RAM / end of low RAM / above 4 GiB), bit 5 long
 *           chains (next = i + 1, lengths below 64 KiB, NEXT set in the descriptor table)
 *   [2..3]  the index the queue starts at (chains served before), to cross 65535
 *   [4..5]  avail->idx: start + (v % (size + 1)), or v itself if bit 15 is set
 *   [6..21] one op byte per pop: bit 0 unpop the chain and pop it again, bit 1 push len 0
 *   then    the descriptor table, the avail ring, and TABLE_BYTES for indirect tables.
 * Descriptor addresses (in the table and the indirect area) are steered by their top 3 bits
 * towards RAM edges, the hole and the indirect area, so that near misses are common. */

#define SMALL_RAM   (1ULL << 20)
#define HIGH_RAM    (1ULL << 20) /* RAM above 4 GiB in the split layout */
#define TABLE_GPA   0x8000ULL
#define TABLE_BYTES 0x2000u
#define HEADER      22

struct layout {
    struct guest_mem *mem;
    uint64_t desc, avail, used;
};

static struct guest_mem small_mem, split_mem;
static struct virtq_chain chain, again;
static uint8_t before[16 * VIRTQ_MAX_SIZE + 6 + 2 * VIRTQ_MAX_SIZE + TABLE_BYTES];

static void take(const uint8_t **data, size_t *size, void *out, size_t n)
{
    size_t k = *size < n ? *size : n;
    memset(out, 0, n);
    memcpy(out, *data, k);
    *data += k;
    *size -= k;
}

static uint8_t *host(struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
    uint8_t *p = guest_mem_ptr(mem, gpa, len);
    if (!p)
        abort(); /* the harness's own layout is always inside RAM */
    return p;
}

static uint64_t ram_end(const struct guest_mem *mem)
{
    const struct guest_mem_region *r = &mem->regions[mem->nregions - 1];
    return r->gpa + r->size;
}

static uint64_t steer(const struct guest_mem *mem, uint64_t addr)
{
    uint64_t low_end = guest_mem_low_end(mem), off = addr & 0xffffff;
    switch (addr >> 61) {
    case 1:
    case 2:
        return off % low_end;
    case 3:
        return low_end - (addr & 0xffff); /* up to, and past, the end of low RAM */
    case 4:
        return ram_end(mem) - (addr & 0xffff); /* the end of all RAM */
    case 5:
        return TABLE_GPA + (addr & 0x3fff); /* the indirect area and just past it */
    case 6:
        return GUEST_MMIO_HOLE_END - 0x8000 + (addr & 0xffff); /* either side of 4 GiB */
    default:
        return addr;
    }
}

/* With long_chains, a table's descriptors follow each other (next = i + 1, short lengths);
 * force_next also sets NEXT on each but the last, so one head walks the whole table. */
static void steer_table(struct guest_mem *mem, uint8_t *table, size_t n, bool long_chains,
                        bool force_next)
{
    for (size_t i = 0; i < n; i++) {
        struct vring_desc d;
        memcpy(&d, table + 16 * i, sizeof(d));
        d.addr = steer(mem, d.addr);
        if (long_chains) {
            d.len &= 0xffff;
            d.next = (uint16_t)(i + 1);
            if (force_next && i + 1 < n && !(d.flags & VRING_DESC_F_INDIRECT))
                d.flags |= VRING_DESC_F_NEXT;
        }
        memcpy(table + 16 * i, &d, sizeof(d));
    }
}

static void place_rings(struct layout *l, uint8_t flags, uint16_t qsize)
{
    l->mem = (flags & 4) ? &split_mem : &small_mem;
    uint64_t low_end = guest_mem_low_end(l->mem);
    switch ((flags >> 3) & 3) {
    case 1: /* ending at the last bytes of low RAM */
        l->desc = low_end - 0x4000;
        l->avail = (low_end - 0x1000 - (6 + 2ULL * qsize)) & ~1ULL;
        l->used = (low_end - (6 + 8ULL * qsize)) & ~3ULL;
        return;
    case 2:
        if (l->mem->nregions == 2) {
            l->desc = GUEST_MMIO_HOLE_END;
            l->avail = GUEST_MMIO_HOLE_END + 0x1000;
            l->used = GUEST_MMIO_HOLE_END + 0x2000;
            return;
        }
        break;
    }
    l->desc = 0x1000;
    l->avail = 0x3000;
    l->used = 0x4000;
}

/* Every iov lies inside one RAM region (the host mapping is contiguous across the hole, guest
 * RAM is not), and the chain adds up to what it says. */
static void check_chain(const struct guest_mem *mem, const struct virtq_chain *c, uint16_t qsize)
{
    unsigned n = c->nreadable + c->nwritable;
    if (c->head >= qsize || n == 0 || n > VIRTQ_MAX_SIZE)
        abort();
    uint64_t readable = 0, writable = 0;
    for (unsigned i = 0; i < n; i++) {
        uintptr_t p = (uintptr_t)c->iov[i].iov_base, len = c->iov[i].iov_len;
        bool inside = false;
        for (int r = 0; r < mem->nregions; r++) {
            uintptr_t start = (uintptr_t)mem->regions[r].hva;
            if (p >= start && len && len <= mem->regions[r].size &&
                p - start <= mem->regions[r].size - len)
                inside = true;
        }
        if (!inside)
            abort();
        if (i < c->nreadable)
            readable += len;
        else
            writable += len;
    }
    if (readable != c->readable_len || writable != c->writable_len ||
        readable + writable > VIRTQ_MAX_CHAIN_BYTES)
        abort();
}

static bool same_chain(const struct virtq_chain *a, const struct virtq_chain *b)
{
    unsigned n = a->nreadable + a->nwritable;
    return a->head == b->head && a->nreadable == b->nreadable && a->nwritable == b->nwritable &&
           !memcmp(a->iov, b->iov, n * sizeof(a->iov[0]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!small_mem.mapping && guest_mem_init(&small_mem, SMALL_RAM, NULL) < 0)
        abort();
    if (!split_mem.mapping &&
        guest_mem_init(&split_mem, GUEST_MMIO_HOLE_START + HIGH_RAM, NULL) < 0)
        abort();
    uint8_t header[HEADER];
    take(&data, &size, header, sizeof(header));
    uint16_t qsize = (uint16_t)(1u << (header[0] % 9));
    uint8_t flags = header[1];
    uint16_t start = (uint16_t)(header[2] | header[3] << 8);
    uint16_t idx_in = (uint16_t)(header[4] | header[5] << 8);
    const uint8_t *ops = header + 6;

    struct layout l;
    place_rings(&l, flags, qsize);
    size_t desc_bytes = 16u * qsize, avail_bytes = 6u + 2u * qsize, used_bytes = 6u + 8u * qsize;
    uint8_t *desc = host(l.mem, l.desc, desc_bytes), *avail = host(l.mem, l.avail, avail_bytes);
    uint8_t *used = host(l.mem, l.used, used_bytes), *table = host(l.mem, TABLE_GPA, TABLE_BYTES);
    take(&data, &size, desc, desc_bytes);
    take(&data, &size, avail, avail_bytes);
    take(&data, &size, table, TABLE_BYTES);
    memset(used, 0, used_bytes);
    steer_table(l.mem, desc, qsize, flags & 0x20, true);
    steer_table(l.mem, table, TABLE_BYTES / 16, flags & 0x20, false);
    struct vring_avail *ring = (struct vring_avail *)avail;
    ring->idx = (idx_in & 0x8000) ? idx_in : (uint16_t)(start + idx_in % (qsize + 1u));
    memcpy(before, desc, desc_bytes);
    memcpy(before + desc_bytes, avail, avail_bytes);
    memcpy(before + desc_bytes + avail_bytes, table, TABLE_BYTES);

    struct virtqueue vq;
    virtqueue_reset(&vq, l.mem, VIRTQ_MAX_SIZE);
    vq.size = qsize;
    vq.desc_gpa = l.desc;
    vq.avail_gpa = l.avail;
    vq.used_gpa = l.used;
    const char *why;
    if (virtqueue_enable(&vq, flags & 1, flags & 2, &why) < 0)
        abort();
    /* As if `start` chains had been served already (the state after a long run). */
    vq.last_avail = vq.used_idx = vq.signalled = start;
    ((struct vring_used *)used)->idx = start;

    uint16_t *avail_event = (uint16_t *)(used + 4 + 8u * qsize);
    unsigned pops = 0, unpops = 0, pushed = 0;
    for (;;) {
        if (++pops > qsize + unpops + 1u)
            abort(); /* an avail ring of qsize entries holds no more chains than that */
        bool has = virtqueue_has_available(&vq);
        enum virtq_pop_result r = virtqueue_pop(&vq, &chain, &why);
        if (r == VIRTQ_POP_EMPTY)
            break;
        if (!has)
            abort(); /* nothing available yet a chain came out */
        if (r == VIRTQ_POP_BROKEN_RING) {
            if (!why)
                abort();
            break;
        }
        if ((flags & 1) && *avail_event != vq.last_avail)
            abort(); /* with EVENT_IDX the device publishes where it is */
        if (r == VIRTQ_POP_BAD_CHAIN) {
            if (!why || chain.head >= qsize)
                abort();
        } else {
            check_chain(l.mem, &chain, qsize);
            uint8_t op = ops[(pops - 1) % 16];
            if ((op & 1) && unpops < 8) {
                /* Put it back and take it again: the same chain must come out. */
                unpops++;
                virtqueue_unpop(&vq, 1);
                if (virtqueue_pop(&vq, &again, &why) != VIRTQ_POP_CHAIN ||
                    !same_chain(&chain, &again))
                    abort();
            }
        }
        uint32_t len = (r == VIRTQ_POP_CHAIN && !(ops[(pops - 1) % 16] & 2))
                           ? (uint32_t)chain.writable_len
                           : 0;
        virtqueue_push(&vq, chain.head, len);
        pushed++;
        const struct vring_used *u = (const struct vring_used *)used;
        const struct vring_used_elem *e = &u->ring[(uint16_t)(start + pushed - 1) % qsize];
        if (u->idx != (uint16_t)(start + pushed) || e->id != chain.head || e->len != len)
            abort();
        virtqueue_should_interrupt(&vq);
    }
    /* §2.7.5.1: the device never writes the descriptor table, the driver area or indirect
     * tables; only the used ring. */
    if (memcmp(before, desc, desc_bytes) || memcmp(before + desc_bytes, avail, avail_bytes) ||
        memcmp(before + desc_bytes + avail_bytes, table, TABLE_BYTES))
        abort();
    return 0;
}
