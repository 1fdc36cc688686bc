/* libFuzzer target for the virtqueue walker: the input becomes the descriptor table, the
 * avail ring and an indirect table in guest RAM; every chain popped must lie inside guest
 * RAM, and walking must end (empty or broken ring) within a bounded number of pops. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/virtio/virtqueue.h"

#define RAM_SIZE  (1u << 20)
#define DESC_GPA  0x1000
#define AVAIL_GPA 0x3000
#define USED_GPA  0x4000
#define TABLE_GPA 0x6000 /* where the input's tail goes: indirect tables, buffers */

static struct guest_mem mem;
static struct virtq_chain chain;

static void check_inside_ram(const struct virtq_chain *c)
{
    const uint8_t *start = mem.mapping, *end = start + mem.size;
    for (unsigned i = 0; i < c->nreadable + c->nwritable; i++) {
        const uint8_t *p = c->iov[i].iov_base;
        if (p < start || p + c->iov[i].iov_len > end || c->iov[i].iov_len == 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!mem.mapping && guest_mem_init(&mem, RAM_SIZE, NULL) < 0)
        abort();
    if (size < 4)
        return 0;
    uint16_t qsize = (uint16_t)(1u << (data[0] % 9)); /* 1..256 */
    bool event_idx = data[1] & 1, indirect = data[1] & 2;
    data += 2;
    size -= 2;
    uint8_t *ram = mem.mapping;
    memset(ram, 0, 0x8000);
    /* Descriptors and avail ring from the input; addresses wrapped into the first 1 MiB so
     * that both valid and invalid ones are common. */
    size_t desc_bytes = 16u * qsize, n = size < desc_bytes ? size : desc_bytes;
    memcpy(ram + DESC_GPA, data, n);
    for (unsigned i = 0; i < qsize; i++) {
        uint64_t *addr = (uint64_t *)(ram + DESC_GPA + 16 * i);
        if (!(i & 1))
            *addr %= RAM_SIZE + 0x100; /* now and then just past RAM */
    }
    data += n;
    size -= n;
    size_t avail_bytes = 6 + 2u * qsize;
    n = size < avail_bytes ? size : avail_bytes;
    memcpy(ram + AVAIL_GPA, data, n);
    data += n;
    size -= n;
    memcpy(ram + TABLE_GPA, data, size < 0x2000 ? size : 0x2000);

    struct virtqueue vq;
    virtqueue_reset(&vq, &mem, VIRTQ_MAX_SIZE);
    vq.size = qsize;
    vq.desc_gpa = DESC_GPA;
    vq.avail_gpa = AVAIL_GPA;
    vq.used_gpa = USED_GPA;
    const char *why;
    if (virtqueue_enable(&vq, event_idx, indirect, &why) < 0)
        abort(); /* the layout above is always valid */
    for (unsigned pops = 0; pops <= 2u * qsize; pops++) {
        enum virtq_pop_result r = virtqueue_pop(&vq, &chain, &why);
        if (r == VIRTQ_POP_EMPTY || r == VIRTQ_POP_BROKEN_RING)
            return 0;
        if (r == VIRTQ_POP_CHAIN)
            check_inside_ram(&chain);
        if (chain.head >= qsize)
            abort();
        virtqueue_push(&vq, chain.head, 0);
        virtqueue_should_interrupt(&vq);
    }
    abort(); /* an avail ring of qsize entries cannot yield more chains than that */
}
