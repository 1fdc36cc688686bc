/* The snapshot's state file (state.kiln): a versioned, CRC-guarded container of named
 * sections holding the VM's plain state structs. Byte layout: docs/snapshots.md. */
#ifndef KILN_SNAPSHOT_SNAP_STATE_H
#define KILN_SNAPSHOT_SNAP_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/snapshot/snap_cpu.h"
#include "kiln/util/error.h"

#define SNAP_STATE_MAGIC         "KILNSNAP" /* 8 bytes, no NUL in the file */
#define SNAP_STATE_VERSION       1u
#define SNAP_STATE_HEADER_SIZE   128u
#define SNAP_SECTION_HEADER_SIZE 56u
#define SNAP_STATE_TRAILER_SIZE  8u  /* 4 zero bytes, then the CRC-32 */
#define SNAP_SECTION_NAME_MAX    47u /* characters; the field is 48 bytes */
#define SNAP_MAX_SECTIONS        1024u
#define SNAP_STATE_MAX_SIZE      (64u * 1024 * 1024) /* the whole file */

#define SNAP_FLAG_DIFF 1u /* memory is a diff against the snapshot in the folder `base` names */

/* What the header says besides the sections. */
struct snap_info {
    char kiln_version[32]; /* NUL-terminated; the writer fills in KILN_VERSION itself */
    uint64_t memory_size;  /* guest RAM, bytes */
    uint32_t flags;        /* SNAP_FLAG_* */
    struct snap_cpu_id cpu;
};

/* Collects the sections in memory and writes PATH.tmp at finish, then fsyncs it, renames it
 * to PATH and fsyncs the folder: a crash never leaves a half-written file under PATH. */
struct snap_writer {
    bool open; /* sections may be added */
    int fd;    /* PATH.tmp, -1 once finished or aborted, or for a writer in memory */
    char path[4096];
    char tmp_path[4096 + 8];
    uint8_t *buf; /* header + sections so far */
    size_t len, cap;
    uint32_t count;
};

/* Creates PATH.tmp (mode 0600, replacing a stale one, never following a symlink) and starts the
 * header from info (its kiln_version is ignored: this kiln's is written). Unknown flags are
 * refused. */
int snap_writer_open(struct snap_writer *w, const char *path, const struct snap_info *info,
                     struct error *err);
/* The same in memory only, for a state sent over a stream (live migration): label names it in
 * messages; snap_writer_take hands the finished bytes out. */
int snap_writer_open_memory(struct snap_writer *w, const char *label, const struct snap_info *info,
                            struct error *err);
/* Appends a section: name of 1 to 47 characters, slot (vCPU index, virtio slot, or -1),
 * size bytes at data (data may be NULL if size is 0). -EINVAL for a bad or duplicate
 * name+slot, too many sections or a file over SNAP_STATE_MAX_SIZE. The writer stays usable
 * after a refused section. */
int snap_writer_add(struct snap_writer *w, const char *name, int32_t slot, const void *data,
                    uint32_t size, struct error *err);
/* Writes, fsyncs and renames. On failure the .tmp is removed. Either way the writer is
 * released (snap_writer_abort after it does nothing). */
int snap_writer_finish(struct snap_writer *w, struct error *err);
/* A writer in memory: the whole state (header, sections, CRC), which the caller frees. The
 * writer is released either way. */
int snap_writer_take(struct snap_writer *w, uint8_t **bytes, size_t *len, struct error *err);
/* Gives up: closes and removes PATH.tmp, frees the buffer. Safe to call twice. */
void snap_writer_abort(struct snap_writer *w);

/* A checked state file in memory. info is filled by a successful load or parse. */
struct snap_reader {
    uint8_t *bytes; /* the whole file, owned */
    size_t len;
    char label[4096]; /* names the file in errors */
    struct snap_info info;
    uint32_t count; /* sections */
};

/* Reads path (at most SNAP_STATE_MAX_SIZE bytes) and checks it as snap_reader_parse does,
 * with label "snapshot PATH". */
int snap_reader_load(struct snap_reader *r, const char *path, struct error *err);
/* The same checks on bytes in memory (copied; the fuzz target's entry); label names the file
 * in errors. Every failure is -EINVAL (-ENOMEM for no memory) and one line: not a kiln
 * snapshot, another format version, truncated, trailing bytes, CRC mismatch, a bad header
 * field, a section running past the end, a duplicate section, too many sections, a name
 * without NUL, nonzero padding. On failure r holds nothing (snap_reader_free is still safe). */
int snap_reader_parse(struct snap_reader *r, const uint8_t *bytes, size_t len, const char *label,
                      struct error *err);
/* The section name+slot, which must be expected_size bytes; NULL and one line if it is
 * missing ("no section 'vcpu' for slot 2") or has another size ("section 'virtio-blk 0' is
 * 320 bytes (expected 336: saved by another kiln version?)"). The bytes live as long as r
 * and are 8-byte aligned. */
const void *snap_reader_find(const struct snap_reader *r, const char *name, int32_t slot,
                             uint32_t expected_size, struct error *err);
/* One section as stored: name (NUL-terminated), slot, size bytes at data (8-byte aligned). */
struct snap_section {
    const char *name;
    int32_t slot;
    uint32_t size;
    const void *data;
};
/* The section number index (0 to r->count - 1) in file order, for listing or checking what a
 * file holds; -ENOENT past the last. Pointers live as long as r. */
int snap_reader_section(const struct snap_reader *r, uint32_t index, struct snap_section *out);
/* Releases the bytes. Safe on a reader whose load failed, and twice. */
void snap_reader_free(struct snap_reader *r);

#endif
