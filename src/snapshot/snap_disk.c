/* Disk identities in a snapshot (kiln/snapshot/snap_disk.h): a disk image is taken to be the
 * same if its size and modification time are; any write to it changes the latter. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/snapshot/snap_disk.h"
#include "snap_io.h"

/* Size and modification time of the file open at fd. A block device's size is its length, not
 * st_size. */
static int disk_of_fd(int fd, const char *who, const char *path, struct snap_disk_id *out,
                      struct error *err)
{
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        rc = error_fmt(err, -errno, "%s (%s): %s", who, path, strerror(errno));
    } else if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        rc = error_fmt(err, -EINVAL, "%s (%s): not a regular file or block device", who, path);
    } else {
        off_t end = lseek(fd, 0, SEEK_END);
        if (end < 0)
            rc =
                error_fmt(err, -errno, "%s (%s): finding its size: %s", who, path, strerror(errno));
        out->size = (uint64_t)end;
        out->mtime_sec = st.st_mtim.tv_sec;
        out->mtime_nsec = (uint32_t)st.st_mtim.tv_nsec;
    }
    return rc;
}

/* Size and modification time of path now. */
static int disk_now(const char *path, unsigned index, bool numbered, struct snap_disk_id *out,
                    struct error *err)
{
    char who[64] = "disk";
    if (numbered)
        snprintf(who, sizeof(who), "disk %u", index);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        /* Checking a saved disk: gone is a changed disk like any other. */
        int e = errno;
        bool gone = numbered && e == ENOENT;
        return error_fmt(err, gone ? -ESTALE : -e, "%s (%s): %s%s", who, path,
                         gone ? "missing since the snapshot: " : "", strerror(e));
    }
    int rc = disk_of_fd(fd, who, path, out, err);
    close(fd);
    return rc;
}

/* The path's checks and copy into out. */
static int put_path(const char *path, bool readonly, struct snap_disk_id *out, struct error *err)
{
    memset(out, 0, sizeof(*out));
    size_t len = strlen(path);
    if (len == 0)
        return error_fmt(err, -EINVAL, "disk: empty path");
    if (len >= sizeof(out->path))
        return error_fmt(err, -ENAMETOOLONG,
                         "disk %.40s...: path is %zu characters (a snapshot keeps at most %zu)",
                         path, len, sizeof(out->path) - 1);
    if (snap_find_control_char(path, len) >= 0)
        return error_fmt(err, -EINVAL,
                         "disk path has a control character (a snapshot keeps text paths only)");
    memcpy(out->path, path, len);
    out->readonly = readonly ? 1 : 0;
    return 0;
}

int snap_disk_id_of(const char *path, bool readonly, struct snap_disk_id *out, struct error *err)
{
    int r = put_path(path, readonly, out, err);
    return r < 0 ? r : disk_now(path, 0, false, out, err);
}

int snap_disk_id_of_fd(const char *path, int fd, bool readonly, struct snap_disk_id *out,
                       struct error *err)
{
    int r = put_path(path, readonly, out, err);
    return r < 0 ? r : disk_of_fd(fd, "disk", path, out, err);
}

int snap_disk_id_check(const struct snap_disk_id *saved, unsigned index, struct error *err)
{
    char who[32];
    snprintf(who, sizeof(who), "disk %u", index);
    int rc =
        snap_check_text_field(saved->path, sizeof(saved->path), who, "the snapshot's path", err);
    if (rc < 0)
        return rc;
    if (saved->path[0] == 0)
        return error_fmt(err, -EINVAL, "%s: the snapshot's path is empty", who);
    if (saved->readonly > 1 || saved->mtime_nsec > 999999999)
        return error_fmt(err, -EINVAL,
                         "%s (%s): malformed identity in the snapshot (readonly %u, mtime "
                         "nanoseconds %u)",
                         who, saved->path, saved->readonly, saved->mtime_nsec);
    struct snap_disk_id now = {0};
    rc = disk_now(saved->path, index, true, &now, err);
    if (rc < 0)
        return rc;
    if (now.size != saved->size)
        return error_fmt(
            err, -ESTALE, "disk %u (%s): changed since the snapshot (size %llu -> %llu)", index,
            saved->path, (unsigned long long)saved->size, (unsigned long long)now.size);
    if (now.mtime_sec != saved->mtime_sec || now.mtime_nsec != saved->mtime_nsec)
        return error_fmt(err, -ESTALE,
                         "disk %u (%s): changed since the snapshot (modified at %lld.%09u -> "
                         "%lld.%09u)",
                         index, saved->path, (long long)saved->mtime_sec, saved->mtime_nsec,
                         (long long)now.mtime_sec, now.mtime_nsec);
    return 0;
}
