/* virtio-console (virtio 1.2 §5.3), one port (hvc0, no MULTIPORT): guest output into the VM's
 * console buffer, host input into the guest's receive buffers, the terminal size (F_SIZE). */
#ifndef KILN_DEVICES_VIRTIO_CONSOLE_H
#define KILN_DEVICES_VIRTIO_CONSOLE_H

#include <linux/virtio_console.h>
#include <stdint.h>

#include "kiln/host/console.h"
#include "kiln/virtio/virtio_dev.h"

#define VIRTIO_CONSOLE_QUEUE_RX 0 /* receiveq: host -> guest */
#define VIRTIO_CONSOLE_QUEUE_TX 1 /* transmitq: guest -> host */

/* Bytes through hvc0 (kiln's statistics, not state): rx from the host's console into the
 * guest's receive buffers, tx from the guest's transmit chains into the console buffer. */
struct virtio_console_counters {
    uint64_t rx_bytes, tx_bytes;
};

struct virtio_console_dev {
    struct virtio_dev vdev;
    struct console *console;
    struct virtio_console_config config;
    bool tx_blocked;        /* the console buffer was full: resume on tx_ready_again */
    bool tx_pending;        /* chain holds a transmit chain partly written */
    uint32_t tx_generation; /* the device's generation when it was popped */
    uint64_t tx_offset;     /* bytes of it already written */
    uint64_t tx_resume;     /* after a restore: bytes of the next chain popped already written */
    struct virtio_console_counters counters; /* kiln/util/counter.h */
    struct virtq_chain chain;
    struct virtq_chain rx_chain;
};

/* hvc0's guest-visible state: the virtio core's, the terminal size it reports, and how far a
 * transmit chain that did not fit the console buffer was written (it is popped again on
 * restore and the rest written). */
struct virtio_console_state {
    struct virtio_dev_state dev;
    uint64_t tx_offset;
    uint16_t cols, rows;
    uint8_t tx_pending;
    uint8_t pad[3];
};
_Static_assert(sizeof(struct virtio_console_state) == sizeof(struct virtio_dev_state) + 16,
               "virtio_console_state has no padding");

void virtio_console_save(struct virtio_console_dev *dev, struct virtio_console_state *out);
int virtio_console_restore(struct virtio_console_dev *dev, const struct virtio_console_state *in,
                           struct error *err);

int virtio_console_init(struct virtio_console_dev *dev, struct console *console,
                        const struct guest_mem *mem, const struct log *log, struct error *err);
/* Any thread, while the device runs. */
void virtio_console_counters(const struct virtio_console_dev *dev,
                             struct virtio_console_counters *out);
void virtio_console_destroy(struct virtio_console_dev *dev);
/* The console_device that makes the VM's console feed this device (stdin -> hvc0). */
void virtio_console_as_console_device(struct virtio_console_dev *dev, struct console_device *out);
/* The host terminal's size changed (SIGWINCH): a config-change interrupt tells the guest. */
void virtio_console_set_size(struct virtio_console_dev *dev, uint16_t cols, uint16_t rows);

#endif
