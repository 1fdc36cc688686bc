/* virtio-net (virtio 1.2 §5.1) on a TAP interface (or any fd that carries one frame with a
 * 12-byte virtio_net_hdr_v1 per read/write): one receive and one transmit queue, run on the
 * event-loop thread. */
#ifndef KILN_DEVICES_VIRTIO_NET_H
#define KILN_DEVICES_VIRTIO_NET_H

#include <stdint.h>
#include <uv.h>

#include "kiln/devices/io_throttle.h"
#include "kiln/util/error.h"
#include "kiln/util/log.h"
#include "kiln/virtio/virtio_mmio.h"

#define VIRTIO_NET_QUEUE_RX 0
#define VIRTIO_NET_QUEUE_TX 1
#define VIRTIO_NET_MTU      1500

struct virtio_net;

/* Takes over fd (closed by virtio_net_destroy). mac is the guest's address. */
int virtio_net_create(struct virtio_net **out, int fd, const uint8_t mac[6], uv_loop_t *loop,
                      const struct guest_mem *mem, const struct log *log, struct error *err);
/* The VM's config names this device's MAC (mac=, or kiln restore --clone's new one): a restore
 * keeps it instead of the snapshot's. Before the device runs. */
void virtio_net_keep_mac(struct virtio_net *net);
/* The device's virtio core, to plug into a transport. */
struct virtio_dev *virtio_net_dev(struct virtio_net *net);

/* The receive (host to guest) and transmit limits, each a frame's bytes (without the
 * virtio-net header) and one op per frame. A frame over budget waits: a transmit chain stays
 * in the ring, a received frame in kiln, and the TAP is not read meanwhile (frames queue in
 * it). -EINVAL for a bad limit. Before the device runs or on the loop thread. */
int virtio_net_set_limits(struct virtio_net *net, const struct rate_limit_config *rx,
                          const struct rate_limit_config *tx, struct error *err);
/* The limits as they are now (any thread: takes the device's lock). */
void virtio_net_get_limits(struct virtio_net *net, struct rate_limit_config *rx,
                           struct rate_limit_config *tx);
void virtio_net_limit_counters(const struct virtio_net *net, struct io_throttle_counters *rx,
                               struct io_throttle_counters *tx);

/* Starts watching the fd on the loop / stops (closes the poll handle). */
int virtio_net_attach(struct virtio_net *net, struct error *err);
void virtio_net_detach(struct virtio_net *net);
void virtio_net_destroy(struct virtio_net *net);

/* Frames and their bytes (without the virtio-net header) in each direction, and frames lost:
 * kiln's statistics, not state. Dropped counts a frame no receive buffer could take, or a
 * transmit chain that was malformed or that the TAP refused. Announcements: the RARP frames
 * kiln itself sent for the guest's MAC after a restore or a migration. */
struct virtio_net_stats {
    uint64_t rx_frames, rx_bytes;
    uint64_t tx_frames, tx_bytes;
    uint64_t rx_dropped, tx_dropped;
    uint64_t announcements;
};
/* The TAP offload flags (TUN_F_*) for the features the driver accepted: its GUEST_* features,
 * which say what the guest can take (TSO only together with checksum offload). */
unsigned virtio_net_tap_offloads(uint64_t features);

/* The NIC's guest-visible state: the virtio core's and its config space (MAC, link status,
 * MTU). A frame read from the TAP and still waiting for receive buffers is not kept: like a
 * frame on the wire during the snapshot, it is lost, and TCP sends it again. */
struct virtio_net_state {
    struct virtio_dev_state dev;
    uint8_t mac[6];
    uint16_t status;
    uint16_t mtu;
    uint8_t pad[6];
};
_Static_assert(sizeof(struct virtio_net_state) == sizeof(struct virtio_dev_state) + 16,
               "virtio_net_state has no padding");

void virtio_net_save(struct virtio_net *net, struct virtio_net_state *out);
/* Also tells the TAP which offloads the restored driver accepted, and has the NIC announce
 * its MAC on the TAP once attached (RARP, 5 frames in 800 ms), as it may be elsewhere now. The MAC
 * is the saved one, unless virtio_net_keep_mac() was called: then the device keeps the MAC it was
 * made with, and if that differs from the saved one, the config generation moves on and the change
 * is logged at info level. */
int virtio_net_restore(struct virtio_net *net, const struct virtio_net_state *in,
                       struct error *err);

/* Any thread, while the device runs. */
void virtio_net_stats(const struct virtio_net *net, struct virtio_net_stats *stats);

#endif
