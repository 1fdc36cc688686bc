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

#include "kiln/util/container_of.h"
#include "kiln/util/counter.h"
#include "kiln/devices/io_throttle.h"
#include "kiln/devices/virtio_net.h"
#include "kiln/util/iov.h"

#define NET_QUEUE_SIZE 256
#define NET_HDR_SIZE   sizeof(struct virtio_net_hdr_v1)
/* The largest frame the TAP hands us, header included: a 64 KiB TSO frame, or any MTU
 * the host may set on the TAP. */
#define NET_MAX_PACKET (NET_HDR_SIZE + 68 * 1024)
/* Frames sent per TX doorbell before the loop gets a turn (the rest on a re-kick): one
 * writev each, at most 4 MiB copied into the TAP, so receive and the other devices are not
 * starved by a guest that keeps its transmit queue full. */
#define NET_TX_FRAMES_PER_CALL 64
/* After a restore or a migration the NIC announces its MAC from its new TAP, so that switches
 * learn where it is now before the guest speaks: RARP broadcasts (what QEMU sends, with its
 * default timing), the first at once, then 50, 150, 250 and 350 ms apart. */
#define NET_ANNOUNCE_FRAMES       5
#define NET_ANNOUNCE_FIRST_GAP_MS 50
#define NET_ANNOUNCE_GAP_STEP_MS  100
#define NET_MIN_FRAME             60 /* Ethernet's minimum, without the FCS */

struct virtio_net {
    struct virtio_dev vdev;
    int fd;
    uv_loop_t *loop;
    const struct log *log;
    uv_poll_t poll;
    bool poll_initialised;
    bool rx_polling;
    struct virtio_net_config config;
    bool keep_mac;        /* a restore keeps config.mac: the VM's config names it */
    bool packet_pending;  /* packet[] holds a frame no receive buffer has taken yet */
    bool packet_admitted; /* and the receive rate limit has taken its tokens */
    struct io_throttle rx_throttle, tx_throttle; /* rx-bw=, tx-bw=...: bytes and frames */
    bool announce_due;                           /* restored: announce the MAC once attached */
    unsigned announce_sent;                      /* frames of this announcement so far */
    uv_timer_t announce_timer;
    bool announce_timer_initialised;
    size_t packet_len;
    struct virtio_net_stats stats; /* kiln/util/counter.h: read from any thread */
    struct virtq_chain chain;
    uint16_t rx_heads[VIRTQ_MAX_SIZE];
    uint32_t rx_lens[VIRTQ_MAX_SIZE];
    uint8_t packet[NET_MAX_PACKET];
};

