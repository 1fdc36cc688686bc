/* Walking a diff snapshot's chain of `base` links down to its full snapshot, checking each
 * link's state file, memory size and place in the chain (no loops, at most 64 links). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "kiln/snapshot/snap_chain.h"
#include "kiln/snapshot/snap_dir.h"
#include "kiln/snapshot/snap_state.h"

struct link_id {
    dev_t dev;
    ino_t ino;
};

/* The link's state file, read and checked: its memory size and whether it is a diff. */
static int read_link(const char *dir, uint64_t *memory_size, bool *diff, struct error *err)
{
    char path[4096];
    int r = snap_dir_file(dir, SNAP_STATE_FILE, path, sizeof(path), err);
    struct snap_reader reader;
    if (r == 0)
        r = snap_reader_load(&reader, path, err);
    if (r < 0)
        return r;
    *memory_size = reader.info.memory_size;
    *diff = (reader.info.flags & SNAP_FLAG_DIFF) != 0;
    snap_reader_free(&reader);
    return 0;
}

int snap_chain_walk(const char *dir, struct snap_chain *chain, struct error *err)
{
    struct link_id ids[SNAP_CHAIN_MAX];
    uint64_t first_size = 0;
    chain->count = 0;
    if (strlen(dir) >= sizeof(chain->dirs[0]))
        return error_fmt(err, -ENAMETOOLONG, "snapshot %s: path too long", dir);
    snprintf(chain->dirs[0], sizeof(chain->dirs[0]), "%s", dir);
    for (unsigned n = 0;; n++) {
        const char *link = chain->dirs[n];
        struct stat st;
        if (stat(link, &st) < 0)
            return n == 0 ? error_fmt(err, -errno, "snapshot %s: %s", link, strerror(errno))
                          : error_fmt(err, -errno, "base snapshot %s (of %s): %s", link,
                                      chain->dirs[n - 1], strerror(errno));
        for (unsigned i = 0; i < n; i++)
            if (ids[i].dev == st.st_dev && ids[i].ino == st.st_ino)
                return error_fmt(err, -ELOOP, "snapshot %s: its chain of bases loops back to %s",
                                 dir, link);
        ids[n] = (struct link_id){st.st_dev, st.st_ino};
        chain->count = n + 1;
        uint64_t size;
        bool diff;
        int r = read_link(link, &size, &diff, err);
        if (r < 0)
            return r;
        if (n == 0)
            first_size = size;
        else if (size != first_size)
            return error_fmt(err, -EINVAL,
                             "base snapshot %s: %llu MiB of RAM, but %s has %llu MiB (a diff "
                             "needs a base of the same VM)",
                             link, (unsigned long long)(size >> 20), dir,
                             (unsigned long long)(first_size >> 20));
        if (!diff)
            return 0;
        if (n + 1 == SNAP_CHAIN_MAX)
            return error_fmt(err, -ELOOP,
                             "snapshot %s: more than %d diffs before a full snapshot (merge "
                             "some with kiln snapshot merge)",
                             dir, SNAP_CHAIN_MAX - 1);
        r = snap_dir_read_base(link, chain->dirs[n + 1], sizeof(chain->dirs[n + 1]), err);
        if (r < 0)
            return r;
    }
}
