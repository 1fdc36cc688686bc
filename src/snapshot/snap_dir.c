/* Snapshot folders (kiln/snapshot/snap_dir.h): created private (0700: guest memory is as
 * sensitive as the guest), and never reused over an existing snapshot. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/snapshot/snap_dir.h"

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
    if (access(state, F_OK) == 0)
        return error_fmt(err, -EEXIST,
                         "snapshot folder %s already holds a snapshot (%s); remove it or choose "
                         "another folder",
                         dir, SNAP_STATE_FILE);
    return 0;
}
