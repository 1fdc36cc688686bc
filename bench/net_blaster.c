/* net-blaster: bench/net's frame source for the RX phases. Sends COUNT Ethernet frames of SIZE
 * bytes out of a TAP (AF_PACKET, sendmmsg batches), then end frames every millisecond. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ETH_BENCH_DATA 0x88b5 /* the same ethertypes as tests/guest/net_bench.c */
#define ETH_BENCH_END  0x88b6
#define BATCH          64
#define END_SECONDS    60

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void build_frame(uint8_t *f, size_t size, uint16_t ethertype, uint8_t phase)
{
    memset(f, 0, size);
    memset(f, 0xff, 6); /* broadcast: the guest takes everything anyway */
    f[6] = 0x02;        /* locally administered source */
    f[11] = 0x02;
    f[12] = (uint8_t)(ethertype >> 8);
    f[13] = (uint8_t)ethertype;
    f[14] = phase;
}

/* Sends count copies of frame; returns how many the socket took. */
static unsigned long blast(int fd, uint8_t *frame, size_t size, unsigned long count)
{
    struct iovec iov = {frame, size};
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof(msgs));
    for (int i = 0; i < BATCH; i++) {
        msgs[i].msg_hdr.msg_iov = &iov;
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned long sent = 0, failures = 0;
    while (sent < count && failures < 1000000) {
        unsigned n = count - sent < BATCH ? (unsigned)(count - sent) : BATCH;
        int r = sendmmsg(fd, msgs, n, 0);
        if (r > 0) {
            sent += (unsigned long)r;
        } else if (r < 0 && errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
            perror("net-blaster: sendmmsg");
            exit(1);
        } else {
            failures++; /* a full queue: try again */
        }
    }
    return sent;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: net-blaster IFNAME COUNT SIZE PHASE\n");
        return 2;
    }
    unsigned long count = strtoul(argv[2], NULL, 0);
    size_t size = strtoul(argv[3], NULL, 0);
    uint8_t phase = (uint8_t)strtoul(argv[4], NULL, 0);
    if (size < 60 || size > 1514) {
        fprintf(stderr, "net-blaster: SIZE must be 60..1514\n");
        return 2;
    }
    int fd = socket(AF_PACKET, SOCK_RAW, 0); /* protocol 0: send only, receive nothing */
    if (fd < 0) {
        perror("net-blaster: socket(AF_PACKET)");
        return 1;
    }
    struct sockaddr_ll addr = {.sll_family = AF_PACKET,
                               .sll_ifindex = (int)if_nametoindex(argv[1])};
    if (addr.sll_ifindex == 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        fprintf(stderr, "net-blaster: cannot bind to %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    int sndbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));

    static uint8_t frame[1514];
    build_frame(frame, size, ETH_BENCH_DATA, phase);
    double start = now();
    unsigned long sent = blast(fd, frame, size, count);
    printf("sent %lu %.6f\n", sent, now() - start);
    fflush(stdout);

    /* Until the host kills us: end frames, in case the guest's queue dropped some. */
    build_frame(frame, size, ETH_BENCH_END, phase);
    for (int i = 0; i < END_SECONDS * 1000; i++) {
        if (send(fd, frame, 60, 0) < 0 && errno != ENOBUFS && errno != EAGAIN) {
            perror("net-blaster: send");
            return 1;
        }
        usleep(1000);
    }
    return 0;
}
