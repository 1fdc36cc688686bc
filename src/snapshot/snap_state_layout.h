/* Where each field of the state file's header and section headers lives (internal to
 * src/snapshot/; docs/snapshots.md has the same table for readers of the format). */
#ifndef KILN_SNAPSHOT_SNAP_STATE_LAYOUT_H
#define KILN_SNAPSHOT_SNAP_STATE_LAYOUT_H

/* The header (SNAP_STATE_HEADER_SIZE bytes). */
#define HDR_MAGIC         0   /* 8 bytes "KILNSNAP" */
#define HDR_VERSION       8   /* u32 */
#define HDR_HEADER_SIZE   12  /* u32 */
#define HDR_FILE_SIZE     16  /* u64, the whole file with the trailer */
#define HDR_MEMORY_SIZE   24  /* u64 */
#define HDR_FLAGS         32  /* u32 */
#define HDR_SECTION_COUNT 36  /* u32 */
#define HDR_KILN_VERSION  40  /* 32 bytes, NUL-terminated, zero-filled */
#define HDR_CPU_VENDOR    72  /* 16 bytes, NUL-terminated, zero-filled */
#define HDR_CPU_WORDS     88  /* 8 x u32: struct snap_cpu_id's words, pad last */
#define HDR_RESERVED      120 /* 8 zero bytes */

/* A section header (SNAP_SECTION_HEADER_SIZE bytes), then size bytes, then zeroes to 8. */
#define SEC_NAME       0  /* 48 bytes, NUL-terminated, zero-filled */
#define SEC_SLOT       48 /* s32 */
#define SEC_SIZE       52 /* u32 */
#define SEC_NAME_FIELD 48

/* Bytes a section of size data bytes takes in the file. */
#define SEC_SPAN(size) (SNAP_SECTION_HEADER_SIZE + (((uint64_t)(size) + 7) & ~(uint64_t)7))

#endif
