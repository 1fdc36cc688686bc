/* virtio-blk request parsing: find the header, data and status byte in a chain and check the
 * request against the disk (type, direction of each buffer, sector range, segment lists). */
#include <string.h>

#include "kiln/host/disk_image.h"
#include "kiln/devices/virtio_blk_request.h"
#include "kiln/util/iov.h"

#define BLK_HEADER_SIZE sizeof(struct virtio_blk_outhdr)

/* req->data = the bytes [skip, skip+len) of the iov range, as sub-iovecs. */
static void slice(struct blk_request *req, const struct iovec *iov, int count, uint64_t skip,
                  uint64_t len)
{
    req->ndata = 0;
    req->data_len = len;
    for (int i = 0; i < count && len > 0; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        size_t n = iov[i].iov_len - (size_t)skip;
        if (n > len)
            n = (size_t)len;
        req->data[req->ndata].iov_base = (uint8_t *)iov[i].iov_base + skip;
        req->data[req->ndata].iov_len = n;
        req->ndata++;
        len -= n;
        skip = 0;
    }
}

static enum blk_parse_result done(struct blk_request *req, uint8_t status, const char *why)
{
    req->status_value = status;
    req->why = why;
    return BLK_REQUEST_DONE;
}

/* sector + count <= capacity, without overflowing. */
static bool in_range(const struct blk_geometry *geo, uint64_t sector, uint64_t count)
{
    return sector <= geo->capacity && count <= geo->capacity - sector;
}

static enum blk_parse_result parse_io(const struct virtq_chain *chain,
                                      const struct blk_geometry *geo, struct blk_request *req)
{
    const struct iovec *readable = chain->iov;
    const struct iovec *writable = chain->iov + chain->nreadable;
    if (req->type == VIRTIO_BLK_T_IN) {
        if (chain->readable_len != BLK_HEADER_SIZE)
            return done(req, VIRTIO_BLK_S_IOERR, "read request with device-readable data buffers");
        slice(req, writable, chain->nwritable, 0, chain->writable_len - 1);
    } else {
        if (chain->writable_len != 1)
            return done(req, VIRTIO_BLK_S_IOERR, "write request with device-writable data buffers");
        slice(req, readable, chain->nreadable, BLK_HEADER_SIZE,
              chain->readable_len - BLK_HEADER_SIZE);
    }
    if (req->data_len % DISK_SECTOR_SIZE)
        return done(req, VIRTIO_BLK_S_IOERR, "data length is not a multiple of 512 bytes");
    if (req->type == VIRTIO_BLK_T_OUT && geo->readonly)
        return done(req, VIRTIO_BLK_S_IOERR, NULL); /* allowed to ask; the answer is no */
    if (!in_range(geo, req->sector, req->data_len / DISK_SECTOR_SIZE))
        return done(req, VIRTIO_BLK_S_IOERR, NULL); /* the guest's mistake, not a hostile chain */
    return BLK_REQUEST_OK;
}

static enum blk_parse_result parse_segments(const struct virtq_chain *chain,
                                            const struct blk_geometry *geo, struct blk_request *req)
{
    uint64_t len = chain->readable_len - BLK_HEADER_SIZE;
    const size_t seg_size = sizeof(struct virtio_blk_discard_write_zeroes);
    if (len == 0 || len % seg_size || chain->writable_len != 1)
        return done(req, VIRTIO_BLK_S_IOERR,
                    "discard/write-zeroes request with a bad segment list");
    if (len / seg_size > BLK_MAX_DISCARD_SEGMENTS)
        return done(req, VIRTIO_BLK_S_IOERR, "discard/write-zeroes request with too many segments");
    req->nsegments = (unsigned)(len / seg_size);
    iov_to_buf(chain->iov, chain->nreadable, BLK_HEADER_SIZE, req->segments, len);
    if (geo->readonly)
        return done(req, VIRTIO_BLK_S_IOERR, NULL);
    for (unsigned i = 0; i < req->nsegments; i++) {
        const struct virtio_blk_discard_write_zeroes *seg = &req->segments[i];
        uint32_t allowed =
            req->type == VIRTIO_BLK_T_WRITE_ZEROES ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
        if (seg->flags & ~allowed)
            return done(req, VIRTIO_BLK_S_UNSUPP, NULL); /* what the spec asks for */
        /* IOERR, as QEMU answers: the range is valid in itself, so UNSUPP (kept for unknown
         * types and flags) would be wrong, and one request past the limit is the driver's
         * mistake; refusing it keeps one request from zeroing or discarding a whole disk. */
        if (seg->num_sectors > geo->max_segment_sectors)
            return done(req, VIRTIO_BLK_S_IOERR,
                        "discard/write-zeroes segment larger than advertised");
        if (!in_range(geo, seg->sector, seg->num_sectors))
            return done(req, VIRTIO_BLK_S_IOERR, NULL);
    }
    return BLK_REQUEST_OK;
}

enum blk_parse_result blk_request_parse(const struct virtq_chain *chain,
                                        const struct blk_geometry *geo, struct blk_request *req)
{
    req->why = NULL;
    req->ndata = 0;
    req->data_len = 0;
    req->nsegments = 0;
    req->status = NULL;
    if (chain->nwritable == 0) {
        req->why = "request without a device-writable status byte";
        return BLK_REQUEST_UNANSWERABLE;
    }
    const struct iovec *last = &chain->iov[chain->nreadable + chain->nwritable - 1];
    req->status = (uint8_t *)last->iov_base + last->iov_len - 1;

    struct virtio_blk_outhdr header;
    if (chain->readable_len < BLK_HEADER_SIZE ||
        iov_to_buf(chain->iov, chain->nreadable, 0, &header, sizeof(header)) != sizeof(header))
        return done(req, VIRTIO_BLK_S_IOERR, "request header shorter than 16 bytes");
    req->type = header.type;
    req->sector = header.sector;

    switch (req->type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT:
        return parse_io(chain, geo, req);
    case VIRTIO_BLK_T_FLUSH:
        return BLK_REQUEST_OK;
    case VIRTIO_BLK_T_GET_ID:
        if (chain->readable_len != BLK_HEADER_SIZE)
            return done(req, VIRTIO_BLK_S_IOERR, "GET_ID request with device-readable data");
        slice(req, chain->iov + chain->nreadable, chain->nwritable, 0, chain->writable_len - 1);
        return BLK_REQUEST_OK;
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
        return parse_segments(chain, geo, req);
    default:
        return done(req, VIRTIO_BLK_S_UNSUPP, NULL);
    }
}
