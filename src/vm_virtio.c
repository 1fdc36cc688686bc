/* The VM's virtio devices: built from its config in slot order (disks in --disk order, nets
 * in --net order, rng, virtio console), plugged into virtio-mmio slots, described in ACPI or
 * on the kernel command line. */
#include <stdlib.h>
#include <string.h>

#include "kiln/devices/tap.h"
#include "kiln/platform.h"
#include "kiln/vm.h"

static int add_slot(struct vm *vm, const struct virtio_device_info *info, struct error *err)
{
    if (vm->nvirtio == PLATFORM_VIRTIO_MMIO_MAX)
        return error_fmt(err, -E2BIG, "too many virtio devices: kiln has %d virtio-mmio slots",
                         PLATFORM_VIRTIO_MMIO_MAX);
    struct virtio_slot *slot = &vm->virtio[vm->nvirtio];
    vm->nvirtio++; /* counted before creation, so a half-made slot is destroyed */
    return virtio_slot_create(slot, vm->nvirtio - 1, vm->fd, &vm->mmio_bus, info, &vm->mem,
                              &vm->log, err);
}

static int create_net(struct vm *vm, const struct net_config *net_cfg, struct error *err)
{
    uint8_t mac[6];
    config_net_mac(vm->config, vm->nnets, mac);
    int fd = tap_open(net_cfg->tap, err);
    if (fd < 0)
        return fd;
    struct virtio_net *net;
    int r = virtio_net_create(&net, fd, mac, &vm->loop, &vm->log, err);
    if (r < 0)
        return r;
    vm->nets[vm->nnets++] = net;
    struct virtio_device_info info;
    virtio_net_device_info(net, &info);
    r = add_slot(vm, &info, err);
    if (r == 0)
        virtio_net_bind(net, &vm->virtio[vm->nvirtio - 1].transport);
    return r;
}

int vm_virtio_create(struct vm *vm, struct error *err)
{
    const struct vm_config *cfg = vm->config;
    for (unsigned i = 0; i < cfg->ndisks; i++) {
        int r = virtio_blk_create(&vm->disks[i], &cfg->disks[i], &vm->loop, &vm->log, err);
        if (r < 0)
            return r;
        vm->ndisks++;
        struct virtio_device_info info;
        virtio_blk_device_info(vm->disks[i], &info);
        r = add_slot(vm, &info, err);
        if (r < 0)
            return r;
    }
    for (unsigned i = 0; i < cfg->nnets; i++) {
        int r = create_net(vm, &cfg->nets[i], err);
        if (r < 0)
            return r;
    }
    if (cfg->rng) {
        vm->rng = calloc(1, sizeof(*vm->rng));
        if (!vm->rng)
            return error_fmt(err, -ENOMEM, "virtio-rng: out of memory");
        struct virtio_device_info info;
        virtio_rng_device_info(vm->rng, &info);
        int r = add_slot(vm, &info, err);
        if (r < 0)
            return r;
    }
    if (cfg->console_device == CONSOLE_ON_VIRTIO || cfg->vconsole) {
        vm->vconsole = calloc(1, sizeof(*vm->vconsole));
        if (!vm->vconsole)
            return error_fmt(err, -ENOMEM, "virtio-console: out of memory");
        virtio_console_init(vm->vconsole, vm_hvc_console(vm));
        struct virtio_device_info info;
        virtio_console_device_info(vm->vconsole, &info);
        int r = add_slot(vm, &info, err);
        if (r < 0)
            return r;
        virtio_console_bind(vm->vconsole, &vm->virtio[vm->nvirtio - 1].transport);
    }
    return 0;
}

size_t vm_virtio_describe(const struct vm *vm, struct acpi_virtio_device *out)
{
    for (unsigned i = 0; i < vm->nvirtio; i++) {
        out[i].base = vm->virtio[i].base;
        out[i].size = PLATFORM_VIRTIO_MMIO_SLOT_SIZE;
        out[i].gsi = vm->virtio[i].gsi;
    }
    return vm->nvirtio;
}

int vm_virtio_attach(struct vm *vm, struct error *err)
{
    for (unsigned i = 0; i < vm->nvirtio; i++) {
        int r = virtio_slot_attach(&vm->virtio[i], &vm->loop, err);
        if (r < 0)
            return r;
    }
    for (unsigned i = 0; i < vm->nnets; i++) {
        int r = virtio_net_attach(vm->nets[i], err);
        if (r < 0)
            return r;
    }
    return 0;
}

void vm_virtio_log_stats(const struct vm *vm)
{
    for (unsigned i = 0; i < vm->nvirtio; i++)
        log_debug(&vm->log, "%s: %llu malformed requests", vm->virtio[i].name,
                  (unsigned long long)vm->virtio[i].transport.device_errors);
    for (unsigned i = 0; i < vm->nnets; i++) {
        struct virtio_net_stats st;
        virtio_net_stats(vm->nets[i], &st);
        log_debug(
            &vm->log,
            "virtio-net %u: %llu frames received, %llu sent, %llu dropped on receive, %llu on send",
            i, (unsigned long long)st.rx_frames, (unsigned long long)st.tx_frames,
            (unsigned long long)st.rx_dropped, (unsigned long long)st.tx_dropped);
    }
    if (vm->rng)
        log_debug(&vm->log, "virtio-rng: served %llu bytes",
                  (unsigned long long)vm->rng->bytes_served);
}

void vm_virtio_detach(struct vm *vm)
{
    for (unsigned i = 0; i < vm->nvirtio; i++)
        virtio_slot_detach(&vm->virtio[i]);
    for (unsigned i = 0; i < vm->nnets; i++)
        virtio_net_detach(vm->nets[i]);
}

/* Block requests still on the thread pool hold pointers into the devices: let them finish. */
static void drain_disk_io(struct vm *vm)
{
    for (;;) {
        unsigned in_flight = 0;
        for (unsigned i = 0; i < vm->ndisks; i++)
            in_flight += virtio_blk_in_flight(vm->disks[i]);
        if (in_flight == 0 || !vm->loop_initialized)
            return;
        uv_run(&vm->loop, UV_RUN_ONCE);
    }
}

void vm_virtio_destroy(struct vm *vm)
{
    drain_disk_io(vm);
    for (unsigned i = 0; i < vm->nvirtio; i++)
        virtio_slot_destroy(&vm->virtio[i]);
    vm->nvirtio = 0;
    for (unsigned i = 0; i < vm->ndisks; i++)
        virtio_blk_destroy(vm->disks[i]);
    vm->ndisks = 0;
    for (unsigned i = 0; i < vm->nnets; i++)
        virtio_net_destroy(vm->nets[i]);
    vm->nnets = 0;
    free(vm->rng);
    vm->rng = NULL;
    free(vm->vconsole);
    vm->vconsole = NULL;
}
