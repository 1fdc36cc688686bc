/* Checked reads of kernel and initrd files: open, fstat, pread loops, and the one-line
 * "truncated"/"cannot read" messages that always name the file. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot_internal.h"

/* One pread is capped below Linux's 2 GiB per-call limit; bigger reads loop. */
#define BOOT_READ_CHUNK (1ULL << 30)

int boot_file_open(struct boot_file *file, const char *label, const char *path, struct error *err)
{
    *file = (struct boot_file){.fd = -1, .label = label, .path = path};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return error_fmt(err, -errno, "%s '%s': cannot open: %s", label, path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int code = -errno;
        close(fd);
        return error_fmt(err, code, "%s '%s': cannot stat: %s", label, path, strerror(-code));
    }
    /* Directories, FIFOs and devices have no fixed size to bounds-check against. */
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return error_fmt(err, -EINVAL, "%s '%s': not a regular file", label, path);
    }
    file->fd = fd;
    file->size = (uint64_t)st.st_size;
    return 0;
}

void boot_file_close(struct boot_file *file)
{
    if (file->fd >= 0)
        close(file->fd);
    file->fd = -1;
}

static int boot_file_truncated(const struct boot_file *file, uint64_t have, uint64_t expected,
                               const char *what, struct error *err)
{
    return error_fmt(
        err, -ENOEXEC, "%s '%s': truncated (%s; file has %llu bytes, expected %llu bytes)",
        file->label, file->path, what, (unsigned long long)have, (unsigned long long)expected);
}

int boot_file_need(const struct boot_file *file, uint64_t offset, uint64_t len, const char *what,
                   struct error *err)
{
    uint64_t end = boot_add_sat(offset, len);
    if (end > file->size)
        return boot_file_truncated(file, file->size, end, what, err);
    return 0;
}

int boot_file_read(const struct boot_file *file, uint64_t offset, void *buf, uint64_t len,
                   const char *what, struct error *err)
{
    int rc = boot_file_need(file, offset, len, what, err);
    if (rc)
        return rc;
    uint64_t done = 0;
    while (done < len) {
        uint64_t chunk = len - done < BOOT_READ_CHUNK ? len - done : BOOT_READ_CHUNK;
        ssize_t n = pread(file->fd, (uint8_t *)buf + done, chunk, (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return error_fmt(err, -errno, "%s '%s': cannot read: %s", file->label, file->path,
                             strerror(errno));
        /* The file shrank after fstat(): report it like any other truncation. */
        if (n == 0)
            return boot_file_truncated(file, offset + done, offset + len, what, err);
        done += (uint64_t)n;
    }
    return 0;
}

int boot_file_read_to_guest(const struct boot_file *file, uint64_t offset, uint64_t len,
                            const struct guest_mem *mem, uint64_t gpa, const char *what,
                            struct error *err)
{
    if (len == 0)
        return 0;
    void *dst = guest_mem_ptr(mem, gpa, len);
    /* Callers check placement first; this only guards against a bug in that check. */
    if (!dst)
        return error_fmt(err, -EFAULT, "%s '%s': %s at 0x%llx (size 0x%llx) is outside guest RAM",
                         file->label, file->path, what, (unsigned long long)gpa,
                         (unsigned long long)len);
    return boot_file_read(file, offset, dst, len, what, err);
}
