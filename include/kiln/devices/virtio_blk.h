/* virtio-blk (virtio 1.2 §5.2) over a raw image file or block device: request parsing and
 * I/O on libuv's thread pool, completions pushed back on the event-loop thread. */
#ifndef KILN_DEVICES_VIRTIO_BLK_H
#define KILN_DEVICES_VIRTIO_BLK_H

#include <uv.h>

#include "kiln/config/config.h"
#include "kiln/devices/io_throttle.h"
#include "kiln/util/error.h"
#include "kiln/util/log.h"
#include "kiln/virtio/virtio_dev.h"

struct virtio_blk;

/* Opens disk->path (O_RDONLY for readonly disks), takes an exclusive OFD lock on it (a shared
 * one for read-only disks) so two VMs cannot write the same image, and checks its size is a
 * whole number of 512-byte sectors. Every failure is one line naming the disk and the cause.
 * loop is the VM's event loop, where I/O completions are delivered. */
int virtio_blk_create(struct virtio_blk **out, const struct disk_config *disk, uv_loop_t *loop,
                      const struct guest_mem *mem, const struct log *log, struct error *err);

/* The disk's rate limit (disk->limit at creation; the API changes it while the VM runs):
 * each request that reaches the disk takes its data bytes and one op; one over budget waits,
 * and the queue with it, until the tokens are back. -EINVAL for a bad limit. */
int virtio_blk_set_limit(struct virtio_blk *blk, const struct rate_limit_config *limit,
                         struct error *err);
/* The limit as it is now (any thread: takes the device's lock). */
void virtio_blk_get_limit(struct virtio_blk *blk, struct rate_limit_config *limit);
void virtio_blk_limit_counters(const struct virtio_blk *blk, struct io_throttle_counters *out);
/* The rate limit's timer on the VM's loop / closed. */
int virtio_blk_attach(struct virtio_blk *blk, struct error *err);
void virtio_blk_detach(struct virtio_blk *blk);

/* The device's virtio core, to plug into a transport (virtio_slot_create, or a test's). */
struct virtio_dev *virtio_blk_dev(struct virtio_blk *blk);

/* The disk's guest-visible state: the virtio core's, and the write-cache setting the driver
 * chose. Requests in flight are not state: a snapshot waits until there are none. */
struct virtio_blk_state {
    struct virtio_dev_state dev;
    uint8_t wce;         /* config.wce as the guest reads it */
    uint8_t write_cache; /* whether writes may stay in the host's cache until a FLUSH */
    uint8_t pad[6];
};
_Static_assert(sizeof(struct virtio_blk_state) == sizeof(struct virtio_dev_state) + 8,
               "virtio_blk_state has no padding");

/* Save fails with -EBUSY while requests are in flight (let the loop complete them first). */
int virtio_blk_save(struct virtio_blk *blk, struct virtio_blk_state *out, struct error *err);
int virtio_blk_restore(struct virtio_blk *blk, const struct virtio_blk_state *in,
                       struct error *err);

/* What the guest asked of the disk, counted on the loop thread as each request is answered
 * (kiln's statistics, not state). Ops and bytes count requests answered OK; every IOERR or
 * UNSUPP answer counts in errors instead. A chain without a status byte is a bad chain of the
 * queue (virtio_dev_queue_counters), not an error here. */
struct virtio_blk_counters {
    uint64_t read_ops, read_bytes;
    uint64_t write_ops, write_bytes;
    uint64_t flush_ops, discard_ops, write_zeroes_ops;
    uint64_t errors;
};
/* Any thread, while the device runs. */
void virtio_blk_counters(const struct virtio_blk *blk, struct virtio_blk_counters *out);

/* Number of requests handed to the thread pool and not yet completed on the loop. */
/* A live migration: release lets go of the image's lock (the source, at the switch-over),
 * else takes it (the destination, or the source again if the switch-over failed). */
int virtio_blk_hand_over(struct virtio_blk *blk, bool release, struct error *err);
/* The image's open fd (its identity for snapshots and migration). */
int virtio_blk_image_fd(const struct virtio_blk *blk);
unsigned virtio_blk_in_flight(const struct virtio_blk *blk);
/* fdatasync of the image, so a snapshot's disks hold every write the guest completed. Any
 * thread, with no request in flight. */
int virtio_blk_flush_image(struct virtio_blk *blk, struct error *err);

/* Closes the file. The loop must have run until virtio_blk_in_flight() == 0. */
void virtio_blk_destroy(struct virtio_blk *blk);

#endif
