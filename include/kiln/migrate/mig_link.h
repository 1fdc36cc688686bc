/* The migration stream: a reliable byte stream over a connected socket, plain or encrypted with a
 * pre-shared key, behind a handshake both sides must agree on (docs/migration-link.md). */
#ifndef KILN_MIG_LINK_H
#define KILN_MIG_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/util/error.h"

#define MIG_PSK_SIZE 32

struct mig_link; /* opaque */

/* libsodium's one-time set-up, which may open /dev/urandom: kiln calls it before the migration
 * sender's thread starts under a seccomp filter that forbids opening files. mig_link_open
 * calls it too (it is idempotent), for programs without filters. */
int mig_link_prepare(struct error *err);

/* Handshake: sender (initiator=true) and receiver exchange a hello (a magic, a format version,
 * whether a key is used, 32 random bytes each); with a psk (MIG_PSK_SIZE bytes, or NULL for a
 * plain link) each direction gets its own key derived from the psk and BOTH sides' random bytes
 * (so a recorded stream cannot be replayed to another receiver), and each side proves it holds
 * the key before any data flows. Errors, each one line: not a kiln migration peer, another
 * version, "the sender uses a pre-shared key and this receiver has none" (and the reverse),
 * "wrong pre-shared key", timeout, peer closed. fd must be a connected stream socket; on success
 * the link owns it, on failure it stays the caller's. timeout_ms bounds each wait (-1: none) here
 * and in every later call. */
int mig_link_open(struct mig_link **out, int fd, bool initiator, const uint8_t *psk, int timeout_ms,
                  struct error *err);

/* Queues len bytes (buffered; encrypted in chunks of up to 64 KiB each as one authenticated
 * message); blocks while the socket is full, at most timeout_ms per wait. */
int mig_link_send(struct mig_link *l, const void *buf, size_t len, struct error *err);

/* Sends what is buffered. */
int mig_link_flush(struct mig_link *l, struct error *err);

/* Exactly len bytes (0: fine), or an error: peer closed (-EPIPE, "the peer closed the
 * connection"), a message that fails authentication (-EBADMSG, "the stream was altered or
 * corrupted"), timeout (-ETIMEDOUT). After an error every later call fails the same way. */
int mig_link_recv(struct mig_link *l, void *buf, size_t len, struct error *err);

/* Whether bytes can be read now without blocking (for a receiver polling for a cancel). */
bool mig_link_readable(struct mig_link *l);

/* From another thread: makes every blocked or later call fail at once with -ECANCELED
 * (shutdown(fd, SHUT_RDWR) plus a flag); for cancelling a migration. */
void mig_link_cancel(struct mig_link *l);

uint64_t mig_link_bytes_sent(const struct mig_link *l); /* on the wire, framing included */
uint64_t mig_link_bytes_received(const struct mig_link *l);

/* Closes the fd too and wipes the keys. NULL is fine. */
void mig_link_close(struct mig_link *l);

/* A key file: 64 hex digits (a trailing newline allowed), not readable by group or others (like
 * ssh, refused with a line saying `chmod 600 PATH`). */
int mig_psk_load(const char *path, uint8_t key[MIG_PSK_SIZE], struct error *err);

/* The same from 64 hex digits in a string (the control API's JSON carries it). */
int mig_psk_parse(const char *hex, uint8_t key[MIG_PSK_SIZE], struct error *err);

#endif
