/* Parsing one virtio-blk request (virtio 1.2 §5.2.6) out of a popped descriptor chain: the
 * header, the data buffers, the status byte — all checks, no I/O, so it is unit-tested and
 * fuzzed on its own. */
#ifndef KILN_DEVICES_VIRTIO_BLK_REQUEST_H
#define KILN_DEVICES_VIRTIO_BLK_REQUEST_H

#include <linux/virtio_blk.h>
#include <stdbool.h>
#include <stdint.h>

#include "kiln/virtio/virtqueue.h"

#define BLK_MAX_DISCARD_SEGMENTS 32 /* max_discard_seg / max_write_zeroes_seg we advertise */

/* What the device knows when it parses. */
struct blk_geometry {
    uint64_t capacity; /* sectors */
    bool readonly;
    /* max_discard_sectors and max_write_zeroes_sectors as advertised (one value for both). */
    uint32_t max_segment_sectors;
};

enum blk_parse_result {
    /* Well formed: do req->type's I/O, then write the status byte. */
    BLK_REQUEST_OK,
    /* Decided without I/O: write req->status_value into *req->status and complete. */
    BLK_REQUEST_DONE,
    /* No status byte to answer with: give the chain back with length 0 (why says what). */
    BLK_REQUEST_UNANSWERABLE,
};

struct blk_request {
    uint32_t type;        /* VIRTIO_BLK_T_* */
    uint64_t sector;      /* for IN/OUT */
    uint8_t *status;      /* the last device-writable byte of the chain */
    uint8_t status_value; /* for BLK_REQUEST_DONE */
    const char *why;      /* for a malformed request: logged once by the device */
    /* IN/OUT/GET_ID data: the chain's buffers minus the header and the status byte. */
    struct iovec data[VIRTQ_MAX_SIZE];
    int ndata;
    uint64_t data_len;
    /* DISCARD/WRITE_ZEROES ranges, copied out of guest memory (so the guest cannot change
     * them after the checks). */
    struct virtio_blk_discard_write_zeroes segments[BLK_MAX_DISCARD_SEGMENTS];
    unsigned nsegments;
};

/* Parses chain into *req. A request that is well formed but not allowed (a write to a
 * read-only disk, sectors past the end, an unknown type) is BLK_REQUEST_DONE with the status
 * the spec asks for (IOERR or UNSUPP); a malformed one is DONE with IOERR and req->why set. */
enum blk_parse_result blk_request_parse(const struct virtq_chain *chain,
                                        const struct blk_geometry *geo, struct blk_request *req);

#endif