static struct virtio_net *net_of(struct virtio_dev *d)
{
    return container_of(d, struct virtio_net, vdev);
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

/* The frame could not be delivered whole and the chains taken for it cannot be put back
 * (malformed ones were given back after them): they go back unused, length 0. */
static int drop_frame(struct virtio_dev *d, struct virtio_net *net, uint16_t count)
{
    for (uint16_t i = 0; i < count; i++)
        virtio_dev_push(d, VIRTIO_NET_QUEUE_RX, net->rx_heads[i], 0);
    counter_add(&net->stats.rx_dropped, 1);
    return 1;
}

/* Hands the pending frame to the guest: pops receive chains and copies the frame into them as
 * it goes (a buffer the device holds may be written before it is used). Returns 1 delivered
 * (or dropped as undeliverable), 0 when the guest has not given enough buffers yet (all put
 * back: the frame waits), -1 when the queue is unusable (DEVICE_NEEDS_RESET set). */
static int deliver_packet(struct virtio_dev *d, struct virtio_net *net)
{
    struct virtqueue *vq = &d->queues[VIRTIO_NET_QUEUE_RX];
    bool mergeable = virtio_dev_feature(d, VIRTIO_NET_F_MRG_RXBUF);
    uint8_t *num_buffers[2] = {NULL, NULL};
    size_t offset = 0;
    uint16_t count = 0;
    while (offset < net->packet_len) {
        uint64_t malformed = 0;
        bool popped = virtio_dev_pop(d, VIRTIO_NET_QUEUE_RX, &net->chain, &malformed);
        if (malformed && count > 0) {
            if (popped)
                net->rx_heads[count++] = net->chain.head;
            return drop_frame(d, net, count);
        }
        if (!popped) {
            if (!virtio_dev_queue_live(d, VIRTIO_NET_QUEUE_RX))
                return -1;
            if (virtio_dev_wake(d, VIRTIO_NET_QUEUE_RX)) {
                virtio_dev_quiet(d, VIRTIO_NET_QUEUE_RX); /* buffers came meanwhile: take them */
                continue;
            }
            /* The kick we asked for (wake, at the first slot we have not seen) brings us back;
             * the chains taken so far are served again then. */
            virtqueue_unpop(vq, count);
            return 0;
        }
        const struct iovec *buffers = virtq_chain_writable(&net->chain);
        unsigned nbuffers = net->chain.nwritable;
        size_t field = offsetof(struct virtio_net_hdr_v1, num_buffers);
        if (count == 0 && !iov_byte(buffers, nbuffers, field + 1)) {
            virtio_dev_reject(d, VIRTIO_NET_QUEUE_RX, net->chain.head,
                              "receive buffer shorter than the virtio-net header");
            continue;
        }
        if (count > 0 && nbuffers == 0) {
            virtio_dev_reject(d, VIRTIO_NET_QUEUE_RX, net->chain.head,
                              "receive buffer is not device-writable");
            return drop_frame(d, net, count);
        }
        bool last_allowed = !mergeable || count + 1 == VIRTQ_MAX_SIZE;
        if (last_allowed && net->chain.writable_len < net->packet_len - offset) {
            virtqueue_unpop(vq, (uint16_t)(count + 1)); /* may fit a smaller frame later */
            virtio_dev_log_once(d, "receive buffers too small for a %zu-byte frame; dropped",
                                net->packet_len - NET_HDR_SIZE);
            counter_add(&net->stats.rx_dropped, 1);
            return 1;
        }
        uint32_t n = (uint32_t)iov_from_buf(buffers, nbuffers, 0, net->packet + offset,
                                            net->packet_len - offset);
        if (count == 0) {
            num_buffers[0] = iov_byte(buffers, nbuffers, field);
            num_buffers[1] = iov_byte(buffers, nbuffers, field + 1);
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
        virtio_dev_push(d, VIRTIO_NET_QUEUE_RX, net->rx_heads[i], net->rx_lens[i]);
    counter_add(&net->stats.rx_frames, 1);
    counter_add(&net->stats.rx_bytes, net->packet_len - NET_HDR_SIZE);
    return 1;
}

/* Reads frames from the fd and delivers them until the fd is empty or the guest runs out of
 * buffers; then polling stops until the guest adds some (its RX kick). The guest need not
 * kick for new buffers while we have some: the queue stays quiet until we run out. Lock held. */
static void receive(struct virtio_dev *d, struct virtio_net *net)
{
    bool delivered = false;
    if (io_throttle_blocked(&net->rx_throttle)) {
        set_rx_polling(net, false); /* frames wait in the TAP until the throttle's timer */
        return;
    }
    for (;;) {
        if (!virtio_dev_queue_live(d, VIRTIO_NET_QUEUE_RX)) {
            set_rx_polling(net, false); /* resumes when the driver kicks the RX queue */
            break;
        }
        virtio_dev_quiet(d, VIRTIO_NET_QUEUE_RX);
        if (!net->packet_pending) {
            ssize_t n = read(net->fd, net->packet, sizeof(net->packet));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                if (errno != EAGAIN)
                    virtio_dev_log_once(d, "reading the TAP failed: %s", strerror(errno));
                set_rx_polling(net, true);
                break;
            }
            if ((size_t)n <= NET_HDR_SIZE)
                continue;
            net->packet_len = (size_t)n;
            net->packet_pending = true;
        }
        if (!net->packet_admitted) {
            if (!io_throttle_admit(&net->rx_throttle, net->packet_len - NET_HDR_SIZE, 1)) {
                set_rx_polling(net, false); /* resumed by the throttle's timer */
                break;
            }
            net->packet_admitted = true;
        }
        int r = deliver_packet(d, net);
        if (r <= 0) {
            set_rx_polling(net, false);
            break;
        }
        net->packet_pending = false;
        net->packet_admitted = false;
        delivered = true;
    }
    if (delivered)
        virtio_dev_notify_used(d, VIRTIO_NET_QUEUE_RX);
}

static bool transmit_chain(struct virtio_dev *d, unsigned q, struct virtq_chain *chain)
{
    struct virtio_net *net = net_of(d);
    if (chain->nwritable || chain->readable_len <= NET_HDR_SIZE) {
        virtio_dev_reject(d, q, chain->head,
                          "transmit chain device-writable or without a frame after the header");
        counter_add(&net->stats.tx_dropped, 1);
        return true;
    }
    if (!io_throttle_admit(&net->tx_throttle, chain->readable_len - NET_HDR_SIZE, 1)) {
        virtio_dev_unpop(d, q); /* the frame waits in the ring, and the ring with it */
        return false;
    }
    if (writev(net->fd, chain->iov, chain->nreadable) < 0) {
        /* A full TAP queue drops the frame, as a NIC would; TCP retransmits. */
        if (errno != EAGAIN && errno != ENOBUFS)
            virtio_dev_log_once(d, "writing to the TAP failed: %s", strerror(errno));
        counter_add(&net->stats.tx_dropped, 1);
    } else {
        counter_add(&net->stats.tx_frames, 1);
        counter_add(&net->stats.tx_bytes, chain->readable_len - NET_HDR_SIZE);
    }
    virtio_dev_push(d, q, chain->head, 0);
    return true;
}

static void transmit(struct virtio_dev *d, struct virtio_net *net)
{
    if (io_throttle_blocked(&net->tx_throttle))
        return; /* the throttle's timer kicks the queue when the tokens are back */
    /* No doorbells while we drain: a guest sending fast adds frames without an exit each. */
    virtio_dev_drain(d, VIRTIO_NET_QUEUE_TX, &net->chain, NET_TX_FRAMES_PER_CALL,
                     &net->stats.tx_dropped, transmit_chain);
    virtio_dev_notify_used(d, VIRTIO_NET_QUEUE_TX);
}

static void net_queue_notify(struct virtio_dev *d, unsigned q)
{
    struct virtio_net *net = net_of(d);
    if (q == VIRTIO_NET_QUEUE_TX)
        transmit(d, net);
    else
        receive(d, net); /* new buffers: deliver what waits, and watch the TAP again */
}

static void resume_transmit(struct io_throttle *t, void *opaque)
{
    struct virtio_net *net = opaque;
    virtio_dev_kick(&net->vdev, VIRTIO_NET_QUEUE_TX);
}

static void resume_receive(struct io_throttle *t, void *opaque)
{
    struct virtio_net *net = opaque;
    virtio_dev_lock(&net->vdev);
    receive(&net->vdev, net);
    virtio_dev_unlock(&net->vdev);
}

static void on_fd_event(uv_poll_t *handle, int status, int events)
{
    struct virtio_net *net = handle->data;
    virtio_dev_lock(&net->vdev);
    receive(&net->vdev, net);
    virtio_dev_unlock(&net->vdev);
}

/* One RARP request (RFC 903) from the NIC's MAC to everyone, behind a virtio-net header that
 * asks the TAP for nothing. */
static void send_announcement(struct virtio_net *net)
{
    uint8_t frame[NET_HDR_SIZE + NET_MIN_FRAME] = {0};
    uint8_t *eth = frame + NET_HDR_SIZE, *rarp = eth + 14;
    memset(eth, 0xff, 6);
    memcpy(eth + 6, net->config.mac, 6);
    eth[12] = 0x80; /* ETH_P_RARP */
    eth[13] = 0x35;
    rarp[1] = 1;    /* hardware: Ethernet */
    rarp[2] = 0x08; /* protocol: IPv4 */
    rarp[4] = 6;
    rarp[5] = 4;
    rarp[7] = 3; /* reverse request; both protocol addresses stay 0 */
    memcpy(rarp + 8, net->config.mac, 6);
    memcpy(rarp + 18, net->config.mac, 6);
    if (write(net->fd, frame, sizeof(frame)) == (ssize_t)sizeof(frame))
        counter_add(&net->stats.announcements, 1);
    else
        virtio_dev_log_once(&net->vdev, "announcing the MAC on the TAP failed: %s",
                            strerror(errno));
}

static void on_announce_timer(uv_timer_t *timer)
{
    struct virtio_net *net = timer->data;
    send_announcement(net);
    if (++net->announce_sent < NET_ANNOUNCE_FRAMES)
        uv_timer_start(timer, on_announce_timer,
                       NET_ANNOUNCE_FIRST_GAP_MS +
                           NET_ANNOUNCE_GAP_STEP_MS * (uint64_t)(net->announce_sent - 1),
                       0);
}

static void net_config_read(struct virtio_dev *d, uint32_t offset, uint8_t *data, unsigned size)
{
    struct virtio_net *net = net_of(d);
    virtio_dev_config_copy(&net->config, sizeof(net->config), offset, data, size);
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
static void set_tap_offloads(struct virtio_dev *d, struct virtio_net *net)
{
    unsigned flags = virtio_net_tap_offloads(d->driver_features);
    /* Not a TAP (unit tests' socketpair): nothing to tell it. */
    if (ioctl(net->fd, TUNSETOFFLOAD, flags) < 0 && errno != ENOTTY && errno != EINVAL)
        virtio_dev_log_once(d, "TUNSETOFFLOAD 0x%x failed: %s", flags, strerror(errno));
}

static void net_activate(struct virtio_dev *d)
{
    set_tap_offloads(d, net_of(d));
}

static void net_reset(struct virtio_dev *d)
{
    struct virtio_net *net = net_of(d);
    if (ioctl(net->fd, TUNSETOFFLOAD, 0) < 0 && errno != ENOTTY && errno != EINVAL)
        virtio_dev_log_once(d, "TUNSETOFFLOAD 0 failed: %s", strerror(errno));
}

/* The config space is read-only: without config_write, the core refuses every write. */
static const struct virtio_dev_ops virtio_net_ops = {
    .config_read = net_config_read,
    .activate = net_activate,
    .queue_notify = net_queue_notify,
    .reset = net_reset,
};

static void describe(struct virtio_device_info *info)
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
    info->config_size = sizeof(struct virtio_net_config);
    info->ops = &virtio_net_ops;
}

int virtio_net_create(struct virtio_net **out, int fd, const uint8_t mac[6], uv_loop_t *loop,
                      const struct guest_mem *mem, const struct log *log, struct error *err)
{
    struct virtio_net *net = calloc(1, sizeof(*net));
    if (!net) {
        close(fd);
        return error_fmt(err, -ENOMEM, "--net: out of memory");
    }
    struct virtio_device_info info;
    describe(&info);
    int r = virtio_dev_init(&net->vdev, &info, mem, log, err);
    if (r < 0) {
        close(fd);
        free(net);
        return r;
    }
    io_throttle_init(&net->rx_throttle, resume_receive, net);
    io_throttle_init(&net->tx_throttle, resume_transmit, net);
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

void virtio_net_keep_mac(struct virtio_net *net)
{
    net->keep_mac = true;
}

struct virtio_dev *virtio_net_dev(struct virtio_net *net)
{
    return &net->vdev;
}

int virtio_net_set_limits(struct virtio_net *net, const struct rate_limit_config *rx,
                          const struct rate_limit_config *tx, struct error *err)
{
    virtio_dev_lock(&net->vdev);
    int r = io_throttle_set(&net->rx_throttle, rx, "receive", err);
    if (r == 0)
        r = io_throttle_set(&net->tx_throttle, tx, "transmit", err);
    virtio_dev_unlock(&net->vdev);
    return r;
}

void virtio_net_get_limits(struct virtio_net *net, struct rate_limit_config *rx,
                           struct rate_limit_config *tx)
{
    virtio_dev_lock(&net->vdev);
    *rx = net->rx_throttle.config;
    *tx = net->tx_throttle.config;
    virtio_dev_unlock(&net->vdev);
}

void virtio_net_limit_counters(const struct virtio_net *net, struct io_throttle_counters *rx,
                               struct io_throttle_counters *tx)
{
    io_throttle_read_counters(&net->rx_throttle, rx);
    io_throttle_read_counters(&net->tx_throttle, tx);
}

int virtio_net_attach(struct virtio_net *net, struct error *err)
{
    int r = io_throttle_attach(&net->rx_throttle, net->loop, err);
    if (r == 0)
        r = io_throttle_attach(&net->tx_throttle, net->loop, err);
    if (r < 0)
        return r;
    r = uv_poll_init(net->loop, &net->poll, net->fd);
    if (r < 0)
        return error_fmt(err, r, "--net: cannot watch the TAP: %s", uv_strerror(r));
    net->poll.data = net;
    net->poll_initialised = true;
    uv_timer_init(net->loop, &net->announce_timer);
    net->announce_timer.data = net;
    net->announce_timer_initialised = true;
    if (net->announce_due) {
        net->announce_due = false;
        net->announce_sent = 0;
        uv_timer_start(&net->announce_timer, on_announce_timer, 0, 0);
    }
    /* Nothing is read until the driver has receive buffers: its RX kick starts polling. */
    return 0;
}

void virtio_net_detach(struct virtio_net *net)
{
    io_throttle_detach(&net->rx_throttle);
    io_throttle_detach(&net->tx_throttle);
    if (net->poll_initialised)
        uv_close((uv_handle_t *)&net->poll, NULL);
    net->poll_initialised = false;
    if (net->announce_timer_initialised)
        uv_close((uv_handle_t *)&net->announce_timer, NULL);
    net->announce_timer_initialised = false;
    net->rx_polling = false;
}

void virtio_net_destroy(struct virtio_net *net)
{
    if (!net)
        return;
    if (net->fd >= 0)
        close(net->fd);
    virtio_dev_destroy(&net->vdev);
    free(net);
}

void virtio_net_save(struct virtio_net *net, struct virtio_net_state *out)
{
    virtio_dev_lock(&net->vdev);
    memset(out, 0, sizeof(*out));
    virtio_dev_save(&net->vdev, &out->dev);
    memcpy(out->mac, net->config.mac, sizeof(out->mac));
    out->status = net->config.status;
    out->mtu = net->config.mtu;
    virtio_dev_unlock(&net->vdev);
}

int virtio_net_restore(struct virtio_net *net, const struct virtio_net_state *in, struct error *err)
{
    if (in->status & ~VIRTIO_NET_S_LINK_UP)
        return error_fmt(err, -EINVAL, "%s: saved link status 0x%x has unknown bits",
                         net->vdev.label, in->status);
    if (in->mtu < 68) /* RFC 791's minimum */
        return error_fmt(err, -EINVAL, "%s: saved MTU %u is below 68", net->vdev.label, in->mtu);
    virtio_dev_lock(&net->vdev);
    int r = virtio_dev_restore(&net->vdev, &in->dev, err);
    if (r == 0 && net->keep_mac && memcmp(net->config.mac, in->mac, sizeof(in->mac)) != 0) {
        /* A config field changed, so the generation does too (virtio 1.2 §2.5.1), with no
         * config interrupt: drivers read the MAC only when they probe. */
        net->vdev.config_generation++;
        const uint8_t *m = net->config.mac, *old = in->mac;
        log_info(net->log,
                 "%s: MAC %02x:%02x:%02x:%02x:%02x:%02x from the config, not the snapshot's "
                 "%02x:%02x:%02x:%02x:%02x:%02x (a running driver keeps the old one until it "
                 "probes again)",
                 net->vdev.label, m[0], m[1], m[2], m[3], m[4], m[5], old[0], old[1], old[2],
                 old[3], old[4], old[5]);
    }
    if (r == 0) {
        if (!net->keep_mac)
            memcpy(net->config.mac, in->mac, sizeof(in->mac));
        net->config.status = in->status;
        net->config.mtu = in->mtu;
        net->packet_pending = false;
        net->packet_admitted = false;
        net->announce_due = true; /* the NIC may be on another network segment now */
        if (virtio_dev_live(&net->vdev))
            set_tap_offloads(&net->vdev, net);
    }
    virtio_dev_unlock(&net->vdev);
    return r;
}

void virtio_net_stats(const struct virtio_net *net, struct virtio_net_stats *stats)
{
    const struct virtio_net_stats *c = &net->stats;
    stats->rx_frames = counter_read(&c->rx_frames);
    stats->rx_bytes = counter_read(&c->rx_bytes);
    stats->tx_frames = counter_read(&c->tx_frames);
    stats->tx_bytes = counter_read(&c->tx_bytes);
    stats->rx_dropped = counter_read(&c->rx_dropped);
    stats->tx_dropped = counter_read(&c->tx_dropped);
    stats->announcements = counter_read(&c->announcements);
}
