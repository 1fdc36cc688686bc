/* STUB (replaced by the miglink branch). */
#ifndef KILN_MIG_ADDR_H
#define KILN_MIG_ADDR_H
#include <stdint.h>
#include "kiln/util/error.h"
enum mig_addr_kind { MIG_ADDR_UNIX, MIG_ADDR_TCP };
struct mig_addr {
    enum mig_addr_kind kind;
    char path[108];
    char host[64];
    uint16_t port;
    char text[200];
};
int mig_addr_parse(const char *text, struct mig_addr *out, struct error *err);
int mig_addr_resolve(const char *text, struct mig_addr *out, struct error *err);
int mig_listen(const struct mig_addr *a, struct error *err);
int mig_accept(int listen_fd, int timeout_ms, struct error *err);
int mig_connect(const struct mig_addr *a, int timeout_ms, struct error *err);
#endif
