/* Restoring a snapshot into a VM that vm_build_from just built from the snapshot's config and
 * memory: every check first (the file, the CPU, the disks, each section's size), then the
 * VM-wide state, each vCPU, each device and virtio transport. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/snapshot/snap_chain.h"
#include "kiln/snapshot/snap_disk.h"
#include "kiln/snapshot/snap_cpu.h"
#include "kiln/snapshot/snap_dir.h"
#include "kiln/snapshot/snap_state.h"
#include "kiln/vcpu/vcpu_state.h"
#include "kiln/vm/vm.h"
#include "kiln/vm/vm_cpuid.h"
#include "kiln/vm/vm_snapshot.h"
#include "kiln/vm/vm_snapshot_sections.h"
#include "kiln/vm/vm_state.h"

/* Where each section's bytes are in the loaded file, found and size-checked before anything
 * is written into the VM. */
struct found {
    const struct vm_state *vm;
    const struct vm_snapshot_clock *clock;
    const struct vcpu_state *vcpus[CONFIG_MAX_CPUS];
    const void *devices[VM_MAX_DEVICES];
    const struct virtio_mmio_state *transports[PLATFORM_VIRTIO_MMIO_MAX];
};

static int find_all(const struct vm *vm, const struct snap_reader *reader, struct found *f,
                    struct error *err)
{
    f->vm = snap_reader_find(reader, VM_SNAPSHOT_SECTION_VM, -1, sizeof(*f->vm), err);
    if (!f->vm)
        return -EINVAL;
    f->clock = snap_reader_find(reader, VM_SNAPSHOT_SECTION_CLOCK, -1, sizeof(*f->clock), err);
    if (!f->clock)
        return -EINVAL;
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        f->vcpus[i] = snap_reader_find(reader, VM_SNAPSHOT_SECTION_VCPU, (int32_t)i,
                                       sizeof(struct vcpu_state), err);
        if (!f->vcpus[i])
            return -EINVAL;
    }
    for (unsigned i = 0; i < vm->ndevices; i++) {
        const struct vm_device *d = &vm->devices[i];
        if (!d->kind->restore)
            continue;
        f->devices[i] =
            snap_reader_find(reader, d->name, d->slot, (uint32_t)d->kind->state_size, err);
        if (!f->devices[i])
            return -EINVAL;
    }
    for (unsigned i = 0; i < vm->nvirtio; i++) {
        f->transports[i] = snap_reader_find(reader, VM_SNAPSHOT_SECTION_TRANSPORT, (int32_t)i,
                                            sizeof(struct virtio_mmio_state), err);
        if (!f->transports[i])
            return -EINVAL;
    }
    return 0;
}

/* The disks the snapshot was taken with must be the ones there now, unchanged: a guest whose
 * page cache disagrees with its disk corrupts its file system. */
