/* The guest's e820-style RAM map (shared by boot_params and PVH) and the RAM description
 * used in loader error messages. */
#include <asm/e820.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "boot_internal.h"
#include "kiln/boot/layout.h"

int boot_memory_map(const struct guest_mem *mem, struct boot_mem_range *entries, int n)
{
    struct boot_mem_range map[BOOT_MEMORY_MAP_MAX];
    int count = 0;
    uint64_t low_end = guest_mem_low_end(mem);
    uint64_t base_end = low_end < LAYOUT_EBDA_START ? low_end : LAYOUT_EBDA_START;

    if (base_end > 0)
        map[count++] = (struct boot_mem_range){0, base_end, E820_RAM};
    /* EBDA, VGA and BIOS area, as on a PC: Linux expects this hole below 1 MiB. */
    map[count++] = (struct boot_mem_range){LAYOUT_EBDA_START, LAYOUT_HIGH_START - LAYOUT_EBDA_START,
                                           E820_RESERVED};
    if (low_end > LAYOUT_HIGH_START)
        map[count++] =
            (struct boot_mem_range){LAYOUT_HIGH_START, low_end - LAYOUT_HIGH_START, E820_RAM};
    for (int i = 1; i < mem->nregions; i++)
        map[count++] = (struct boot_mem_range){mem->regions[i].gpa, mem->regions[i].size, E820_RAM};

    if (count > n)
        return -ENOSPC;
    memcpy(entries, map, (size_t)count * sizeof(map[0]));
    return count;
}

void boot_describe_ram(const struct guest_mem *mem, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < mem->nregions && used < len; i++) {
        const struct guest_mem_region *r = &mem->regions[i];
        int n = snprintf(buf + used, len - used, "%s0x%llx-0x%llx", i ? ", " : "",
                         (unsigned long long)r->gpa, (unsigned long long)(r->gpa + r->size));
        if (n < 0)
            break;
        used += (size_t)n;
    }
}
