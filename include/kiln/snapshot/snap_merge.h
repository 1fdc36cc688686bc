/* `kiln snapshot merge DIR`: folding a diff snapshot into its base, so that the base folder
 * holds the later point (docs/snapshots.md, "Merging a diff"). */
#ifndef KILN_SNAPSHOT_SNAP_MERGE_H
#define KILN_SNAPSHOT_SNAP_MERGE_H

#include <stddef.h>

#include "kiln/util/error.h"

/* Merges diff DIR into the base its `base` file names: DIR's dirty pages go into the base's
 * memory.kiln (or, for a base that is a diff, its memory.diff and memory.dirty), then DIR's
 * state.kiln (with the base's own flags) and config.yaml replace the base's. DIR is left as
 * it is: laid over the merged base it gives the same RAM, so it and diffs taken against it
 * still restore. A full snapshot, a base of another memory size, anything unreadable: one
 * line, and nothing is changed. base_out (may be NULL) gets the base's path. */
int snap_merge(const char *dir, char *base_out, size_t base_out_size, struct error *err);

#endif
