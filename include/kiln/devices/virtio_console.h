/* virtio-console (virtio 1.2 §5.3), one port (hvc0, no MULTIPORT): guest output into the VM's
 * console buffer, host input into the guest's receive buffers, the terminal size (F_SIZE). */
#ifndef KILN_DEVICES_VIRTIO_CONSOLE_H
#define KILN_DEVICES_VIRTIO_CONSOLE_H

#include <linux/virtio_console.h>
#include <stdint.h>

#include "kiln/console.h"
#include "kiln/virtio/virtio_mmio.h"

#define VIRTIO_CONSOLE_QUEUE_RX 0 /* receiveq: host -> guest */
#define VIRTIO_CONSOLE_QUEUE_TX 1 /* transmitq: guest -> host */

struct virtio_console_dev {
    struct console *console;
    struct virtio_mmio *transport;
    struct virtio_console_config config;
    bool tx_blocked;    /* the console buffer was full: resume on tx_ready_again */
    bool tx_pending;    /* chain holds a transmit chain partly written */
    uint64_t tx_offset; /* bytes of it already written */
    struct virtq_chain chain;
    struct virtq_chain rx_chain;
};

void virtio_console_init(struct virtio_console_dev *dev, struct console *console);
void virtio_console_device_info(struct virtio_console_dev *dev, struct virtio_device_info *info);
void virtio_console_bind(struct virtio_console_dev *dev, struct virtio_mmio *transport);
/* The console_device that makes the VM's console feed this device (stdin -> hvc0). */
void virtio_console_as_console_device(struct virtio_console_dev *dev, struct console_device *out);
/* The host terminal's size changed (SIGWINCH): a config-change interrupt tells the guest. */
void virtio_console_set_size(struct virtio_console_dev *dev, uint16_t cols, uint16_t rows);

#endif
