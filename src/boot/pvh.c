/* PVH boot information: struct hvm_start_info (version 1), the initrd module list and the
 * memory map, at the fixed LAYOUT_PVH_* addresses; EBX points at the start info. */
#include <errno.h>
#include <string.h>

#include "boot_internal.h"
#include "kiln/boot/layout.h"

#define PVH_START_INFO_VERSION 1 /* version 1 adds memmap_paddr/memmap_entries */

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info ABI size");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry ABI size");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry ABI size");
_Static_assert(LAYOUT_PVH_START_INFO + sizeof(struct hvm_start_info) <= LAYOUT_PVH_MODLIST,
               "start info overlaps the module list");
_Static_assert(LAYOUT_PVH_MODLIST + sizeof(struct hvm_modlist_entry) <= LAYOUT_PVH_MEMMAP,
               "module list overlaps the memory map");
_Static_assert(BOOT_MEMORY_MAP_MAX <= LAYOUT_PVH_MEMMAP_MAX, "PVH memory map too small");

static int pvh_write_memmap(const struct guest_mem *mem, uint32_t *count)
{
    struct boot_mem_range map[BOOT_MEMORY_MAP_MAX];
    struct hvm_memmap_table_entry table[BOOT_MEMORY_MAP_MAX];
    int n = boot_memory_map(mem, map, BOOT_MEMORY_MAP_MAX);
    if (n < 0)
        return n;
    memset(table, 0, sizeof(table));
    for (int i = 0; i < n; i++)
        table[i] = (struct hvm_memmap_table_entry){
            .addr = map[i].addr, .size = map[i].size, .type = map[i].type};
    *count = (uint32_t)n;
    return guest_mem_write(mem, LAYOUT_PVH_MEMMAP, table, (uint64_t)n * sizeof(table[0]));
}

static int pvh_write_modlist(const struct guest_mem *mem, const struct boot_initrd *initrd)
{
    struct hvm_modlist_entry module = {.paddr = initrd->gpa, .size = initrd->size};
    return guest_mem_write(mem, LAYOUT_PVH_MODLIST, &module, sizeof(module));
}

int boot_pvh_write(const struct guest_mem *mem, const struct boot_initrd *initrd, uint64_t rsdp_gpa,
                   struct error *err)
{
    struct hvm_start_info info = {
        .magic = HVM_START_MAGIC_VALUE,
        .version = PVH_START_INFO_VERSION,
        .cmdline_paddr = LAYOUT_CMDLINE,
        .rsdp_paddr = rsdp_gpa,
        .memmap_paddr = LAYOUT_PVH_MEMMAP,
    };
    int rc = pvh_write_memmap(mem, &info.memmap_entries);
    if (!rc && initrd->size) {
        info.nr_modules = 1;
        info.modlist_paddr = LAYOUT_PVH_MODLIST;
        rc = pvh_write_modlist(mem, initrd);
    }
    if (!rc)
        rc = guest_mem_write(mem, LAYOUT_PVH_START_INFO, &info, sizeof(info));
    if (rc)
        return error_fmt(err, rc, "PVH: cannot write the start info at 0x%llx: %s",
                         LAYOUT_PVH_START_INFO, strerror(-rc));
    return 0;
}
