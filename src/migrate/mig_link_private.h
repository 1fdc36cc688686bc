/* Inside the migration link: its state, the wire format's constants, and the frame and socket
 * helpers that the handshake (mig_handshake.c) and the data path (mig_link.c) share. */
#ifndef KILN_MIG_LINK_PRIVATE_H
#define KILN_MIG_LINK_PRIVATE_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/migrate/mig_link.h"

/* One frame on the wire: a 4-byte little-endian body length, then the body: up to
 * MIG_CHUNK_SIZE bytes of data, encrypted (MIG_TAG_SIZE bytes longer) on a keyed link. */
#define MIG_CHUNK_SIZE   (64 * 1024)
#define MIG_FRAME_HEADER 4
#define MIG_TAG_SIZE     crypto_secretstream_xchacha20poly1305_ABYTES
#define MIG_BODY_MAX     (MIG_CHUNK_SIZE + MIG_TAG_SIZE)

struct mig_link {
    int fd;
    bool keyed;
    int timeout_ms; /* each wait's bound; -1: none */
    bool cancelled; /* set by mig_link_cancel from another thread (atomic) */
    int failure;    /* the first error, returned by every later call (0: none) */
    struct error failure_msg;
    uint64_t bytes_sent, bytes_received; /* atomic: another thread may read them */
    crypto_secretstream_xchacha20poly1305_state tx, rx;
    uint8_t *out_frame; /* the frame being built: header, then body */
    uint8_t *out_data;  /* the data queued for it: out_frame's body, or apart when keyed */
    size_t out_len;
    uint8_t *in_frame; /* the body of the frame last read */
    uint8_t *in_data;  /* its data: in_frame itself, or decrypted apart when keyed */
    size_t in_pos, in_len;
};

/* Socket I/O bounded by the link's timeout and ended by a cancel: 0, -EPIPE (the peer closed or
 * reset the connection), -ETIMEDOUT, -ECANCELED or another -errno. */
int mig_io_write(struct mig_link *l, const void *buf, size_t len);
/* Some bytes, at most len: how many, or one of the errors above (-EPIPE when the peer closed). */
long mig_io_read_some(struct mig_link *l, void *buf, size_t len);
int mig_io_read(struct mig_link *l, void *buf, size_t len);

/* Seals and sends out_data's out_len bytes as one frame (encrypted on a keyed link). */
int mig_frame_send(struct mig_link *l);
/* Reads one frame into in_data/in_len; -EBADMSG for a bad length or a failed authentication. */
int mig_frame_recv(struct mig_link *l);

/* The hello and, with a psk, the keys and their proofs: 0, or an error line in err. */
int mig_handshake(struct mig_link *l, bool initiator, const uint8_t *psk, struct error *err);

#endif
