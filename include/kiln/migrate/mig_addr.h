/* Where a migration stream goes: "unix:PATH" or "tcp:HOST:PORT" parsed into a struct mig_addr,
 * and the listening, accepting and connecting sockets behind `kiln receive` and `migrate`. */
#ifndef KILN_MIG_ADDR_H
#define KILN_MIG_ADDR_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/util/error.h"

enum mig_addr_kind { MIG_ADDR_UNIX, MIG_ADDR_TCP };

struct mig_addr {
    enum mig_addr_kind kind;
    char path[108]; /* unix: the socket path (at most 107 bytes) */
    char host[64];  /* tcp: a numeric IPv4 or IPv6 address (no names: the VMM's threads run
                       under seccomp and cannot read /etc/hosts; `kiln ctl` resolves names);
                       an IPv6 address is kept without its brackets */
    uint16_t port;  /* tcp: 1-65535 */
    char text[200]; /* as given, for messages */
};

/* "unix:PATH", "tcp:HOST:PORT", "tcp:[V6]:PORT". One error line naming the text and what was
 * expected ("migration address 'tcp:x': expected unix:PATH or tcp:HOST:PORT"). */
int mig_addr_parse(const char *text, struct mig_addr *out, struct error *err);

/* The same, but a tcp host may be a name, resolved here (getaddrinfo) to a numeric address:
 * for kiln ctl, before it sends the address to the VM. */
int mig_addr_resolve(const char *text, struct mig_addr *out, struct error *err);

/* The address in the form mig_addr_parse takes ("tcp:[::1]:4000" for IPv6), numeric after
 * mig_addr_resolve: what kiln ctl hands to the VM. Returns -ENAMETOOLONG if size is too small. */
int mig_addr_format(const struct mig_addr *a, char *buf, size_t size);

/* Listening socket (unix: a stale socket file left by a dead process is replaced, a path another
 * process listens on is an error, mode 0600; tcp: SO_REUSEADDR). Returns the fd (CLOEXEC). */
int mig_listen(const struct mig_addr *a, struct error *err);

/* The port a tcp listening socket is bound to (for port 0: the one the kernel chose), or a
 * negative errno. */
int mig_listen_port(int listen_fd);

/* One connection, waiting at most timeout_ms (-1: forever); -ETIMEDOUT with a line. The fd is
 * blocking and CLOEXEC. */
int mig_accept(int listen_fd, int timeout_ms, struct error *err);

/* Connects within timeout_ms (-1: forever); a refused or unreachable peer is one line naming the
 * address. The fd is blocking and CLOEXEC. */
int mig_connect(const struct mig_addr *a, int timeout_ms, struct error *err);

#endif
