/* Snapshot folders (kiln/snapshot/snap_dir.h): created private (0700: guest memory is as
 * sensitive as the guest), and never reused over an existing snapshot. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/snapshot/snap_dir.h"
#include "snap_io.h"

int snap_dir_file(const char *dir, const char *file, char *out, size_t out_size, struct error *err)
{
    int n = snprintf(out, out_size, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= out_size)
        return error_fmt(err, -ENAMETOOLONG, "snapshot folder %s: path too long (at most %zu)", dir,
                         out_size - 1);
    return 0;
}

int snap_dir_prepare(const char *dir, struct error *err)
{
    if (dir[0] == 0)
        return error_fmt(err, -EINVAL, "snapshot folder: empty path");
    if (mkdir(dir, 0700) == 0)
        return 0;
    if (errno != EEXIST)
        return error_fmt(err, -errno, "snapshot folder %s: creating it: %s", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) < 0)
        return error_fmt(err, -errno, "snapshot folder %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return error_fmt(err, -ENOTDIR, "snapshot folder %s: exists and is not a folder", dir);
    char state[4096];
    int rc = snap_dir_file(dir, SNAP_STATE_FILE, state, sizeof(state), err);
    if (rc < 0)
        return rc;
    /* Only "no such file" means free: any other failure to look must not let a snapshot
     * be overwritten. */
    struct stat st_state;
    if (lstat(state, &st_state) == 0)
        return error_fmt(err, -EEXIST,
                         "snapshot folder %s already holds a snapshot (%s); remove it or choose "
                         "another folder",
                         dir, SNAP_STATE_FILE);
    if (errno != ENOENT)
        return error_fmt(err, -errno, "snapshot folder %s: cannot look for %s: %s", dir,
                         SNAP_STATE_FILE, strerror(errno));
    return 0;
}

int snap_dir_write_base(const char *dir, const char *base_dir, struct error *err)
{
    char base[PATH_MAX], state[4096], path[4096], tmp[4096 + 8];
    if (!realpath(base_dir, base))
        return error_fmt(err, -errno, "base snapshot %s: %s", base_dir, strerror(errno));
    int rc = snap_dir_file(base, SNAP_STATE_FILE, state, sizeof(state), err);
    if (rc < 0)
        return rc;
    if (access(state, F_OK) < 0)
        return error_fmt(err, -ENOENT, "base snapshot %s: no %s there (expected a snapshot)", base,
                         SNAP_STATE_FILE);
    if (snap_find_control_char(base, strlen(base)) >= 0)
        return error_fmt(err, -EINVAL, "base snapshot %s: its path has a control character",
                         base_dir);
    rc = snap_dir_file(dir, SNAP_BASE_FILE, path, sizeof(path), err);
    if (rc == 0)
        rc = snap_tmp_path(path, tmp, sizeof(tmp), err);
    if (rc < 0)
        return rc;
    int fd = snap_create_tmp(tmp, err);
    if (fd < 0)
        return fd;
    size_t len = strlen(base);
    base[len] = '\n'; /* realpath's result is shorter than PATH_MAX: room for it */
    rc = snap_pwrite_all(fd, base, len + 1, 0, tmp, err);
    if (rc == 0)
        rc = snap_commit(fd, tmp, path, err);
    close(fd);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

int snap_dir_read_base(const char *dir, char *out, size_t out_size, struct error *err)
{
    char path[4096];
    int rc = snap_dir_file(dir, SNAP_BASE_FILE, path, sizeof(path), err);
    if (rc < 0)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return error_fmt(err, -errno, "%s: %s", path, strerror(errno));
    /* One byte more than fits, to tell a path too long from one that fits. */
    char line[4096 + 2];
    ssize_t n = read(fd, line, sizeof(line));
    int saved_errno = errno;
    close(fd);
    if (n < 0)
        return error_fmt(err, -saved_errno, "%s: %s", path, strerror(saved_errno));
    size_t len = (size_t)n;
    if (len == sizeof(line))
        return error_fmt(err, -EINVAL, "%s: longer than a path (at most %zu bytes)", path,
                         sizeof(line) - 2);
    if (len == 0 || line[len - 1] != '\n')
        return error_fmt(err, -EINVAL, "%s: expected one line ending in a newline", path);
    len--;
    if (len + 1 > out_size)
        return error_fmt(err, -ENAMETOOLONG,
                         "%s: the base folder's path is %zu bytes (at most %zu)", path, len,
                         out_size - 1);
    long bad = snap_find_control_char(line, len);
    if (bad >= 0)
        return error_fmt(err, -EINVAL,
                         "%s: byte 0x%02x at offset %ld (expected one line holding a path)", path,
                         (unsigned char)line[bad], bad);
    if (line[0] != '/')
        return error_fmt(err, -EINVAL, "%s: expected an absolute path to the base folder", path);
    memcpy(out, line, len);
    out[len] = 0;
    return 0;
}
