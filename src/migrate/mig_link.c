/* The migration link's data path: bytes queued into frames of up to 64 KiB (each one
 * authenticated message on a keyed link), read back exactly, with sticky errors and a cancel. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mig_link_private.h"

/* Records the link's first error: every later call returns it with the same line. */
static int fail(struct mig_link *l, int code, struct error *err)
{
    if (code == -ECANCELED)
        error_fmt(&l->failure_msg, code, "migration: cancelled");
    else if (code == -EPIPE)
        error_fmt(&l->failure_msg, code, "migration: the peer closed the connection");
    else if (code == -EBADMSG)
        error_fmt(&l->failure_msg, code, "migration: the stream was altered or corrupted");
    else if (code == -ETIMEDOUT)
        error_fmt(&l->failure_msg, code, "migration: the peer stalled for %d ms", l->timeout_ms);
    else
        error_fmt(&l->failure_msg, code, "migration: %s", strerror(-code));
    l->failure = code;
    return error_fmt(err, code, "%s", l->failure_msg.msg);
}

/* The first error again, or -ECANCELED once cancelled: 0 when the link may go on. */
static int check(struct mig_link *l, struct error *err)
{
    if (l->failure)
        return error_fmt(err, l->failure, "%s", l->failure_msg.msg);
    if (__atomic_load_n(&l->cancelled, __ATOMIC_SEQ_CST))
        return fail(l, -ECANCELED, err);
    return 0;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int mig_frame_send(struct mig_link *l)
{
    size_t body_len = l->out_len;
    if (l->keyed) {
        unsigned long long sealed_len = 0;
        crypto_secretstream_xchacha20poly1305_push(
            &l->tx, l->out_frame + MIG_FRAME_HEADER, &sealed_len, l->out_data, l->out_len, NULL, 0,
            crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
        body_len = (size_t)sealed_len;
    }
    put_le32(l->out_frame, (uint32_t)body_len);
    l->out_len = 0;
    return mig_io_write(l, l->out_frame, MIG_FRAME_HEADER + body_len);
}

int mig_frame_recv(struct mig_link *l)
{
    uint8_t header[MIG_FRAME_HEADER];
    int r = mig_io_read(l, header, sizeof(header));
    if (r < 0)
        return r;
    uint32_t body_len = get_le32(header);
    size_t least = l->keyed ? MIG_TAG_SIZE + 1 : 1;
    size_t most = l->keyed ? MIG_BODY_MAX : MIG_CHUNK_SIZE;
    if (body_len < least || body_len > most)
        return -EBADMSG;
    r = mig_io_read(l, l->in_frame, body_len);
    if (r < 0)
        return r;
    l->in_pos = 0;
    if (!l->keyed) {
        l->in_len = body_len;
        return 0;
    }
    unsigned long long opened_len = 0;
    unsigned char tag = 0;
    if (crypto_secretstream_xchacha20poly1305_pull(&l->rx, l->in_data, &opened_len, &tag,
                                                   l->in_frame, body_len, NULL, 0) != 0 ||
        tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
        return -EBADMSG;
    l->in_len = (size_t)opened_len;
    return 0;
}

static void free_link(struct mig_link *l)
{
    if (l->keyed) {
        sodium_memzero(&l->tx, sizeof(l->tx));
        sodium_memzero(&l->rx, sizeof(l->rx));
        free(l->out_data);
        free(l->in_data);
    }
    free(l->out_frame);
    free(l->in_frame);
    free(l);
}

int mig_link_prepare(struct error *err)
{
    if (sodium_init() < 0)
        return error_fmt(err, -EIO, "migration: libsodium failed to initialise");
    return 0;
}

int mig_link_open(struct mig_link **out, int fd, bool initiator, const uint8_t *psk, int timeout_ms,
                  struct error *err)
{
    *out = NULL;
    if (sodium_init() < 0)
        return error_fmt(err, -EIO, "migration: libsodium failed to initialise");
    struct mig_link *l = calloc(1, sizeof(*l));
    if (!l)
        return error_fmt(err, -ENOMEM, "migration: out of memory");
    l->fd = fd;
    l->keyed = psk != NULL;
    l->timeout_ms = timeout_ms;
    l->out_frame = malloc(MIG_FRAME_HEADER + MIG_BODY_MAX);
    l->in_frame = malloc(MIG_BODY_MAX);
    l->out_data = l->keyed ? malloc(MIG_CHUNK_SIZE) : l->out_frame + MIG_FRAME_HEADER;
    l->in_data = l->keyed ? malloc(MIG_CHUNK_SIZE) : l->in_frame;
    if (!l->out_frame || !l->in_frame || !l->out_data || !l->in_data) {
        free_link(l);
        return error_fmt(err, -ENOMEM, "migration: out of memory");
    }
    int r = mig_handshake(l, initiator, psk, err);
    if (r < 0) {
        free_link(l);
        return r;
    }
    *out = l;
    return 0;
}

int mig_link_send(struct mig_link *l, const void *buf, size_t len, struct error *err)
{
    int r = check(l, err);
    if (r < 0)
        return r;
    const uint8_t *p = buf;
    while (len > 0) {
        size_t n = MIG_CHUNK_SIZE - l->out_len;
        if (n > len)
            n = len;
        memcpy(l->out_data + l->out_len, p, n);
        l->out_len += n;
        p += n;
        len -= n;
        if (l->out_len == MIG_CHUNK_SIZE) {
            r = mig_frame_send(l);
            if (r < 0)
                return fail(l, r, err);
        }
    }
    return 0;
}

int mig_link_flush(struct mig_link *l, struct error *err)
{
    int r = check(l, err);
    if (r < 0 || l->out_len == 0)
        return r;
    r = mig_frame_send(l);
    return r < 0 ? fail(l, r, err) : 0;
}

int mig_link_recv(struct mig_link *l, void *buf, size_t len, struct error *err)
{
    int r = check(l, err);
    if (r < 0)
        return r;
    uint8_t *p = buf;
    while (len > 0) {
        if (l->in_pos == l->in_len) {
            r = mig_frame_recv(l);
            if (r < 0)
                return fail(l, r, err);
        }
        size_t n = l->in_len - l->in_pos;
        if (n > len)
            n = len;
        memcpy(p, l->in_data + l->in_pos, n);
        l->in_pos += n;
        p += n;
        len -= n;
    }
    return 0;
}

bool mig_link_readable(struct mig_link *l)
{
    if (l->in_pos < l->in_len)
        return true;
    struct pollfd p = {.fd = l->fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

void mig_link_cancel(struct mig_link *l)
{
    __atomic_store_n(&l->cancelled, true, __ATOMIC_SEQ_CST);
    shutdown(l->fd, SHUT_RDWR);
}

uint64_t mig_link_bytes_sent(const struct mig_link *l)
{
    return __atomic_load_n(&l->bytes_sent, __ATOMIC_RELAXED);
}

uint64_t mig_link_bytes_received(const struct mig_link *l)
{
    return __atomic_load_n(&l->bytes_received, __ATOMIC_RELAXED);
}

void mig_link_close(struct mig_link *l)
{
    if (!l)
        return;
    close(l->fd);
    free_link(l);
}
