/* bzImage loader: validates the setup header (protocol >= 2.12, 64-bit entry), copies it for
 * boot_params, and loads the protected-mode kernel at 1 MiB. No real-mode setup code runs. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "boot_internal.h"
#include "kiln/boot/layout.h"

#define BZ_SETUP_HEADER_OFFSET offsetof(struct boot_params, hdr) /* 0x1f1 */
#define BZ_BOOT_FLAG_OFFSET    0x1fe
#define BZ_JUMP_OFFSET         0x200 /* 2-byte short jump; its operand gives the header's end */
#define BZ_HEADER_MAGIC_OFFSET 0x202
#define BZ_MIN_VERSION         0x020c /* 2.12: xloadflags, so XLF_KERNEL_64 can be checked */
#define BZ_DEFAULT_SETUP_SECTS 4      /* setup_sects 0 means 4 */
#define BZ_SECTOR_SIZE         512
#define BZ_ENTRY64_OFFSET      0x200       /* startup_64 is 0x200 past the protected-mode start */
#define BZ_OLD_INITRD_ADDR_MAX 0x37ffffffU /* what initrd_addr_max 0 meant before 2.03 */

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

bool boot_bzimage_detect(const uint8_t *head, size_t len)
{
    return len >= BZ_HEADER_MAGIC_OFFSET + 4 &&
           le16(head + BZ_BOOT_FLAG_OFFSET) == BOOT_FLAG_MAGIC &&
           memcmp(head + BZ_HEADER_MAGIC_OFFSET, "HdrS", 4) == 0;
}

/* The header runs from 0x1f1 to the jump target at 0x202 + jump operand; fields beyond what
 * this image has stay zero, fields beyond what the UAPI struct knows are not copied. */
static int bzimage_read_header(const struct boot_file *file, struct setup_header *hdr,
                               struct error *err)
{
    uint8_t jump[2];
    int rc = boot_file_read(file, BZ_JUMP_OFFSET, jump, sizeof(jump), "bzImage setup header", err);
    if (rc)
        return rc;
    uint64_t end = BZ_HEADER_MAGIC_OFFSET + jump[1];
    uint64_t len = end - BZ_SETUP_HEADER_OFFSET;
    if (len > sizeof(*hdr))
        len = sizeof(*hdr);
    memset(hdr, 0, sizeof(*hdr));
    return boot_file_read(file, BZ_SETUP_HEADER_OFFSET, hdr, len, "bzImage setup header", err);
}

static int bzimage_check_protocol(const struct boot_file *file, const struct setup_header *hdr,
                                  struct error *err)
{
    unsigned major = hdr->version >> 8, minor = hdr->version & 0xff;
    if (hdr->version < BZ_MIN_VERSION)
        return error_fmt(err, -ENOEXEC,
                         "kernel '%s': bzImage boot protocol %u.%02u is too old (need 2.12 or "
                         "newer with a 64-bit entry point)",
                         file->path, major, minor);
    if (!(hdr->xloadflags & XLF_KERNEL_64))
        return error_fmt(err, -ENOEXEC,
                         "kernel '%s': bzImage (boot protocol %u.%02u) has no 64-bit entry point "
                         "(need 2.12 or newer with a 64-bit entry point)",
                         file->path, major, minor);
    return 0;
}

/* The kernel decompresses itself to max(load address, pref_address) and needs init_size bytes
 * from there; the initrd must stay above all of it. */
static uint64_t bzimage_end(const struct setup_header *hdr, uint64_t pm_size)
{
    uint64_t image_end = LAYOUT_KERNEL_LOAD + pm_size;
    uint64_t run_start =
        hdr->pref_address > LAYOUT_KERNEL_LOAD ? hdr->pref_address : LAYOUT_KERNEL_LOAD;
    uint64_t run_end = boot_add_sat(run_start, hdr->init_size);
    return run_end > image_end ? run_end : image_end;
}

int boot_bzimage_parse(const struct guest_mem *mem, const struct boot_file *file,
                       struct boot_kernel *kernel, struct error *err)
{
    struct setup_header *hdr = &kernel->hdr;
    int rc = bzimage_read_header(file, hdr, err);
    if (!rc)
        rc = bzimage_check_protocol(file, hdr, err);
    if (rc)
        return rc;

    uint64_t sects = hdr->setup_sects ? hdr->setup_sects : BZ_DEFAULT_SETUP_SECTS;
    uint64_t setup_size = (sects + 1) * BZ_SECTOR_SIZE;
    /* syssize (16-byte units) is how much protected-mode code the build wrote. */
    uint64_t pm_expected = (uint64_t)hdr->syssize * 16;
    rc = boot_file_need(file, setup_size, pm_expected ? pm_expected : 1,
                        "bzImage protected-mode kernel", err);
    if (rc)
        return rc;

    kernel->pm_offset = setup_size;
    kernel->pm_size = file->size - setup_size;
    kernel->end = bzimage_end(hdr, kernel->pm_size);
    uint64_t low_end = guest_mem_low_end(mem);
    if (kernel->end > low_end)
        return error_fmt(err, -ENOMEM,
                         "kernel '%s': bzImage needs guest RAM up to 0x%llx to load and "
                         "decompress, but guest RAM below 4 GiB ends at 0x%llx; give the VM "
                         "more --memory",
                         file->path, (unsigned long long)kernel->end, (unsigned long long)low_end);

    kernel->format = BOOT_FORMAT_BZIMAGE;
    kernel->mode = BOOT_ENTRY_LINUX64;
    kernel->format_name = "bzImage";
    kernel->entry = LAYOUT_KERNEL_LOAD + BZ_ENTRY64_OFFSET;
    kernel->cmdline_max = hdr->cmdline_size;
    kernel->initrd_end_max =
        (uint64_t)(hdr->initrd_addr_max ? hdr->initrd_addr_max : BZ_OLD_INITRD_ADDR_MAX) + 1;
    return 0;
}

int boot_bzimage_load(const struct guest_mem *mem, const struct boot_file *file,
                      const struct boot_kernel *kernel, struct error *err)
{
    return boot_file_read_to_guest(file, kernel->pm_offset, kernel->pm_size, mem,
                                   LAYOUT_KERNEL_LOAD, "bzImage protected-mode kernel", err);
}
