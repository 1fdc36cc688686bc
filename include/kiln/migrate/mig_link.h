/* STUB (replaced by the miglink branch). */
#ifndef KILN_MIG_LINK_H
#define KILN_MIG_LINK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kiln/util/error.h"
#define MIG_PSK_SIZE 32
struct mig_link;
int mig_link_open(struct mig_link **out, int fd, bool initiator, const uint8_t *psk, int timeout_ms,
                  struct error *err);
int mig_link_send(struct mig_link *l, const void *buf, size_t len, struct error *err);
int mig_link_flush(struct mig_link *l, struct error *err);
int mig_link_recv(struct mig_link *l, void *buf, size_t len, struct error *err);
bool mig_link_readable(struct mig_link *l);
void mig_link_cancel(struct mig_link *l);
uint64_t mig_link_bytes_sent(const struct mig_link *l);
uint64_t mig_link_bytes_received(const struct mig_link *l);
void mig_link_close(struct mig_link *l);
int mig_psk_load(const char *path, uint8_t key[MIG_PSK_SIZE], struct error *err);
int mig_psk_parse(const char *hex, uint8_t key[MIG_PSK_SIZE], struct error *err);
#endif
