/* libFuzzer target for the virtio-blk request parser: the input is cut into a chain of
 * readable and writable buffers in guest RAM (the shapes virtqueue_pop produces) and parsed;
 * the data buffers and the status byte the parser picks must lie inside the chain's buffers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/devices/virtio_blk_request.h"

#define RAM_SIZE (1u << 20)

static struct guest_mem mem;
static struct virtq_chain chain;
static struct blk_request req;

static bool inside_chain(const void *p, size_t len)
{
    const uint8_t *b = p;
    for (unsigned i = 0; i < chain.nreadable + chain.nwritable; i++) {
        const uint8_t *s = chain.iov[i].iov_base;
        if (b >= s && b + len <= s + chain.iov[i].iov_len)
            return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!mem.mapping && guest_mem_init(&mem, RAM_SIZE, NULL) < 0)
        abort();
    if (size < 3)
        return 0;
    /* data[0]: buffer count; data[1]: how many are readable; data[2]: capacity and RO;
     * then one length byte per buffer (x8, so 16-byte headers and 512-byte sectors occur);
     * the rest is the buffers' contents, laid out back to back. */
    unsigned nbufs = 1 + data[0] % 8, nreadable = data[1] % (nbufs + 1);
    struct blk_geometry geo = {
        .capacity = data[2] >> 1, .readonly = data[2] & 1, .max_segment_sectors = data[2] >> 2};
    data += 3;
    size -= 3;
    if (size < nbufs)
        return 0;
    memset(&chain, 0, offsetof(struct virtq_chain, iov));
    uint8_t *ram = mem.mapping;
    size_t offset = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t len = data[i] ? (size_t)data[i] * 8 : 1; /* virtqueue_pop never returns 0 */
        chain.iov[i].iov_base = ram + offset;
        chain.iov[i].iov_len = len;
        if (i < nreadable) {
            chain.nreadable++;
            chain.readable_len += len;
        } else {
            chain.nwritable++;
            chain.writable_len += len;
        }
        offset += len;
    }
    memset(ram, 0, offset);
    memcpy(ram, data + nbufs, size - nbufs < offset ? size - nbufs : offset);
    enum blk_parse_result r = blk_request_parse(&chain, &geo, &req);
    if (r == BLK_REQUEST_UNANSWERABLE)
        return chain.nwritable == 0 ? 0 : (abort(), 0);
    if (!req.status || !inside_chain(req.status, 1))
        abort();
    uint64_t total = 0;
    for (int i = 0; i < req.ndata; i++) {
        if (!inside_chain(req.data[i].iov_base, req.data[i].iov_len))
            abort();
        total += req.data[i].iov_len;
    }
    if (total != req.data_len || req.nsegments > BLK_MAX_DISCARD_SEGMENTS)
        abort();
    if (r == BLK_REQUEST_OK && (req.type == VIRTIO_BLK_T_IN || req.type == VIRTIO_BLK_T_OUT) &&
        (req.sector > geo.capacity || req.data_len / 512 > geo.capacity - req.sector))
        abort(); /* an accepted I/O request must lie on the disk */
    return 0;
}
