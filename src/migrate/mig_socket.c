/* The migration stream's sockets: listening on a unix path or tcp address (replacing a stale
 * socket file, refusing a live one), accepting one sender and connecting, each within a time. */
#include "kiln/migrate/mig_addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

union sockaddr_any {
    struct sockaddr sa;
    struct sockaddr_un un;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

static socklen_t make_sockaddr(const struct mig_addr *a, union sockaddr_any *out)
{
    memset(out, 0, sizeof(*out));
    if (a->kind == MIG_ADDR_UNIX) {
        out->un.sun_family = AF_UNIX;
        memcpy(out->un.sun_path, a->path, strlen(a->path) + 1);
        return sizeof(out->un);
    }
    if (inet_pton(AF_INET, a->host, &out->in.sin_addr) == 1) {
        out->in.sin_family = AF_INET;
        out->in.sin_port = htons(a->port);
        return sizeof(out->in);
    }
    if (inet_pton(AF_INET6, a->host, &out->in6.sin6_addr) == 1) {
        out->in6.sin6_family = AF_INET6;
        out->in6.sin6_port = htons(a->port);
        return sizeof(out->in6);
    }
    return 0; /* a host name: mig_addr_parse never gives one */
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd: 1 when they came, 0 when timeout_ms passed (-1: never), or -errno. */
static int wait_for(int fd, short events, int timeout_ms)
{
    long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        int left = -1;
        if (deadline >= 0) {
            long long l = deadline - now_ms();
            left = l < 0 ? 0 : (int)l;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left);
        if (r > 0)
            return 1;
        if (r == 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

/* Small writes (the handshake) go out at once rather than after Nagle's delay; a unix socket
 * has no such option and refuses it, which is fine. */
static void set_no_delay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int set_blocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

/* Whether a process listens on the unix socket at path: a stale file left by a dead process
 * refuses connections (ECONNREFUSED); a live one accepts, or has a full backlog (EAGAIN). */
static bool unix_path_is_live(const struct sockaddr_un *address)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return true; /* cannot tell: do not remove what may be someone's socket */
    int r = connect(fd, (const struct sockaddr *)address, sizeof(*address));
    int e = errno;
    close(fd);
    return r == 0 || e != ECONNREFUSED;
}

/* Binds a unix socket, replacing a stale socket file; mode 0600 is set before listen(), so no
 * one can connect while the file still has the umask's mode. */
static int bind_unix(int fd, const struct mig_addr *a, const union sockaddr_any *address,
                     struct error *err)
{
    if (bind(fd, &address->sa, sizeof(address->un)) < 0) {
        if (errno != EADDRINUSE)
            return error_fmt(err, -errno, "migration address '%s': bind: %s", a->text,
                             strerror(errno));
        struct stat st;
        if (lstat(a->path, &st) == 0 && !S_ISSOCK(st.st_mode))
            return error_fmt(err, -EEXIST, "migration address '%s': %s exists and is not a socket",
                             a->text, a->path);
        if (unix_path_is_live(&address->un))
            return error_fmt(err, -EADDRINUSE,
                             "migration address '%s': another process is listening on %s", a->text,
                             a->path);
        if (unlink(a->path) < 0 && errno != ENOENT)
            return error_fmt(err, -errno, "migration address '%s': removing the stale socket: %s",
                             a->text, strerror(errno));
        if (bind(fd, &address->sa, sizeof(address->un)) < 0)
            return error_fmt(err, -errno, "migration address '%s': bind: %s", a->text,
                             strerror(errno));
    }
    if (chmod(a->path, 0600) < 0) {
        int e = errno;
        unlink(a->path);
        return error_fmt(err, -e, "migration address '%s': chmod 600: %s", a->text, strerror(e));
    }
    return 0;
}

int mig_listen(const struct mig_addr *a, struct error *err)
{
    union sockaddr_any address;
    socklen_t address_len = make_sockaddr(a, &address);
    if (address_len == 0)
        return error_fmt(err, -EINVAL, "migration address '%s': '%s' is not a numeric address",
                         a->text, a->host);
    int fd = socket(address.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return error_fmt(err, -errno, "migration address '%s': socket: %s", a->text,
                         strerror(errno));
    int r;
    if (a->kind == MIG_ADDR_UNIX) {
        r = bind_unix(fd, a, &address, err);
    } else {
        /* A receiver started again right after a migration finds its port in TIME_WAIT. */
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        r = bind(fd, &address.sa, address_len) < 0
                ? error_fmt(err, -errno, "migration address '%s': bind: %s", a->text,
                            strerror(errno))
                : 0;
    }
    if (r == 0 && listen(fd, 1) < 0) {
        r = error_fmt(err, -errno, "migration address '%s': listen: %s", a->text, strerror(errno));
        if (a->kind == MIG_ADDR_UNIX)
            unlink(a->path);
    }
    if (r < 0) {
        close(fd);
        return r;
    }
    return fd;
}

int mig_listen_port(int listen_fd)
{
    union sockaddr_any address;
    socklen_t len = sizeof(address);
    if (getsockname(listen_fd, &address.sa, &len) < 0)
        return -errno;
    if (address.sa.sa_family == AF_INET)
        return ntohs(address.in.sin_port);
    if (address.sa.sa_family == AF_INET6)
        return ntohs(address.in6.sin6_port);
    return -EAFNOSUPPORT;
}

/* A sender speaks first, at once; another mig_listen checking whether this path is live
 * (unix_path_is_live) hangs up without a word, within microseconds. So a connection that ends
 * before its first byte, waited for up to PROBE_WAIT_MS, is such a probe, not a sender. A
 * connection still silent then is returned: the handshake's own timeout deals with it. */
#define PROBE_WAIT_MS 1000

static bool closed_without_a_word(int fd)
{
    if (wait_for(fd, POLLIN, PROBE_WAIT_MS) != 1)
        return false;
    char byte;
    return recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

int mig_accept(int listen_fd, int timeout_ms, struct error *err)
{
    for (;;) {
        int w = wait_for(listen_fd, POLLIN, timeout_ms);
        if (w < 0)
            return error_fmt(err, w, "migration: waiting for a sender: %s", strerror(-w));
        if (w == 0)
            return error_fmt(err, -ETIMEDOUT, "migration: no sender connected within %d ms",
                             timeout_ms);
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0 && closed_without_a_word(fd)) {
            close(fd);
            continue;
        }
        if (fd >= 0) {
            set_no_delay(fd);
            return fd;
        }
        /* A sender that gave up between poll and accept: wait for the next one. */
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            return error_fmt(err, -errno, "migration: accept: %s", strerror(errno));
    }
}

/* A unix socket with a full backlog answers EAGAIN at once rather than waiting: retry. */
static int connect_unix(int fd, const union sockaddr_any *address, int timeout_ms)
{
    long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    while (connect(fd, &address->sa, sizeof(address->un)) < 0) {
        if (errno != EAGAIN)
            return -errno;
        if (deadline >= 0 && now_ms() >= deadline)
            return -ETIMEDOUT;
        usleep(10000);
    }
    return 0;
}

static int connect_tcp(int fd, const union sockaddr_any *address, socklen_t len, int timeout_ms)
{
    if (connect(fd, &address->sa, len) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return -errno;
    int w = wait_for(fd, POLLOUT, timeout_ms);
    if (w < 0)
        return w;
    if (w == 0)
        return -ETIMEDOUT;
    int so_error = 0;
    socklen_t so_len = sizeof(so_error);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &so_len) < 0)
        return -errno;
    return -so_error;
}

int mig_connect(const struct mig_addr *a, int timeout_ms, struct error *err)
{
    union sockaddr_any address;
    socklen_t address_len = make_sockaddr(a, &address);
    if (address_len == 0)
        return error_fmt(err, -EINVAL, "migration address '%s': '%s' is not a numeric address",
                         a->text, a->host);
    int fd = socket(address.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return error_fmt(err, -errno, "migration address '%s': socket: %s", a->text,
                         strerror(errno));
    int r = a->kind == MIG_ADDR_UNIX ? connect_unix(fd, &address, timeout_ms)
                                     : connect_tcp(fd, &address, address_len, timeout_ms);
    if (r == 0)
        r = set_blocking(fd);
    if (r < 0) {
        close(fd);
        if (r == -ETIMEDOUT)
            return error_fmt(err, r, "migration address '%s': connect: no answer within %d ms",
                             a->text, timeout_ms);
        bool nobody = r == -ECONNREFUSED || r == -ENOENT;
        return error_fmt(err, r, "migration address '%s': connect: %s%s", a->text, strerror(-r),
                         nobody ? " (is `kiln receive` listening there?)" : "");
    }
    set_no_delay(fd);
    return fd;
}
