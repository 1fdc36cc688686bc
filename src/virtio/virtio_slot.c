/* Virtio layer 4 of 4, the wiring: a virtio-mmio transport in a KVM VM, with ioeventfd doorbells
 * (QueueNotify, datamatch = queue) woken on the libuv loop and an irqfd on the slot's GSI. */
#include <errno.h>
#include <linux/kvm.h>
#include <linux/virtio_mmio.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kiln/vm/platform.h"
#include "kiln/virtio/virtio_slot.h"

static void raise_irq(void *opaque)
{
    struct virtio_slot *slot = opaque;
    uint64_t one = 1;
    /* An irqfd write pulses the GSI (edge-triggered, as the ACPI/cmdline description says).
     * It cannot fail short of a bug, and a full counter still leaves an interrupt pending. */
    if (write(slot->irqfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_warn(slot->dev->log, "%s: irqfd write failed: %s", slot->name, strerror(errno));
}

static void kick(void *opaque, unsigned q)
{
    struct virtio_slot *slot = opaque;
    uint64_t one = 1;
    if (write(slot->doorbells[q], &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_warn(slot->dev->log, "%s: doorbell write failed: %s", slot->name, strerror(errno));
}

static int set_ioeventfd(struct virtio_slot *slot, unsigned q, bool assign)
{
    struct kvm_ioeventfd ioeventfd = {
        .datamatch = q,
        .addr = slot->base + VIRTIO_MMIO_QUEUE_NOTIFY,
        .len = 4,
        .fd = slot->doorbells[q],
        .flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
    };
    return ioctl(slot->vm_fd, KVM_IOEVENTFD, &ioeventfd) < 0 ? -errno : 0;
}

static int create_eventfds(struct virtio_slot *slot, struct error *err)
{
    slot->irqfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (slot->irqfd < 0)
        return error_fmt(err, -errno, "%s: eventfd: %s", slot->name, strerror(errno));
    struct kvm_irqfd irqfd = {.fd = (uint32_t)slot->irqfd, .gsi = slot->gsi};
    if (ioctl(slot->vm_fd, KVM_IRQFD, &irqfd) < 0)
        return error_fmt(err, -errno, "%s: KVM_IRQFD for GSI %u failed: %s", slot->name, slot->gsi,
                         strerror(errno));
    for (unsigned q = 0; q < slot->dev->info.num_queues; q++) {
        slot->doorbells[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (slot->doorbells[q] < 0)
            return error_fmt(err, -errno, "%s: eventfd: %s", slot->name, strerror(errno));
        int r = set_ioeventfd(slot, q, true);
        if (r < 0)
            return error_fmt(err, r, "%s: KVM_IOEVENTFD for queue %u failed: %s", slot->name, q,
                             strerror(-r));
        slot->doorbell_registered[q] = true;
    }
    return 0;
}

int virtio_slot_create(struct virtio_slot *slot, unsigned index, int vm_fd, struct bus *mmio_bus,
                       struct virtio_dev *dev, struct error *err)
{
    memset(slot, 0, sizeof(*slot));
    slot->irqfd = -1;
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
        slot->doorbells[q] = -1;
    slot->index = index;
    slot->base = PLATFORM_VIRTIO_MMIO_BASE + index * PLATFORM_VIRTIO_MMIO_SLOT_SIZE;
    slot->gsi = PLATFORM_VIRTIO_GSI_BASE + index;
    slot->vm_fd = vm_fd;
    slot->dev = dev;
    snprintf(slot->name, sizeof(slot->name), "%s %u", dev->info.name, index);

    struct virtio_mmio_host host = {.raise_irq = raise_irq, .kick = kick, .opaque = slot};
    virtio_mmio_init(&slot->transport, dev, &host, slot->base);
    int r = create_eventfds(slot, err);
    if (r < 0)
        return r;
    struct bus_range range = {
        .base = slot->base,
        .len = PLATFORM_VIRTIO_MMIO_SLOT_SIZE,
        .name = slot->name,
        .ops = &virtio_mmio_bus_ops,
        .opaque = &slot->transport,
    };
    return bus_register(mmio_bus, &range, err);
}

static void on_doorbell(uv_poll_t *handle, int status, int events)
{
    struct virtio_slot *slot = handle->data;
    unsigned q = (unsigned)(handle - slot->polls);
    uint64_t count;
    /* Reading resets the counter; several kicks since the last wake-up are one notify. */
    if (read(slot->doorbells[q], &count, sizeof(count)) < 0 && errno == EAGAIN)
        return;
    virtio_dev_handle_notify(slot->dev, q);
}

int virtio_slot_attach(struct virtio_slot *slot, uv_loop_t *loop, struct error *err)
{
    for (unsigned q = 0; q < slot->dev->info.num_queues; q++) {
        int r = uv_poll_init(loop, &slot->polls[q], slot->doorbells[q]);
        if (r < 0)
            return error_fmt(err, r, "%s: polling queue %u: %s", slot->name, q, uv_strerror(r));
        slot->npolls++;
        slot->polls[q].data = slot;
        r = uv_poll_start(&slot->polls[q], UV_READABLE, on_doorbell);
        if (r < 0)
            return error_fmt(err, r, "%s: polling queue %u: %s", slot->name, q, uv_strerror(r));
    }
    return 0;
}

void virtio_slot_detach(struct virtio_slot *slot)
{
    for (unsigned q = 0; q < slot->npolls; q++)
        uv_close((uv_handle_t *)&slot->polls[q], NULL);
    slot->npolls = 0;
}

void virtio_slot_destroy(struct virtio_slot *slot)
{
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
        if (slot->doorbell_registered[q])
            set_ioeventfd(slot, q, false);
        slot->doorbell_registered[q] = false;
        if (slot->doorbells[q] >= 0)
            close(slot->doorbells[q]);
        slot->doorbells[q] = -1;
    }
    if (slot->irqfd >= 0) {
        struct kvm_irqfd irqfd = {
            .fd = (uint32_t)slot->irqfd, .gsi = slot->gsi, .flags = KVM_IRQFD_FLAG_DEASSIGN};
        ioctl(slot->vm_fd, KVM_IRQFD, &irqfd);
        close(slot->irqfd);
        slot->irqfd = -1;
    }
}
