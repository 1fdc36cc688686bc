/* The live-migration protocol's records: framing, the bounds each type's length must keep, and
 * the ERROR record, so that a corrupt or hostile stream ends in one line, never a big alloc. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/migrate/mig_proto.h"

#define HEADER_SIZE 16u

static const char *const names[MIG_REC_TYPES] = {
    [MIG_REC_CONFIG] = "CONFIG",   [MIG_REC_READY] = "READY",   [MIG_REC_ERROR] = "ERROR",
    [MIG_REC_PAGES] = "PAGES",     [MIG_REC_ZERO] = "ZERO",     [MIG_REC_ROUND] = "ROUND",
    [MIG_REC_STATE] = "STATE",     [MIG_REC_LOADED] = "LOADED", [MIG_REC_GO] = "GO",
    [MIG_REC_RUNNING] = "RUNNING", [MIG_REC_CANCEL] = "CANCEL",
};

const char *mig_record_name(uint32_t type)
{
    return type > 0 && type < MIG_REC_TYPES ? names[type] : "unknown";
}

void mig_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void mig_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint32_t mig_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

uint64_t mig_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

bool mig_pages_in_range(uint64_t first, uint64_t count, uint64_t total)
{
    return count > 0 && first < total && count <= total - first;
}

int mig_send(struct mig_link *link, uint32_t type, const void *head, size_t head_len,
             const void *body, size_t body_len, struct error *err)
{
    uint8_t header[HEADER_SIZE] = {0};
    mig_put_u32(header, type);
    mig_put_u64(header + 8, (uint64_t)head_len + body_len);
    int r = mig_link_send(link, header, sizeof(header), err);
    if (r == 0 && head_len)
        r = mig_link_send(link, head, head_len, err);
    if (r == 0 && body_len)
        r = mig_link_send(link, body, body_len, err);
    return r;
}

int mig_send_error(struct mig_link *link, const char *text, struct error *err)
{
    size_t len = strnlen(text, MIG_MAX_MESSAGE_SIZE);
    int r = mig_send(link, MIG_REC_ERROR, text, len, NULL, 0, err);
    return r == 0 ? mig_link_flush(link, err) : r;
}

/* Whether a body of length bytes is one a record of this type may have. */
static bool length_fits(uint32_t type, uint64_t length)
{
    switch (type) {
    case MIG_REC_CONFIG:
        return length > 0 && length <= MIG_MAX_CONFIG_SIZE;
    case MIG_REC_ERROR:
        return length <= MIG_MAX_MESSAGE_SIZE;
    case MIG_REC_PAGES:
        return length > 8 && (length - 8) % MIG_PAGE_SIZE == 0 &&
               (length - 8) / MIG_PAGE_SIZE <= MIG_MAX_RUN_PAGES;
    case MIG_REC_ZERO:
        return length == 16;
    case MIG_REC_ROUND:
    case MIG_REC_GO:
        return length == 4;
    case MIG_REC_STATE:
        return length > 0 && length <= MIG_MAX_STATE_SIZE;
    default: /* READY, LOADED, RUNNING, CANCEL */
        return length == 0;
    }
}

int mig_recv_header(struct mig_link *link, struct mig_header *h, struct error *err)
{
    uint8_t header[HEADER_SIZE];
    int r = mig_link_recv(link, header, sizeof(header), err);
    if (r < 0)
        return r;
    h->type = mig_get_u32(header);
    h->length = mig_get_u64(header + 8);
    if (h->type == 0 || h->type >= MIG_REC_TYPES || mig_get_u32(header + 4) != 0)
        return error_fmt(err, -EBADMSG,
                         "corrupt migration stream: record type %u (expected 1 to %u)", h->type,
                         MIG_REC_TYPES - 1);
    if (!length_fits(h->type, h->length))
        return error_fmt(err, -EBADMSG, "corrupt migration stream: a %s record of %llu bytes",
                         mig_record_name(h->type), (unsigned long long)h->length);
    return 0;
}

int mig_recv_error_text(struct mig_link *link, uint64_t length, char *text, size_t size,
                        struct error *err)
{
    char buf[MIG_MAX_MESSAGE_SIZE + 1];
    int r = mig_link_recv(link, buf, (size_t)length, err);
    if (r < 0)
        return r;
    buf[length] = 0;
    for (uint64_t i = 0; i < length; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            buf[i] = '?'; /* a peer's text goes into our one-line messages as is */
    snprintf(text, size, "%s", buf);
    return 0;
}

int mig_expect(struct mig_link *link, uint32_t type, const char *peer, void **body, size_t *len,
               struct error *err)
{
    *body = NULL;
    *len = 0;
    struct mig_header h;
    int r = mig_recv_header(link, &h, err);
    if (r < 0)
        return r;
    if (h.type == MIG_REC_ERROR) {
        char text[MIG_MAX_MESSAGE_SIZE + 1];
        r = mig_recv_error_text(link, h.length, text, sizeof(text), err);
        return r < 0 ? r : error_fmt(err, -ECONNABORTED, "the %s said: %s", peer, text);
    }
    if (h.type != type)
        return error_fmt(err, -EBADMSG, "corrupt migration stream: a %s record where %s was due",
                         mig_record_name(h.type), mig_record_name(type));
    if (h.length == 0)
        return 0;
    void *buf = malloc(h.length);
    if (!buf)
        return error_fmt(err, -ENOMEM, "no memory for a %s record of %llu bytes",
                         mig_record_name(type), (unsigned long long)h.length);
    r = mig_link_recv(link, buf, (size_t)h.length, err);
    if (r < 0) {
        free(buf);
        return r;
    }
    *body = buf;
    *len = (size_t)h.length;
    return 0;
}
