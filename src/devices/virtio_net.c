/* virtio-net: frames from the TAP into the guest's receive buffers (merged across buffers with
 * MRG_RXBUF; held, never dropped, while the guest has none), and transmit chains out to the
 * TAP. The 12-byte virtio_net_hdr_v1 passes through unchanged: the TAP uses the same one. */
#include <errno.h>
#include <linux/if_tun.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kiln/devices/virtio_net.h"

#define NET_QUEUE_SIZE 256
#define NET_HDR_SIZE   sizeof(struct virtio_net_hdr_v1)
/* The largest frame the TAP hands us, header included: a 64 KiB TSO frame, or any MTU
 * the host may set on the TAP. */
#define NET_MAX_PACKET (NET_HDR_SIZE + 68 * 1024)

struct virtio_net {
    int fd;
    uv_loop_t *loop;
    const struct log *log;
    struct virtio_mmio *transport;
    uv_poll_t poll;
    bool poll_initialised;
    bool rx_polling;
    struct virtio_net_config config;
    bool packet_pending; /* packet[] holds a frame no receive buffer has taken yet */
    size_t packet_len;
    struct virtio_net_stats stats;
    struct virtq_chain chain;
    uint16_t rx_heads[VIRTQ_MAX_SIZE];
    uint32_t rx_lens[VIRTQ_MAX_SIZE];
    uint8_t packet[NET_MAX_PACKET];
};

static bool queue_live(struct virtio_mmio *t, unsigned q)
{
    return (t->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
           !(t->status & (VIRTIO_CONFIG_S_FAILED | VIRTIO_CONFIG_S_NEEDS_RESET)) &&
           t->queues[q].ready;
}

static void on_fd_event(uv_poll_t *handle, int status, int events);

/* Loop thread only: uv_poll_* are not thread-safe. */
static void set_rx_polling(struct virtio_net *net, bool on)
{
    if (!net->poll_initialised || net->rx_polling == on)
        return;
    net->rx_polling = on;
    if (on)
        uv_poll_start(&net->poll, UV_READABLE, on_fd_event);
    else
        uv_poll_stop(&net->poll);
}

/* Copies len bytes of src into the chain's device-writable buffers; returns bytes copied. */
static uint32_t copy_into_chain(const struct virtq_chain *chain, const uint8_t *src, size_t len)
{
    size_t done = 0;
    for (unsigned i = chain->nreadable; i < chain->nreadable + chain->nwritable && done < len;
         i++) {
        size_t n = chain->iov[i].iov_len < len - done ? chain->iov[i].iov_len : len - done;
        memcpy(chain->iov[i].iov_base, src + done, n);
        done += n;
    }
    return (uint32_t)done;
}

/* Where byte k of the chain's device-writable bytes lives, or NULL past their end. */
static uint8_t *chain_byte(const struct virtq_chain *chain, size_t k)
{
    for (unsigned i = chain->nreadable; i < chain->nreadable + chain->nwritable; i++) {
        if (k < chain->iov[i].iov_len)
            return (uint8_t *)chain->iov[i].iov_base + k;
        k -= chain->iov[i].iov_len;
    }
    return NULL;
}

/* Hands the pending frame to the guest: pops receive chains and copies the frame into them as
 * it goes (a buffer the device holds may be written before it is used). Returns 1 delivered
 * (or dropped as undeliverable), 0 when the guest has not given enough buffers yet (all put
 * back: the frame waits), -1 when the queue is unusable (DEVICE_NEEDS_RESET set). */
static int deliver_packet(struct virtio_mmio *t, struct virtio_net *net)
{
    struct virtqueue *vq = &t->queues[VIRTIO_NET_QUEUE_RX];
    bool mergeable = virtio_mmio_feature(t, VIRTIO_NET_F_MRG_RXBUF);
    uint8_t *num_buffers[2] = {NULL, NULL};
    size_t offset = 0;
    uint16_t count = 0;
    const char *why = NULL;
    while (offset < net->packet_len) {
        enum virtq_pop_result r = virtqueue_pop(vq, &net->chain, &why);
        if (r == VIRTQ_POP_EMPTY) {
            if (virtio_mmio_wake_queue(t, VIRTIO_NET_QUEUE_RX)) {
                virtqueue_quiet(vq); /* buffers came while we asked for a kick: take them */
                continue;
            }
            /* The kick we asked for (wake, at the first slot we have not seen) brings us back;
             * the chains taken so far are served again then. */
            virtqueue_unpop(vq, count);
            return 0;
        }
        if (r != VIRTQ_POP_CHAIN || net->chain.nwritable == 0) {
            /* A receive buffer we cannot write into leaves no sane way to go on. */
            virtio_mmio_needs_reset(t, why ? why : "receive buffer is not device-writable");
            return -1;
        }
        bool last_allowed = !mergeable || count + 1 == VIRTQ_MAX_SIZE;
        if (last_allowed && net->chain.writable_len < net->packet_len - offset) {
            virtqueue_unpop(vq, (uint16_t)(count + 1)); /* may fit a smaller frame later */
            virtio_mmio_log_once(t, "receive buffers too small for a %zu-byte frame; dropped",
                                 net->packet_len - NET_HDR_SIZE);
            net->stats.rx_dropped++;
            return 1;
        }
        uint32_t n = copy_into_chain(&net->chain, net->packet + offset, net->packet_len - offset);
        if (count == 0) {
            num_buffers[0] =
                chain_byte(&net->chain, offsetof(struct virtio_net_hdr_v1, num_buffers));
            num_buffers[1] =
                chain_byte(&net->chain, offsetof(struct virtio_net_hdr_v1, num_buffers) + 1);
            if (!num_buffers[0] || !num_buffers[1]) {
                virtio_mmio_needs_reset(t, "receive buffer shorter than the virtio-net header");
                return -1;
            }
        }
        net->rx_heads[count] = net->chain.head;
        net->rx_lens[count] = n;
        offset += n;
        count++;
    }
    /* Only now is num_buffers known; it sits in the first buffer's copy of the header. */
    num_buffers[0][0] = (uint8_t)count;
    num_buffers[1][0] = (uint8_t)(count >> 8);
    for (uint16_t i = 0; i < count; i++)
        virtqueue_push(vq, net->rx_heads[i], net->rx_lens[i]);
    net->stats.rx_frames++;
    return 1;
}

/* Reads frames from the fd and delivers them until the fd is empty or the guest runs out of
 * buffers; then polling stops until the guest adds some (its RX kick). The guest need not
 * kick for new buffers while we have some: the queue stays quiet until we run out. Lock held. */
static void receive(struct virtio_mmio *t, struct virtio_net *net)
{
    struct virtqueue *vq = &t->queues[VIRTIO_NET_QUEUE_RX];
    bool delivered = false;
    for (;;) {
        if (!queue_live(t, VIRTIO_NET_QUEUE_RX)) {
            set_rx_polling(net, false); /* resumes when the driver kicks the RX queue */
            break;
        }
        virtqueue_quiet(vq);
        if (!net->packet_pending) {
            ssize_t n = read(net->fd, net->packet, sizeof(net->packet));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                if (errno != EAGAIN)
                    virtio_mmio_log_once(t, "reading the TAP failed: %s", strerror(errno));
                set_rx_polling(net, true);
                break;
            }
            if ((size_t)n <= NET_HDR_SIZE)
                continue;
            net->packet_len = (size_t)n;
            net->packet_pending = true;
        }
        int r = deliver_packet(t, net);
        if (r <= 0) {
            set_rx_polling(net, false);
            break;
        }
        net->packet_pending = false;
        delivered = true;
    }
    if (delivered)
        virtio_mmio_notify_used(t, VIRTIO_NET_QUEUE_RX);
}

