/* Opening, locking and sizing disk images, and the full-length I/O helpers that virtio-blk's
 * worker threads call (the only code that touches image files). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/host/disk_image.h"

static int lock_image(struct disk_image *img, const char *quoted, struct error *err)
{
    struct flock lock = {.l_type = img->readonly ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(img->fd, F_OFD_SETLK, &lock) == 0)
        return 0;
    if (errno == EAGAIN || errno == EACCES)
        return error_fmt(err, -EBUSY,
                         "--disk: '%s' is in use by another VM or process (it holds a lock on "
                         "the image; expected an image no one else is writing)",
                         quoted);
    return error_fmt(err, -errno, "--disk: '%s': cannot lock: %s", quoted, strerror(errno));
}

static int size_image(struct disk_image *img, char *quoted, struct error *err)
{
    struct stat st;
    if (fstat(img->fd, &st) < 0)
        return error_fmt(err, -errno, "--disk: '%s': %s", quoted, strerror(errno));
    if (S_ISBLK(st.st_mode)) {
        img->block_device = true;
        if (ioctl(img->fd, BLKGETSIZE64, &img->size) < 0)
            return error_fmt(err, -errno, "--disk: '%s': cannot read the device size: %s", quoted,
                             strerror(errno));
    } else if (S_ISREG(st.st_mode)) {
        img->size = (uint64_t)st.st_size;
    } else {
        return error_fmt(err, -EINVAL,
                         "--disk: '%s' is not a regular file or block device (expected a raw "
                         "disk image)",
                         quoted);
    }
    if (img->size == 0)
        return error_fmt(err, -EINVAL,
                         "--disk: '%s' is empty (expected a raw disk image of at "
                         "least 512 bytes)",
                         quoted);
    if (img->size % DISK_SECTOR_SIZE)
        return error_fmt(
            err, -EINVAL,
            "--disk: '%s' is %llu bytes, not a multiple of 512 (expected whole "
            "sectors; e.g. truncate -s %llu)",
            quoted, (unsigned long long)img->size,
            (unsigned long long)(img->size + DISK_SECTOR_SIZE - img->size % DISK_SECTOR_SIZE));
    return 0;
}

int disk_image_open(struct disk_image *img, const struct disk_config *disk, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE];
    config_quote(disk->path, quoted, sizeof(quoted));
    memset(img, 0, sizeof(*img));
    img->readonly = disk->readonly;
    int flags = (disk->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    img->fd = open(disk->path, flags);
    if (img->fd < 0) {
        int e = errno;
        if (e == EISDIR)
            return error_fmt(err, -e, "--disk: '%s' is a directory (expected a raw disk image)",
                             quoted);
        if ((e == EACCES || e == EROFS) && !disk->readonly)
            return error_fmt(err, -e, "--disk: '%s': %s (add ,readonly to attach it read-only)",
                             quoted, strerror(e));
        return error_fmt(err, -e, "--disk: '%s': %s", quoted, strerror(e));
    }
    int r = size_image(img, quoted, err);
    if (r == 0 && !disk->lock_later)
        r = lock_image(img, quoted, err);
    if (r < 0)
        disk_image_close(img);
    return r;
}

int disk_image_lock(struct disk_image *img, const char *path, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE];
    config_quote(path, quoted, sizeof(quoted));
    return lock_image(img, quoted, err);
}

void disk_image_unlock(struct disk_image *img)
{
    struct flock unlock = {.l_type = F_UNLCK, .l_whence = SEEK_SET};
    fcntl(img->fd, F_OFD_SETLK, &unlock); /* cannot fail on an open image */
}

void disk_image_close(struct disk_image *img)
{
    if (img->fd >= 0)
        close(img->fd); /* also drops the OFD lock */
    img->fd = -1;
}

/* Advances iov/iovcnt past done bytes (the caller's array is copied first). */
static int transfer(const struct disk_image *img, const struct iovec *iov_in, int iovcnt,
                    uint64_t offset, bool write)
{
    struct iovec iov[IOV_MAX];
    if (iovcnt > IOV_MAX)
        return -EINVAL;
    memcpy(iov, iov_in, (size_t)iovcnt * sizeof(*iov));
    struct iovec *cur = iov;
    while (iovcnt > 0) {
        ssize_t n = write ? pwritev(img->fd, cur, iovcnt, (off_t)offset)
                          : preadv(img->fd, cur, iovcnt, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO; /* end of file inside the disk: the image shrank under us */
        offset += (uint64_t)n;
        while (iovcnt > 0 && (size_t)n >= cur->iov_len) {
            n -= (ssize_t)cur->iov_len;
            cur++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            cur->iov_base = (char *)cur->iov_base + n;
            cur->iov_len -= (size_t)n;
        }
    }
    return 0;
}

int disk_image_readv(const struct disk_image *img, const struct iovec *iov, int iovcnt,
                     uint64_t offset)
{
    return transfer(img, iov, iovcnt, offset, false);
}

int disk_image_writev(const struct disk_image *img, const struct iovec *iov, int iovcnt,
                      uint64_t offset)
{
    return transfer(img, iov, iovcnt, offset, true);
}

int disk_image_flush(const struct disk_image *img)
{
    return fdatasync(img->fd) < 0 ? -errno : 0;
}

static int write_zeroes(const struct disk_image *img, uint64_t offset, uint64_t len)
{
    /* Not const: in .bss its pages are the kernel's zero page, shared by every VM; in .rodata
     * they would be 64 KiB of the binary that fault-around maps into each VMM. */
    static char zeroes[64 * 1024];
    while (len > 0) {
        size_t chunk = len < sizeof(zeroes) ? (size_t)len : sizeof(zeroes);
        struct iovec iov = {.iov_base = (void *)zeroes, .iov_len = chunk};
        int r = transfer(img, &iov, 1, offset, true);
        if (r < 0)
            return r;
        offset += chunk;
        len -= chunk;
    }
    return 0;
}

int disk_image_zero(const struct disk_image *img, uint64_t offset, uint64_t len, bool unmap)
{
    int mode = unmap ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : FALLOC_FL_ZERO_RANGE;
    if (!img->block_device && fallocate(img->fd, mode, (off_t)offset, (off_t)len) == 0)
        return 0;
    return write_zeroes(img, offset, len);
}

int disk_image_discard(const struct disk_image *img, uint64_t offset, uint64_t len)
{
    if (img->block_device)
        return 0; /* a hint: reads of discarded sectors may return old data (virtio 1.2 5.2.6) */
    int mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    if (fallocate(img->fd, mode, (off_t)offset, (off_t)len) == 0 || errno == EOPNOTSUPP)
        return 0;
    return -errno;
}
