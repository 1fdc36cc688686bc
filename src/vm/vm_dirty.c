/* Dirty-page tracking for diff snapshots: KVM logs the guest's writes per memory slot, kiln's
 * guest_mem marks its own devices' writes; both fold into one bitmap of the RAM file. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kiln/util/page_bitmap.h"
#include "kiln/vm/vm.h"
#include "kiln/vm/vm_dirty.h"

/* Slot i is RAM region i (map_guest_ram in vm.c); the same region, with logging on. */
static int set_slot_logging(struct vm *vm, int i, struct error *err)
{
    const struct guest_mem_region *region = &vm->mem.regions[i];
    struct kvm_userspace_memory_region slot = {
        .slot = (uint32_t)i,
        .flags = KVM_MEM_LOG_DIRTY_PAGES,
        .guest_phys_addr = region->gpa,
        .memory_size = region->size,
        .userspace_addr = (uint64_t)(uintptr_t)region->hva,
    };
    if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
        return error_fmt(err, -errno, "dirty-page logging on memory slot %d: %s", i,
                         strerror(errno));
    return 0;
}

int vm_dirty_start(struct vm *vm, struct error *err)
{
    for (int i = 0; i < vm->mem.nregions; i++) {
        int r = set_slot_logging(vm, i, err);
        if (r < 0)
            return r;
    }
    return 0;
}

int vm_dirty_collect(struct vm *vm, uint64_t *bitmap, struct error *err)
{
    for (int i = 0; i < vm->mem.nregions; i++) {
        const struct guest_mem_region *region = &vm->mem.regions[i];
        uint64_t pages = region->size / 4096;
        uint64_t *log = calloc(page_bitmap_words(pages), sizeof(uint64_t));
        if (!log)
            return error_fmt(err, -ENOMEM, "dirty log of memory slot %d: out of memory", i);
        struct kvm_dirty_log request = {.slot = (uint32_t)i, .dirty_bitmap = log};
        if (ioctl(vm->fd, KVM_GET_DIRTY_LOG, &request) < 0) {
            int e = errno;
            free(log);
            return error_fmt(err, -e, "KVM_GET_DIRTY_LOG of memory slot %d: %s", i, strerror(e));
        }
        /* Region i starts where the regions before it end in the one RAM mapping, which is
         * the memory file's layout. */
        uint64_t first_page = (uint64_t)(region->hva - (uint8_t *)vm->mem.mapping) / 4096;
        page_bitmap_or_at(bitmap, first_page, log, pages);
        free(log);
    }
    guest_mem_take_written(&vm->mem, bitmap);
    return 0;
}
