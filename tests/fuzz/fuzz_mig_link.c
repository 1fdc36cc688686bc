/* libFuzzer target for the migration link: any bytes as everything a peer sends; the handshake
 * and every recv must end in one error line, never a crash, hang or leak. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kiln/migrate/mig_link.h"

/* Enough for a hello and a frame of every size. */
#define MAX_PEER_BYTES (96 * 1024)

static const uint8_t KEY[MIG_PSK_SIZE] = {42};

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void check_line(const struct error *err)
{
    check(err->msg[0] != '\0' && strchr(err->msg, '\n') == NULL);
}

/* The input's first byte: bit 0, the link has a key; bit 1, it is the sender. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > MAX_PEER_BYTES + 1)
        return 0;
    bool keyed = data[0] & 1, initiator = data[0] & 2;
    int fds[2];
    /* Non-blocking: what does not fit the socket's buffer is left out rather than waited on. */
    check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) == 0);
    size_t written = 0;
    while (written < size - 1) {
        ssize_t n = write(fds[0], data + 1 + written, size - 1 - written);
        if (n <= 0)
            break;
        written += (size_t)n;
    }
    shutdown(fds[0], SHUT_WR); /* the peer has said all it will: no wait can last */

    struct mig_link *link = NULL;
    struct error err = {0};
    int r = mig_link_open(&link, fds[1], initiator, keyed ? KEY : NULL, 1000, &err);
    if (r < 0) {
        check(link == NULL && r != -ETIMEDOUT);
        check_line(&err);
        close(fds[1]);
    } else {
        uint8_t buf[3000];
        size_t piece = 1;
        while ((r = mig_link_recv(link, buf, piece, &err)) == 0)
            piece = piece * 7 % sizeof(buf) + 1;
        check(r == -EPIPE || r == -EBADMSG);
        check_line(&err);
        struct error again = {0};
        check(mig_link_recv(link, buf, 1, &again) == r && strcmp(again.msg, err.msg) == 0);
        mig_link_close(link);
    }
    close(fds[0]);
    return 0;
}