static void transmit_available(struct virtio_mmio *t, struct virtio_net *net)
{
    struct virtqueue *vq = &t->queues[VIRTIO_NET_QUEUE_TX];
    while (virtio_mmio_pop(t, VIRTIO_NET_QUEUE_TX, &net->chain, &net->stats.tx_dropped)) {
        if (net->chain.nwritable || net->chain.readable_len <= NET_HDR_SIZE) {
            virtio_mmio_log_once(t, "bad transmit chain: device-writable or no frame after the "
                                    "header");
            net->stats.tx_dropped++;
        } else if (writev(net->fd, net->chain.iov, net->chain.nreadable) < 0) {
            /* A full TAP queue drops the frame, as a NIC would; TCP retransmits. */
            if (errno != EAGAIN && errno != ENOBUFS)
                virtio_mmio_log_once(t, "writing to the TAP failed: %s", strerror(errno));
            net->stats.tx_dropped++;
        } else {
            net->stats.tx_frames++;
        }
        virtqueue_push(vq, net->chain.head, 0);
    }
    virtio_mmio_notify_used(t, VIRTIO_NET_QUEUE_TX);
}

static void transmit(struct virtio_mmio *t, struct virtio_net *net)
{
    struct virtqueue *vq = &t->queues[VIRTIO_NET_QUEUE_TX];
    /* No doorbells while we drain: a guest sending fast adds frames without an exit each. */
    do {
        virtqueue_quiet(vq);
        transmit_available(t, net);
    } while (virtio_mmio_wake_queue(t, VIRTIO_NET_QUEUE_TX));
}

static void net_queue_notify(struct virtio_mmio *t, unsigned q)
{
    struct virtio_net *net = virtio_mmio_device(t);
    if (q == VIRTIO_NET_QUEUE_TX)
        transmit(t, net);
    else
        receive(t, net); /* new buffers: deliver what waits, and watch the TAP again */
}

static void on_fd_event(uv_poll_t *handle, int status, int events)
{
    struct virtio_net *net = handle->data;
    virtio_mmio_lock(net->transport);
    receive(net->transport, net);
    virtio_mmio_unlock(net->transport);
}

