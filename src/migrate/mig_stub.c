/* STUB (replaced by the miglink branch): plain unix-socket link for the lead's testing. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "kiln/migrate/mig_addr.h"
#include "kiln/migrate/mig_link.h"

struct mig_link {
    int fd;
    int timeout_ms;
    bool cancelled;
    uint64_t sent, received;
};

int mig_addr_parse(const char *text, struct mig_addr *out, struct error *err)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->text, sizeof(out->text), "%s", text);
    if (strncmp(text, "unix:", 5) != 0 || !text[5] || strlen(text + 5) >= sizeof(out->path))
        return error_fmt(err, -EINVAL,
                         "migration address '%s': expected unix:PATH or tcp:HOST:PORT", text);
    out->kind = MIG_ADDR_UNIX;
    strcpy(out->path, text + 5);
    return 0;
}
int mig_addr_resolve(const char *text, struct mig_addr *out, struct error *err)
{
    return mig_addr_parse(text, out, err);
}
static void fill(struct sockaddr_un *sa, const struct mig_addr *a)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    strcpy(sa->sun_path, a->path);
}
int mig_listen(const struct mig_addr *a, struct error *err)
{
    struct sockaddr_un sa;
    fill(&sa, a);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    unlink(a->path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return error_fmt(err, -e, "%s: %s", a->text, strerror(e));
    }
    return fd;
}
int mig_accept(int listen_fd, int timeout_ms, struct error *err)
{
    struct pollfd p = {.fd = listen_fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0)
        return error_fmt(err, -ETIMEDOUT, "no sender connected");
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    return fd < 0 ? error_fmt(err, -errno, "accept: %s", strerror(errno)) : fd;
}
int mig_connect(const struct mig_addr *a, int timeout_ms, struct error *err)
{
    (void)timeout_ms;
    struct sockaddr_un sa;
    fill(&sa, a);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return error_fmt(err, -e, "%s: %s", a->text, strerror(e));
    }
    return fd;
}
int mig_link_open(struct mig_link **out, int fd, bool initiator, const uint8_t *psk, int timeout_ms,
                  struct error *err)
{
    (void)initiator;
    (void)psk;
    struct mig_link *l = calloc(1, sizeof(*l));
    if (!l)
        return error_fmt(err, -ENOMEM, "out of memory");
    l->fd = fd;
    l->timeout_ms = timeout_ms;
    *out = l;
    return 0;
}
int mig_link_send(struct mig_link *l, const void *buf, size_t len, struct error *err)
{
    const char *p = buf;
    while (len) {
        if (l->cancelled)
            return error_fmt(err, -ECANCELED, "cancelled");
        ssize_t n = send(l->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return error_fmt(err, l->cancelled ? -ECANCELED : -EPIPE,
                             "the peer closed the connection");
        p += n;
        len -= (size_t)n;
        l->sent += (uint64_t)n;
    }
    return 0;
}
int mig_link_flush(struct mig_link *l, struct error *err)
{
    (void)l;
    (void)err;
    return 0;
}
int mig_link_recv(struct mig_link *l, void *buf, size_t len, struct error *err)
{
    char *p = buf;
    while (len) {
        struct pollfd pf = {.fd = l->fd, .events = POLLIN};
        int pr = poll(&pf, 1, l->timeout_ms);
        if (l->cancelled)
            return error_fmt(err, -ECANCELED, "cancelled");
        if (pr == 0)
            return error_fmt(err, -ETIMEDOUT, "the peer sent nothing for %d ms", l->timeout_ms);
        ssize_t n = recv(l->fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return error_fmt(err, -EPIPE, "the peer closed the connection");
        p += n;
        len -= (size_t)n;
        l->received += (uint64_t)n;
    }
    return 0;
}
bool mig_link_readable(struct mig_link *l)
{
    struct pollfd pf = {.fd = l->fd, .events = POLLIN};
    return poll(&pf, 1, 0) > 0;
}
void mig_link_cancel(struct mig_link *l)
{
    l->cancelled = true;
    shutdown(l->fd, SHUT_RDWR);
}
uint64_t mig_link_bytes_sent(const struct mig_link *l)
{
    return l->sent;
}
uint64_t mig_link_bytes_received(const struct mig_link *l)
{
    return l->received;
}
void mig_link_close(struct mig_link *l)
{
    if (!l)
        return;
    close(l->fd);
    free(l);
}
int mig_psk_load(const char *path, uint8_t key[MIG_PSK_SIZE], struct error *err)
{
    (void)key;
    return error_fmt(err, -ENOTSUP, "%s: keys need the miglink branch", path);
}
int mig_psk_parse(const char *hex, uint8_t key[MIG_PSK_SIZE], struct error *err)
{
    (void)key;
    (void)hex;
    return error_fmt(err, -ENOTSUP, "keys need the miglink branch");
}
