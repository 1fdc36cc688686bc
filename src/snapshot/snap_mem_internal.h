/* What the full and the diff memory files share (internal to src/snapshot/): size checks,
 * creating the sized .tmp, writing the non-zero pages of a range, opening a sized file. */
#ifndef KILN_SNAPSHOT_SNAP_MEM_INTERNAL_H
#define KILN_SNAPSHOT_SNAP_MEM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/snapshot/snap_mem.h"
#include "kiln/util/error.h"

/* size must be a positive multiple of the page size; errors name path. */
int snap_mem_check_size(const char *path, uint64_t size, struct error *err);
/* Creates PATH.tmp (into tmp_path) with size bytes, all holes; returns its fd. */
int snap_mem_create_tmp(const char *path, char *tmp_path, size_t tmp_size, uint64_t size,
                        struct error *err);
/* Writes the non-zero pages among pages [first, first+count) of ram to fd at their offsets,
 * a run of them in one pwrite, counting them in st. */
int snap_mem_write_pages(int fd, const char *path, const uint8_t *ram, uint64_t first,
                         uint64_t count, struct snap_mem_stats *st, struct error *err);
/* Opens path with flags; a regular file of exactly expected_size bytes, else one line
 * "WHAT PATH: N bytes (expected M ...)". Returns the fd. */
int snap_mem_open_sized(const char *path, int flags, uint64_t expected_size, const char *what,
                        struct error *err);

#endif
