/* A snapshot folder (docs/snapshots.md, "Folder layout"): its files' names, making it ready
 * without overwriting an older snapshot, and a diff's `base` file naming its base folder. */
#ifndef KILN_SNAPSHOT_SNAP_DIR_H
#define KILN_SNAPSHOT_SNAP_DIR_H

#include <stddef.h>

#include "kiln/util/error.h"

#define SNAP_STATE_FILE  "state.kiln"   /* the state file (snap_state.h) */
#define SNAP_MEMORY_FILE "memory.kiln"  /* a full snapshot's RAM (snap_mem.h) */
#define SNAP_DIFF_FILE   "memory.diff"  /* a diff snapshot's dirtied pages */
#define SNAP_DIRTY_FILE  "memory.dirty" /* ... and which pages those are */
#define SNAP_BASE_FILE   "base"         /* a diff snapshot: the base folder's path, one line */
#define SNAP_CONFIG_FILE "config.yaml"  /* the VM's config as `kiln config` prints it */

/* Creates dir (mode 0700) if missing. An existing folder is used as it is unless it already
 * holds a state.kiln: then -EEXIST and one line, as a snapshot is never overwritten. */
int snap_dir_prepare(const char *dir, struct error *err);
/* out = DIR/FILE; -ENAMETOOLONG and one line if it does not fit in out_size. */
int snap_dir_file(const char *dir, const char *file, char *out, size_t out_size, struct error *err);
/* A diff snapshot's DIR/base: base_dir made absolute (it must exist, and hold a state.kiln),
 * written as one line through base.tmp + rename. */
int snap_dir_write_base(const char *dir, const char *base_dir, struct error *err);
/* Reads DIR/base into out: one line holding an absolute path, no control characters, shorter
 * than out_size; anything else is -EINVAL and one line naming the file. */
int snap_dir_read_base(const char *dir, char *out, size_t out_size, struct error *err);

#endif
