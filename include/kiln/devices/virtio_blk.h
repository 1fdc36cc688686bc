/* virtio-blk (virtio 1.2 §5.2) over a raw image file or block device: request parsing and
 * I/O on libuv's thread pool, completions pushed back on the event-loop thread. */
#ifndef KILN_DEVICES_VIRTIO_BLK_H
#define KILN_DEVICES_VIRTIO_BLK_H

#include <uv.h>

#include "kiln/config.h"
#include "kiln/error.h"
#include "kiln/log.h"
#include "kiln/virtio/virtio_mmio.h"

struct virtio_blk;

/* Opens disk->path (O_RDONLY for readonly disks), takes an exclusive OFD lock on it (a shared
 * one for read-only disks) so two VMs cannot write the same image, and checks its size is a
 * whole number of 512-byte sectors. Every failure is one line naming the disk and the cause.
 * loop is the VM's event loop, where I/O completions are delivered. */
int virtio_blk_create(struct virtio_blk **out, const struct disk_config *disk, uv_loop_t *loop,
                      const struct log *log, struct error *err);

/* Fills the transport's description of this device (features, queues, config size, ops);
 * the device learns its transport from the ops callbacks. */
void virtio_blk_device_info(struct virtio_blk *blk, struct virtio_device_info *info);

/* Number of requests handed to the thread pool and not yet completed on the loop. */
unsigned virtio_blk_in_flight(const struct virtio_blk *blk);

/* Closes the file. The loop must have run until virtio_blk_in_flight() == 0. */
void virtio_blk_destroy(struct virtio_blk *blk);

#endif