static int check_disks(const struct vm_config *config, const struct snap_reader *reader,
                       struct error *err)
{
    for (unsigned i = 0; i < config->ndisks; i++) {
        const struct snap_disk_id *id =
            snap_reader_find(reader, VM_SNAPSHOT_SECTION_DISK, (int32_t)i, sizeof(*id), err);
        if (!id)
            return -EINVAL;
        if (strcmp(id->path, config->disks[i].path) != 0)
            return error_fmt(err, -EINVAL, "disk %u: the snapshot was taken with %s, not %s", i,
                             id->path, config->disks[i].path);
        int r = snap_disk_id_check(id, i, err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* kvmclock goes on from where it was plus the wall-clock time the VM spent saved, so the
 * guest's clock is right at once and its timers fire as due (docs/snapshots.md). */
static void advance_clock(struct vm_state *state, const struct vm_snapshot_clock *clock)
{
    uint64_t now = vm_snapshot_realtime_ns();
    if (now > clock->realtime_ns)
        state->clock.clock += now - clock->realtime_ns;
}

static int load(struct vm *vm, const struct found *f, struct error *err)
{
    struct vm_state state = *f->vm;
    advance_clock(&state, f->clock);
    int r = vm_state_restore(vm->fd, &state, err);
    for (unsigned i = 0; r == 0 && i < vm->nvcpus; i++) {
        if (!vm->vcpu_caps_ok)
            return error_fmt(err, -ENOTSUP, "this host's KVM cannot load vCPU state: %s",
                             vm->vcpu_caps_error);
        r = vcpu_state_restore(vm->vcpus[i].fd, &vm->vcpu_caps, f->vcpus[i], err);
    }
    for (unsigned i = 0; r == 0 && i < vm->ndevices; i++) {
        const struct vm_device *d = &vm->devices[i];
        if (d->kind->restore)
            r = d->kind->restore(d->dev, f->devices[i], err);
        if (r < 0)
            return error_fmt(err, r, "%s: %s", d->name, err->msg);
    }
    for (unsigned i = 0; r == 0 && i < vm->nvirtio; i++)
        r = virtio_mmio_restore(&vm->virtio[i].transport, f->transports[i], err);
    return r;
}

/* Every restored copy is a new generation of the VM: a new random ID in its page, and the
 * GED's event that makes the guest read it (Linux reseeds its RNG from it). Both after the
 * state is loaded, so the interrupt lands in the restored IOAPIC and LAPIC, and before any
 * vCPU runs, so the guest never runs on as the old generation. A snapshot taken by an older
 * kiln has no VGEN device in its DSDT: the page is reserved memory that guest never reads and
 * the pin stays masked, so nothing changes for it. */
static int new_generation(struct vm *vm, struct error *err)
{
    uint8_t generation[ACPI_VMGENID_SIZE];
    int r = acpi_vmgenid_renew(&vm->mem, generation, err);
    if (r < 0)
        return r;
    vm_log_generation(vm, generation, "restored: new VM generation ID");
    vm_notify_generation(vm);
    log_debug(&vm->log, "restored: the guest was notified on GSI %d", PLATFORM_VMGENID_GSI);
    return 0;
}

/* A base of the snapshot restored: its disks must be the same images (their contents moved
 * on with the VM since, so only the restored snapshot's own identities are compared). */
static int check_base_disks(const struct vm_config *config, const struct snap_reader *reader,
                            struct error *err)
{
    for (unsigned i = 0; i < config->ndisks; i++) {
        const struct snap_disk_id *id =
            snap_reader_find(reader, VM_SNAPSHOT_SECTION_DISK, (int32_t)i, sizeof(*id), err);
        if (!id)
            return -EINVAL;
        if (strcmp(id->path, config->disks[i].path) != 0)
            return error_fmt(err, -EINVAL, "%s: disk %u was %s, not %s", reader->label, i, id->path,
                             config->disks[i].path);
    }
    struct error none = {{0}}; /* the usual answer: no such disk, which is no error here */
    if (snap_reader_find(reader, VM_SNAPSHOT_SECTION_DISK, (int32_t)config->ndisks,
                         sizeof(struct snap_disk_id), &none))
        return error_fmt(err, -EINVAL, "%s: more disks than its diff's %u", reader->label,
                         config->ndisks);
    return 0;
}

/* What can be checked before anything is built: the file, the memory size, the CPU, the
 * disks (a base link: their paths only). */
static int check_link(const struct vm_config *config, const struct snap_reader *reader,
                      bool is_base, struct error *err)
{
    const struct snap_info *info = &reader->info;
    if (info->flags & ~SNAP_FLAG_DIFF)
        return error_fmt(err, -EINVAL, "%s: unknown flags 0x%x", reader->label, info->flags);
    if (info->memory_size != config->memory_bytes)
        return error_fmt(err, -EINVAL, "%s: the snapshot has %llu MiB of RAM, its config %llu MiB",
                         reader->label, (unsigned long long)(info->memory_size >> 20),
                         (unsigned long long)(config->memory_bytes >> 20));
    struct snap_cpu_id host;
    snap_cpu_id_probe(&host);
    /* A state with its VM's CPUID needs only what that CPUID has (vm_cpuid_load checks it
     * against this host's KVM); an older one, every feature of the CPU it was saved on. */
    int r = vm_cpuid_saved(reader) ? snap_cpu_vendor_check(&info->cpu, &host, reader->label, err)
                                   : snap_cpu_id_check(&info->cpu, &host, reader->label, err);
    if (r == 0)
        r = is_base ? check_base_disks(config, reader, err) : check_disks(config, reader, err);
    return r;
}

static int load_checked(struct snap_reader *reader, const struct vm_config *config, const char *dir,
                        bool is_base, struct error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, SNAP_STATE_FILE);
    int r = snap_reader_load(reader, path, err);
    if (r < 0)
        return r;
    r = check_link(config, reader, is_base, err);
    if (r < 0)
        snap_reader_free(reader);
    return r;
}

int vm_snapshot_chain(const struct vm_config *config, const char *dir, struct snap_chain *chain,
                      struct error *err)
{
    int r = snap_chain_walk(dir, chain, err);
    for (unsigned i = 0; r == 0 && i < chain->count; i++) {
        struct snap_reader reader;
        r = load_checked(&reader, config, chain->dirs[i], i > 0, err);
        if (r == 0)
            snap_reader_free(&reader);
    }
    return r;
}

int vm_snapshot_check(const struct vm_config *config, const char *dir, struct error *err)
{
    struct snap_chain *chain = malloc(sizeof(*chain));
    if (!chain)
        return error_fmt(err, -ENOMEM, "out of memory");
    int r = vm_snapshot_chain(config, dir, chain, err);
    free(chain);
    return r;
}

int vm_snapshot_load_state(struct vm *vm, const struct snap_reader *reader, bool new_gen,
                           struct error *err)
{
    int r = check_link(vm->config, reader, false, err);
    struct found *found = r < 0 ? NULL : calloc(1, sizeof(*found));
    if (r == 0 && !found)
        r = error_fmt(err, -ENOMEM, "out of memory");
    if (r == 0)
        r = find_all(vm, reader, found, err);
    if (r == 0)
        r = vm_cpuid_load(vm, reader, err);
    if (r == 0)
        r = load(vm, found, err);
    if (r == 0 && new_gen && vm->config->vmgenid) /* the snapshot's config: its DSDT has it */
        r = new_generation(vm, err);
    free(found);
    return r;
}

int vm_snapshot_restore(struct vm *vm, const char *dir, struct error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, SNAP_STATE_FILE);
    struct snap_reader reader;
    int r = snap_reader_load(&reader, path, err);
    if (r == 0)
        r = vm_snapshot_load_state(vm, &reader, true, err);
    snap_reader_free(&reader);
    return r;
}
