/* The Linux zero page (struct boot_params) for the 64-bit boot protocol: the setup header a
 * vmlinux lacks, and the fields kiln fills as the boot loader (cmdline, initrd, e820). */
#include <asm/e820.h>
#include <errno.h>
#include <string.h>

#include "boot_internal.h"
#include "kiln/boot/layout.h"

/* Protocol 2.15: the newest whose fields kiln fills; a vmlinux reads only a few of them. */
#define VMLINUX_PROTOCOL_VERSION 0x020f
/* CONFIG_PHYSICAL_ALIGN's usual value, as bzImages advertise it. */
#define VMLINUX_KERNEL_ALIGNMENT 0x1000000U

_Static_assert(sizeof(struct boot_params) == 4096, "boot_params is the 4 KiB zero page");

void boot_params_vmlinux_header(struct setup_header *hdr)
{
    memset(hdr, 0, sizeof(*hdr));
    hdr->boot_flag = BOOT_FLAG_MAGIC;
    hdr->header = BOOT_HDR_MAGIC;
    hdr->version = VMLINUX_PROTOCOL_VERSION;
    hdr->kernel_alignment = VMLINUX_KERNEL_ALIGNMENT;
    hdr->cmdline_size = BOOT_LINUX_CMDLINE_SIZE - 1; /* as header.S: COMMAND_LINE_SIZE - 1 */
    hdr->initrd_addr_max = 0x7fffffff;
}

static int boot_params_e820(const struct guest_mem *mem, struct boot_params *bp)
{
    struct boot_mem_range map[BOOT_MEMORY_MAP_MAX];
    int n = boot_memory_map(mem, map, BOOT_MEMORY_MAP_MAX);
    if (n < 0)
        return n;
    _Static_assert(BOOT_MEMORY_MAP_MAX <= E820_MAX_ENTRIES_ZEROPAGE, "e820 table too small");
    for (int i = 0; i < n; i++) {
        bp->e820_table[i].addr = map[i].addr;
        bp->e820_table[i].size = map[i].size;
        bp->e820_table[i].type = map[i].type;
    }
    bp->e820_entries = (uint8_t)n;
    return 0;
}

int boot_params_write(const struct guest_mem *mem, const struct setup_header *hdr,
                      const struct boot_initrd *initrd, uint64_t rsdp_gpa, struct error *err)
{
    /* Built off to the side, then copied: the rest of the page must be zero (boot.rst). */
    struct boot_params bp;
    memset(&bp, 0, sizeof(bp));
    bp.hdr = *hdr;
    bp.hdr.type_of_loader = BOOT_LOADER_UNDEFINED;
    bp.hdr.loadflags |= LOADED_HIGH;
    bp.hdr.cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE;
    bp.ext_cmd_line_ptr = (uint32_t)(LAYOUT_CMDLINE >> 32);
    bp.hdr.ramdisk_image = (uint32_t)initrd->gpa;
    bp.ext_ramdisk_image = (uint32_t)(initrd->gpa >> 32);
    bp.hdr.ramdisk_size = (uint32_t)initrd->size;
    bp.ext_ramdisk_size = (uint32_t)(initrd->size >> 32);
    bp.acpi_rsdp_addr = rsdp_gpa;
    int rc = boot_params_e820(mem, &bp);
    if (!rc)
        rc = guest_mem_write(mem, LAYOUT_BOOT_PARAMS, &bp, sizeof(bp));
    if (rc)
        return error_fmt(err, rc, "boot_params: cannot write the zero page at 0x%llx: %s",
                         LAYOUT_BOOT_PARAMS, strerror(-rc));
    return 0;
}