static void net_config_read(struct virtio_mmio *t, uint32_t offset, uint8_t *data, unsigned size)
{
    struct virtio_net *net = virtio_mmio_device(t);
    virtio_mmio_config_copy(&net->config, sizeof(net->config), offset, data, size);
}

static void net_config_write(struct virtio_mmio *t, uint32_t offset, const uint8_t *data,
                             unsigned size)
{
    virtio_mmio_log_once(t, "write to read-only config field at offset %u", offset);
}

unsigned virtio_net_tap_offloads(uint64_t features)
{
    unsigned flags = 0;
    if (features & (1ULL << VIRTIO_NET_F_GUEST_CSUM)) {
        flags |= TUN_F_CSUM;
        if (features & (1ULL << VIRTIO_NET_F_GUEST_TSO4))
            flags |= TUN_F_TSO4;
        if (features & (1ULL << VIRTIO_NET_F_GUEST_TSO6))
            flags |= TUN_F_TSO6;
    }
    return flags;
}

/* The TAP hands us checksum-less or segmentation-offloaded frames only if the guest accepted
 * them. (What the guest sends, CSUM and HOST_TSO*, the TAP always takes: the header describes
 * it.) */
static void set_tap_offloads(struct virtio_mmio *t, struct virtio_net *net)
{
    unsigned flags = virtio_net_tap_offloads(t->driver_features);
    /* Not a TAP (unit tests' socketpair): nothing to tell it. */
    if (ioctl(net->fd, TUNSETOFFLOAD, flags) < 0 && errno != ENOTTY && errno != EINVAL)
        virtio_mmio_log_once(t, "TUNSETOFFLOAD 0x%x failed: %s", flags, strerror(errno));
}

static void net_activate(struct virtio_mmio *t)
{
    set_tap_offloads(t, virtio_mmio_device(t));
}

static void net_reset(struct virtio_mmio *t)
{
    struct virtio_net *net = virtio_mmio_device(t);
    if (ioctl(net->fd, TUNSETOFFLOAD, 0) < 0 && errno != ENOTTY && errno != EINVAL)
        virtio_mmio_log_once(t, "TUNSETOFFLOAD 0 failed: %s", strerror(errno));
}

static const struct virtio_device_ops virtio_net_ops = {
    .config_read = net_config_read,
    .config_write = net_config_write,
    .activate = net_activate,
    .queue_notify = net_queue_notify,
    .reset = net_reset,
};

int virtio_net_create(struct virtio_net **out, int fd, const uint8_t mac[6], uv_loop_t *loop,
                      const struct log *log, struct error *err)
{
    struct virtio_net *net = calloc(1, sizeof(*net));
    if (!net) {
        close(fd);
        return error_fmt(err, -ENOMEM, "--net: out of memory");
    }
    net->fd = fd;
    net->loop = loop;
    net->log = log;
    memcpy(net->config.mac, mac, 6);
    net->config.status = VIRTIO_NET_S_LINK_UP;
    net->config.max_virtqueue_pairs = 1;
    net->config.mtu = VIRTIO_NET_MTU;
    *out = net;
    return 0;
}

void virtio_net_device_info(struct virtio_net *net, struct virtio_device_info *info)
{
    memset(info, 0, sizeof(*info));
    info->name = "virtio-net";
    info->device_id = VIRTIO_ID_NET;
    info->features = (1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_STATUS) |
                     (1ULL << VIRTIO_NET_F_MTU) | (1ULL << VIRTIO_NET_F_MRG_RXBUF) |
                     (1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_GUEST_CSUM) |
                     (1ULL << VIRTIO_NET_F_HOST_TSO4) | (1ULL << VIRTIO_NET_F_HOST_TSO6) |
                     (1ULL << VIRTIO_NET_F_GUEST_TSO4) | (1ULL << VIRTIO_NET_F_GUEST_TSO6);
    info->num_queues = 2;
    info->queue_max_size = NET_QUEUE_SIZE;
    info->config_size = sizeof(net->config);
    info->ops = &virtio_net_ops;
    info->opaque = net;
}

void virtio_net_bind(struct virtio_net *net, struct virtio_mmio *transport)
{
    net->transport = transport;
}

int virtio_net_attach(struct virtio_net *net, struct error *err)
{
    int r = uv_poll_init(net->loop, &net->poll, net->fd);
    if (r < 0)
        return error_fmt(err, r, "--net: cannot watch the TAP: %s", uv_strerror(r));
    net->poll.data = net;
    net->poll_initialised = true;
    /* Nothing is read until the driver has receive buffers: its RX kick starts polling. */
    return 0;
}

void virtio_net_detach(struct virtio_net *net)
{
    if (net->poll_initialised)
        uv_close((uv_handle_t *)&net->poll, NULL);
    net->poll_initialised = false;
    net->rx_polling = false;
}

void virtio_net_destroy(struct virtio_net *net)
{
    if (!net)
        return;
    if (net->fd >= 0)
        close(net->fd);
    free(net);
}

void virtio_net_stats(const struct virtio_net *net, struct virtio_net_stats *stats)
{
    *stats = net->stats;
}
