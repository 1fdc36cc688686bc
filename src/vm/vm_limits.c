/* The config as the VM runs it: the devices own their rate limits once the VM is built (the
 * API changes them there), so this view reads them back into a copy of the config. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/config/config_yaml.h"
#include "kiln/vm/vm.h"
#include "kiln/vm/vm_limits.h"

int vm_running_config(struct vm *vm, struct vm_config *view)
{
    const struct vm_config *cfg = vm->config;
    *view = *cfg;
    view->disks = NULL;
    view->nets = NULL;
    if (cfg->ndisks && !(view->disks = malloc(cfg->ndisks * sizeof(*view->disks))))
        return -ENOMEM;
    if (cfg->nnets && !(view->nets = malloc(cfg->nnets * sizeof(*view->nets)))) {
        free(view->disks);
        return -ENOMEM;
    }
    if (cfg->ndisks)
        memcpy(view->disks, cfg->disks, cfg->ndisks * sizeof(*view->disks));
    if (cfg->nnets)
        memcpy(view->nets, cfg->nets, cfg->nnets * sizeof(*view->nets));
    struct rate_limit_config limits[VM_DEVICE_MAX_LIMITS];
    for (unsigned i = 0; i < cfg->ndisks; i++) {
        struct vm_device *d = vm_devices_find(vm, "virtio-blk", i);
        if (d && d->kind->get_limits(d->dev, limits) == 1)
            view->disks[i].limit = limits[0];
    }
    for (unsigned i = 0; i < cfg->nnets; i++) {
        struct vm_device *d = vm_devices_find(vm, "virtio-net", i);
        if (d && d->kind->get_limits(d->dev, limits) == 2) {
            view->nets[i].rx_limit = limits[0];
            view->nets[i].tx_limit = limits[1];
        }
    }
    struct vm_device *rng = vm_devices_find(vm, "virtio-rng", 0);
    if (rng && rng->kind->get_limits(rng->dev, limits) == 1)
        view->rng_limit = limits[0];
    return 0;
}

void vm_running_config_release(struct vm_config *view)
{
    free(view->disks);
    free(view->nets);
    memset(view, 0, sizeof(*view));
}

int vm_running_config_emit(struct vm *vm, FILE *out, struct error *err)
{
    struct vm_config view;
    if (vm_running_config(vm, &view) < 0)
        return error_fmt(err, -ENOMEM, "out of memory");
    int r = config_yaml_emit(&view, out, err);
    vm_running_config_release(&view);
    return r;
}
