/* The snapshot's guest RAM files: memory.kiln, a sparse image of RAM (zero pages are holes),
 * and for a diff memory.diff + memory.dirty (the pages written since the base, and which). */
#ifndef KILN_SNAPSHOT_SNAP_MEM_H
#define KILN_SNAPSHOT_SNAP_MEM_H

#include <stdint.h>

#include "kiln/util/error.h"

#define SNAP_MEM_PAGE_SIZE 4096u
#define SNAP_DIRTY_MAGIC   "KILNDIRT" /* memory.dirty starts with these 8 bytes */

struct snap_mem_stats {
    uint64_t pages;         /* pages of RAM considered (a diff: the dirty ones) */
    uint64_t data_pages;    /* of those, the non-zero pages written as data */
    uint64_t bytes_written; /* data bytes written to the memory file */
};

/* Writes ram[0..size) to path (through PATH.tmp, fsync, rename), skipping all-zero pages so
 * they stay holes; runs of non-zero pages go out in one pwrite. size must be a multiple of
 * SNAP_MEM_PAGE_SIZE. st may be NULL. */
int snap_mem_save(const char *path, const uint8_t *ram, uint64_t size, struct snap_mem_stats *st,
                  struct error *err);
/* The same for RAM that is a mapping of source_fd (a memfd): only the file's data extents are
 * read, so pages the guest never touched are neither read nor allocated. */
int snap_mem_save_from(const char *path, const uint8_t *ram, uint64_t size, int source_fd,
                       struct snap_mem_stats *st, struct error *err);
/* snap_mem_save_from in two steps, so that the guest may run again between them: the first
 * writes the pages to PATH.tmp (into the page cache) and keeps it open in *pending; the
 * second flushes it and gives it its name. snap_mem_pending_abort removes an uncommitted
 * PATH.tmp. */
struct snap_mem_pending {
    int fd;
    char path[4096];
    char tmp_path[4096 + 8];
};
int snap_mem_write_from(const char *path, const uint8_t *ram, uint64_t size, int source_fd,
                        struct snap_mem_stats *st, struct snap_mem_pending *pending,
                        struct error *err);
int snap_mem_commit(struct snap_mem_pending *pending, struct error *err);
void snap_mem_pending_abort(struct snap_mem_pending *pending);
/* Opens path read-only for a restore: a regular file of exactly expected_size bytes, else one
 * line naming both sizes. The caller owns *fd_out (typically mmaps it MAP_PRIVATE). */
int snap_mem_open(const char *path, uint64_t expected_size, int *fd_out, struct error *err);
/* Reads the file behind fd (opened by snap_mem_open) into ram[0..size), reading only its data
 * (SEEK_DATA/SEEK_HOLE): ram must already be zero where the file has holes, as a fresh
 * anonymous mapping is. */
int snap_mem_copy_in(int fd, uint8_t *ram, uint64_t size, struct error *err);

/* A diff: the pages whose bit is set in dirty (bit i of dirty[i / 64] is page i, the layout of
 * KVM_GET_DIRTY_LOG) go to path, a sparse file of the full size (a dirty page that is now zero
 * is a hole there), and the bitmap to bitmap_path, so that such a page can be told from an
 * untouched one. Both through PATH.tmp + rename. st->pages counts the dirty pages. */
int snap_mem_save_dirty(const char *path, const char *bitmap_path, const uint8_t *ram,
                        uint64_t size, const uint64_t *dirty, struct snap_mem_stats *st,
                        struct error *err);
/* Folds a diff into its base memory file in place: every dirty page is copied from the diff,
 * a page that is zero is punched out as a hole (written as zeroes where the file system cannot
 * punch). The sizes and the bitmap are checked before the base is touched. Not atomic, but
 * idempotent: after a crash, merging again finishes the job. */
int snap_mem_merge(const char *base_path, const char *diff_path, const char *bitmap_path,
                   struct error *err);
/* Merging a diff into a base that is itself a diff: after snap_mem_merge into the base's
 * memory.diff, the base's bitmap at into_path gains every page set in from_path (same memory
 * size, checked), rewritten through PATH.tmp + rename. */
int snap_mem_merge_bitmaps(const char *into_path, const char *from_path, struct error *err);
/* Restoring a diff without merging: reads the diff's dirty pages over ram[0..size), which
 * already holds the base's memory. */
int snap_mem_apply_dirty(const char *diff_path, const char *bitmap_path, uint8_t *ram,
                         uint64_t size, struct error *err);

#endif
