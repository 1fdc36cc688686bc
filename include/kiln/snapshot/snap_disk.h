/* The identity of a disk image a snapshot was taken with (size and modification time), so a
 * restore against an image that changed since is refused instead of corrupting the guest. */
#ifndef KILN_SNAPSHOT_SNAP_DISK_H
#define KILN_SNAPSHOT_SNAP_DISK_H

#include <stdbool.h>
#include <stdint.h>

#include "kiln/util/error.h"

/* Fixed layout (4120 bytes) so it can be a state-file section of its own: name "disk",
 * slot = the disk's index. */
struct snap_disk_id {
    uint64_t size;       /* bytes */
    int64_t mtime_sec;   /* last modification */
    uint32_t mtime_nsec; /* 0 to 999999999 */
    uint32_t readonly;   /* 0 or 1 */
    char path[4096];     /* as given to kiln, NUL-terminated, zero-filled */
};
_Static_assert(sizeof(struct snap_disk_id) == 4120, "snap_disk_id is stored as is");

/* Records path (a regular file or a block device) as it is now. */
int snap_disk_id_of(const char *path, bool readonly, struct snap_disk_id *out, struct error *err);
/* The same from the image the VM has open at fd (path is only recorded): what a snapshot or a
 * migration records of a running VM's disk, with no file opened. */
int snap_disk_id_of_fd(const char *path, int fd, bool readonly, struct snap_disk_id *out,
                       struct error *err);
/* 0 if the disk saved as number index is still the same; else -ESTALE (or -EINVAL for a
 * malformed saved id) and one line: "disk 1 (/img/data.raw): changed since the snapshot (size
 * 8388608 -> 9437184)", the same for its modification time, or that it is missing. */
int snap_disk_id_check(const struct snap_disk_id *saved, unsigned index, struct error *err);

#endif
