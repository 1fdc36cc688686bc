/* A VM's whole state as state-file sections, for snapshots and live migration: the devices'
 * copied on the loop, KVM's read from the paused vCPUs, and the disks' identities. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/config/config_yaml.h"
#include "kiln/snapshot/snap_disk.h"
#include "kiln/vcpu/vcpu_state.h"
#include "kiln/vm/vm_cpuid.h"
#include "kiln/vm/vm_sections.h"
#include "kiln/vm/vm_state.h"

static struct vm_section *new_section(struct vm_sections *s, const char *name, int32_t slot,
                                      size_t size, struct error *err)
{
    struct vm_section *sec = &s->items[s->count];
    sec->data = calloc(1, size);
    if (!sec->data)
        return error_fmt(err, -ENOMEM, "out of memory"), NULL;
    s->count++;
    snprintf(sec->name, sizeof(sec->name), "%s", name);
    sec->slot = slot;
    sec->size = (uint32_t)size;
    return sec;
}

int vm_sections_collect(struct vm *vm, struct vm_sections *s, struct error *err)
{
    s->count = 0;
    for (unsigned i = 0; i < vm->ndevices; i++) {
        const struct vm_device *d = &vm->devices[i];
        if (!d->kind->save)
            continue;
        struct vm_section *sec = new_section(s, d->name, d->slot, d->kind->state_size, err);
        if (!sec)
            return -ENOMEM;
        int r = d->kind->save(d->dev, sec->data, err);
        if (r < 0)
            return r;
    }
    for (unsigned i = 0; i < vm->nvirtio; i++) {
        struct vm_section *sec = new_section(s, VM_SNAPSHOT_SECTION_TRANSPORT, (int32_t)i,
                                             sizeof(struct virtio_mmio_state), err);
        if (!sec)
            return -ENOMEM;
        virtio_mmio_save(&vm->virtio[i].transport, sec->data);
    }
    return 0;
}

void vm_sections_free(struct vm_sections *s)
{
    for (unsigned i = 0; i < s->count; i++)
        free(s->items[i].data);
    s->count = 0;
}

static int add_section(struct snap_writer *w, const char *name, int32_t slot, const void *data,
                       size_t size, struct error *err)
{
    return snap_writer_add(w, name, slot, data, (uint32_t)size, err);
}

/* The VM-wide and per-vCPU state KVM holds, read while the vCPUs are parked. */
static int write_kvm_state(struct vm *vm, struct snap_writer *w, struct error *err)
{
    if (!vm->vcpu_caps_ok)
        return error_fmt(err, -ENOTSUP, "this host's KVM cannot save vCPU state: %s",
                         vm->vcpu_caps_error);
    struct vm_state vm_state;
    int r = vm_state_save(vm->fd, &vm_state, err);
    if (r == 0)
        r = vm_cpuid_save(vm, w, err);
    if (r == 0)
        r = add_section(w, VM_SNAPSHOT_SECTION_VM, -1, &vm_state, sizeof(vm_state), err);
    struct vm_snapshot_clock clock = {.realtime_ns = vm_snapshot_realtime_ns()};
    if (r == 0)
        r = add_section(w, VM_SNAPSHOT_SECTION_CLOCK, -1, &clock, sizeof(clock), err);
    struct vcpu_state *vcpu = malloc(sizeof(*vcpu));
    if (!vcpu && r == 0)
        r = error_fmt(err, -ENOMEM, "out of memory");
    for (unsigned i = 0; r == 0 && i < vm->nvcpus; i++) {
        r = vcpu_state_save(vm->vcpus[i].fd, &vm->vcpu_caps, vcpu, err);
        if (r == 0)
            r = add_section(w, VM_SNAPSHOT_SECTION_VCPU, (int32_t)i, vcpu, sizeof(*vcpu), err);
    }
    free(vcpu);
    return r;
}

static int write_disk_ids(struct vm *vm, struct snap_writer *w, struct error *err)
{
    const struct vm_config *cfg = vm->config;
    struct snap_disk_id *id = malloc(sizeof(*id));
    if (!id)
        return error_fmt(err, -ENOMEM, "out of memory");
    int r = 0;
    for (unsigned i = 0; r == 0 && i < cfg->ndisks; i++) {
        /* As config.yaml gives it (config_yaml_emit makes paths absolute the same way), so
         * that a restore of a VM run with a relative --disk finds the same path there. */
        char *path = config_absolute_path(cfg->disks[i].path);
        if (!path)
            r = error_fmt(err, -ENOMEM, "out of memory");
        else /* the file the VM has open: the writer's thread need open nothing */
            r = snap_disk_id_of_fd(path, vm_devices_disk_fd(vm, i), cfg->disks[i].readonly, id,
                                   err);
        free(path);
        if (r == 0)
            r = add_section(w, VM_SNAPSHOT_SECTION_DISK, (int32_t)i, id, sizeof(*id), err);
    }
    free(id);
    return r;
}

int vm_sections_write(struct vm *vm, const struct vm_sections *s, struct snap_writer *w,
                      struct error *err)
{
    int r = write_kvm_state(vm, w, err);
    for (unsigned i = 0; r == 0 && i < s->count; i++)
        r = add_section(w, s->items[i].name, s->items[i].slot, s->items[i].data, s->items[i].size,
                        err);
    if (r == 0)
        r = write_disk_ids(vm, w, err);
    return r;
}

int vm_sections_flush_devices(struct vm *vm, struct error *err)
{
    for (unsigned i = 0; i < vm->ndevices; i++) {
        const struct vm_device *d = &vm->devices[i];
        int r = d->kind->flush ? d->kind->flush(d->dev, err) : 0;
        if (r < 0)
            return r;
    }
    return 0;
}
