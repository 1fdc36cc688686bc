/* A diff snapshot's chain: from a folder, through each `base` file, down to the full snapshot
 * whose memory.kiln the diffs are laid over (docs/snapshots.md). */
#ifndef KILN_SNAPSHOT_SNAP_CHAIN_H
#define KILN_SNAPSHOT_SNAP_CHAIN_H

#include "kiln/util/error.h"

/* The most links a chain may have, the full snapshot included: a longer one is refused (it
 * is more likely a mistake than a plan, and each link is read at every restore). */
#define SNAP_CHAIN_MAX 64

struct snap_chain {
    unsigned count;                  /* links, 1 for a full snapshot */
    char dirs[SNAP_CHAIN_MAX][4096]; /* [0] the folder asked for, [count - 1] the full one */
};

/* Walks dir's chain into *chain (about 256 KiB: allocate it). Each link's state.kiln is read
 * and checked (snap_reader_load); a diff (SNAP_FLAG_DIFF) must name its base in a `base`
 * file, and every link must be for the same memory size as dir. A folder seen twice (by
 * device and inode: a loop) or more than SNAP_CHAIN_MAX links is refused. Every refusal is
 * one line naming the link. */
int snap_chain_walk(const char *dir, struct snap_chain *chain, struct error *err);

#endif
