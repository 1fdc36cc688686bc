/* net.elf: the first virtio-net device (virtio_mmio.device= on the command line) sends an ARP
 * request for net.peer=IP from net.ip=IP and waits for the reply, which proves transmit and
 * receive both work; prints the peer's MAC. The host side answers (a TAP with that address). */
#include "runtime/guest.h"
#include "runtime/virtio.h"

#define F_MAC       (1ULL << 5)
#define HDR_SIZE    12 /* struct virtio_net_hdr_v1 */
#define RX_BUFFERS  8
#define RX_BUF_SIZE 2048
#define ETH_ARP     0x0806
#define ARP_REQUEST 1
#define ARP_REPLY   2

static struct virtq rxq, txq;
static struct virtio_dev dev;
static uint8_t rx_buf[RX_BUFFERS][RX_BUF_SIZE];
static uint8_t tx_buf[HDR_SIZE + 64];
static uint8_t mac[6];

static int parse_ip(const char *key, uint8_t ip[4])
{
    const char *v = cmdline_get(key);
    if (!v)
        return -1;
    for (int i = 0; i < 4; i++) {
        unsigned n = 0, digits = 0;
        while (*v >= '0' && *v <= '9' && digits < 3) {
            n = n * 10 + (unsigned)(*v++ - '0');
            digits++;
        }
        if (!digits || n > 255 || (i < 3 && *v++ != '.'))
            return -1;
        ip[i] = (uint8_t)n;
    }
    return 0;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void post_rx(unsigned i)
{
    rxq.desc[i] = (struct vq_desc){(uint64_t)(uintptr_t)rx_buf[i], RX_BUF_SIZE, VQ_DESC_WRITE, 0};
    virtio_submit(&dev, &rxq, (uint16_t)i);
}

static int send_arp_request(const uint8_t ip[4], const uint8_t peer[4])
{
    uint8_t *f = tx_buf + HDR_SIZE;
    memset(tx_buf, 0, sizeof(tx_buf));
    memset(f, 0xff, 6); /* broadcast */
    memcpy(f + 6, mac, 6);
    put16(f + 12, ETH_ARP);
    put16(f + 14, 1);      /* Ethernet */
    put16(f + 16, 0x0800); /* IPv4 */
    f[18] = 6;
    f[19] = 4;
    put16(f + 20, ARP_REQUEST);
    memcpy(f + 22, mac, 6);
    memcpy(f + 28, ip, 4);
    memcpy(f + 38, peer, 4);
    txq.desc[0] = (struct vq_desc){(uint64_t)(uintptr_t)tx_buf, HDR_SIZE + 42, 0, 0};
    return virtio_submit_and_wait(&dev, &txq, 0) < 0 ? -1 : 0;
}

int guest_main(void)
{
    uint8_t ip[4], peer[4];
    if (parse_ip("net.ip", ip) < 0 || parse_ip("net.peer", peer) < 0) {
        puts("net: FAIL: needs net.ip=A.B.C.D and net.peer=A.B.C.D");
        return GUEST_EXIT_FAIL;
    }
    if (virtio_find(1, 0, &dev) < 0 || virtio_setup(&dev, F_MAC, &rxq) < 0 ||
        virtio_setup_queue(&dev, 1, &txq) < 0) {
        puts("net: FAIL: no usable virtio-net device");
        return GUEST_EXIT_FAIL;
    }
    for (int i = 0; i < 6; i++)
        mac[i] = virtio_config_read8(&dev, (uint32_t)i);
    virtio_driver_ok(&dev);
    printf("net: mac %02x:%02x:%02x:%02x:%02x:%02x\n", mac[0], mac[1], mac[2], mac[3], mac[4],
           mac[5]);
    for (unsigned i = 0; i < RX_BUFFERS && i < rxq.size; i++)
        post_rx(i);
    if (send_arp_request(ip, peer) < 0)
        return GUEST_EXIT_FAIL;
    uint64_t start = rdtsc();
    unsigned frames = 0;
    while (rdtsc() - start < 50000000000ULL) {
        uint32_t id, len;
        if (!virtio_poll_used(&dev, &rxq, &id, &len))
            continue;
        frames++;
        const uint8_t *f = rx_buf[id % RX_BUFFERS] + HDR_SIZE;
        int reply = len >= HDR_SIZE + 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == ARP_REPLY &&
                    memcmp(f + 28, peer, 4) == 0 && memcmp(f + 32, mac, 6) == 0;
        if (reply) {
            printf("net: ARP reply from %u.%u.%u.%u: %02x:%02x:%02x:%02x:%02x:%02x (%u frames)\n",
                   peer[0], peer[1], peer[2], peer[3], f[22], f[23], f[24], f[25], f[26], f[27],
                   frames);
            return GUEST_EXIT_PASS;
        }
        post_rx(id % RX_BUFFERS); /* something else (IPv6 noise): give the buffer back */
    }
    printf("net: FAIL: no ARP reply (%u other frames)\n", frames);
    return GUEST_EXIT_FAIL;
}
