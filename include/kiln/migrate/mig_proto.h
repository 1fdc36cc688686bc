/* The live-migration protocol's records (docs/migration.md): a 16-byte header (type, length)
 * and a body, over a mig_link; every length is checked against its type's bounds on receipt. */
#ifndef KILN_MIG_PROTO_H
#define KILN_MIG_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/migrate/mig_link.h"
#include "kiln/util/error.h"

#define MIG_PAGE_SIZE        4096u
#define MIG_MAX_RUN_PAGES    256u                /* pages in one PAGES record: 1 MiB */
#define MIG_MAX_CONFIG_SIZE  (1u << 20)          /* the config's YAML */
#define MIG_MAX_STATE_SIZE   (64u * 1024 * 1024) /* a state file's bytes */
#define MIG_MAX_MESSAGE_SIZE 1024u               /* an ERROR record's text */

/* In the order a migration sends them; S: the sender (source), R: the receiver. */
enum mig_record_type {
    MIG_REC_CONFIG = 1, /* S: the VM's config as YAML; R answers READY or ERROR */
    MIG_REC_READY,      /* R: the VM is built and waits for its memory */
    MIG_REC_ERROR,      /* S or R: one line of text; the migration is over */
    MIG_REC_PAGES,      /* S: u64 first page, then that many pages' bytes (1 to 256) */
    MIG_REC_ZERO,       /* S: u64 first page, u64 count: those pages are all zero */
    MIG_REC_ROUND,      /* S: u32, the round that just ended */
    MIG_REC_STATE,      /* S: the VM's state (a state file's bytes); R answers LOADED or ERROR */
    MIG_REC_LOADED,     /* R: state loaded: the source may let go of the disks */
    MIG_REC_GO,         /* S: u32 flags: the source let go of its disks; R locks them, runs */
    MIG_REC_RUNNING,    /* R: the destination holds the disks and runs */
    MIG_REC_CANCEL,     /* S: the source gives up and runs on; R discards what it built */
    MIG_REC_TYPES
};

#define MIG_GO_PAUSED 1u /* the VM was paused on the source: it starts paused */

struct mig_header {
    uint32_t type;
    uint64_t length; /* the body's bytes */
};

/* "CONFIG", "PAGES"...: how messages name a record type. */
const char *mig_record_name(uint32_t type);

/* One record: a header, then head[0..head_len) and body[0..body_len) as its body (either may
 * be empty), buffered in the link (mig_link_flush sends it at once). */
int mig_send(struct mig_link *link, uint32_t type, const void *head, size_t head_len,
             const void *body, size_t body_len, struct error *err);
/* An ERROR record with a line of text (cut to MIG_MAX_MESSAGE_SIZE), flushed. */
int mig_send_error(struct mig_link *link, const char *text, struct error *err);

/* The next header: -EBADMSG with a line if the type is unknown or its length outside the
 * type's bounds (a corrupt or hostile stream). */
int mig_recv_header(struct mig_link *link, struct mig_header *h, struct error *err);
/* The next record must be `type` with a body of at most max bytes, read into a new buffer
 * (*body, NULL for an empty body; the caller frees it) and *len. An ERROR record instead is
 * -ECONNABORTED with "the PEER said: TEXT" (peer: "receiver" or "sender"); any other type is
 * -EBADMSG naming both. */
int mig_expect(struct mig_link *link, uint32_t type, const char *peer, void **body, size_t *len,
               struct error *err);
/* An ERROR record's text after its header: read, made printable, NUL-terminated. */
int mig_recv_error_text(struct mig_link *link, uint64_t length, char *text, size_t size,
                        struct error *err);

/* Whether pages [first, first + count) lie inside a RAM of total pages, with count >= 1 (a
 * PAGES or ZERO record's range, from the stream: no sum may overflow). */
bool mig_pages_in_range(uint64_t first, uint64_t count, uint64_t total);

/* Little-endian helpers for the records' fixed fields. */
void mig_put_u32(uint8_t *p, uint32_t v);
void mig_put_u64(uint8_t *p, uint64_t v);
uint32_t mig_get_u32(const uint8_t *p);
uint64_t mig_get_u64(const uint8_t *p);

#endif
