/* A disk image as the host sees it: a raw file or block device opened, locked against other
 * writers, sized in 512-byte sectors; plus the I/O calls block requests need. */
#ifndef KILN_DEVICES_DISK_IMAGE_H
#define KILN_DEVICES_DISK_IMAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kiln/config/config.h"
#include "kiln/util/error.h"

#define DISK_SECTOR_SIZE 512

struct disk_image {
    int fd;
    uint64_t size; /* bytes, a multiple of DISK_SECTOR_SIZE */
    bool readonly;
    bool block_device;
};

/* Opens disk->path read-write (read-only for readonly disks) and takes an OFD lock on the
 * whole file (exclusive for writable disks, shared for read-only ones), so two VMs can never
 * write one image. Errors are one line naming the disk. */
int disk_image_open(struct disk_image *img, const struct disk_config *disk, struct error *err);
void disk_image_close(struct disk_image *img);
/* A live migration's hand-over of an image between two kiln processes: the source lets go of
 * its lock once the destination has the VM's state, and the destination takes it (the same
 * lock and error as disk_image_open; path names the disk). */
int disk_image_lock(struct disk_image *img, const char *path, struct error *err);
void disk_image_unlock(struct disk_image *img);

/* Full-length positional I/O (retries short transfers and EINTR). 0 or -errno. */
int disk_image_readv(const struct disk_image *img, const struct iovec *iov, int iovcnt,
                     uint64_t offset);
int disk_image_writev(const struct disk_image *img, const struct iovec *iov, int iovcnt,
                      uint64_t offset);
int disk_image_flush(const struct disk_image *img);
/* Zeroes [offset, offset+len): punch a hole when unmap is allowed (discard, WRITE_ZEROES with
 * UNMAP), else allocate zeroes; falls back to writing zeroes where the file system can't. */
int disk_image_zero(const struct disk_image *img, uint64_t offset, uint64_t len, bool unmap);
/* Lets the host reclaim [offset, offset+len) (a hole in a file; nothing on a block device). */
int disk_image_discard(const struct disk_image *img, uint64_t offset, uint64_t len);

#endif
