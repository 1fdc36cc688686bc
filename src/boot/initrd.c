/* initrd placement: page-aligned, as high as the kernel allows in RAM below the MMIO hole,
 * and above everything the kernel occupies. An empty initrd file is refused. */
#include <errno.h>

#include "boot_internal.h"
#include "kiln/boot/layout.h"

#define MIB (1ULL << 20)

int boot_initrd_place(const struct guest_mem *mem, const struct boot_file *file,
                      const struct boot_kernel *kernel, struct boot_initrd *initrd,
                      struct error *err)
{
    /* The kernel would treat ramdisk_size 0 as "no initrd" and fail much later, far from
     * the cause (usually a failed build step), so say it now. */
    if (file->size == 0)
        return error_fmt(err, -EINVAL, "--initrd '%s': file is empty", file->path);

    uint64_t top = guest_mem_low_end(mem);
    if (kernel->initrd_end_max < top)
        top = kernel->initrd_end_max;
    uint64_t floor = boot_align_up(
        kernel->end > LAYOUT_HIGH_START ? kernel->end : LAYOUT_HIGH_START, BOOT_PAGE_SIZE);
    uint64_t gpa = file->size <= top ? (top - file->size) & ~(BOOT_PAGE_SIZE - 1) : 0;
    if (file->size > top || gpa < floor)
        return error_fmt(err, -ENOMEM,
                         "--initrd '%s': %llu MiB does not fit in guest RAM below 0x%llx "
                         "(%llu MiB free; give the VM more --memory)",
                         file->path, (unsigned long long)((file->size + MIB - 1) / MIB),
                         (unsigned long long)top,
                         (unsigned long long)(top > floor ? (top - floor) / MIB : 0));
    *initrd = (struct boot_initrd){.gpa = gpa, .size = file->size};
    return 0;
}
