/* boot_load(): detects the kernel format, validates kernel, command line and initrd before
 * writing anything big, then loads them and builds boot_params or the PVH start info. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "boot_internal.h"
#include "kiln/boot/layout.h"

/* Enough of the file to tell an ELF (magic at 0) from a bzImage ("HdrS" at 0x202). */
#define BOOT_DETECT_BYTES 0x208

void boot_kernel_release(struct boot_kernel *kernel)
{
    free(kernel->phdrs);
    kernel->phdrs = NULL;
    kernel->phnum = 0;
}

static int boot_kernel_parse(const struct guest_mem *mem, const struct boot_file *file,
                             struct boot_kernel *kernel, struct error *err)
{
    uint8_t head[BOOT_DETECT_BYTES];
    uint64_t len = file->size < sizeof(head) ? file->size : sizeof(head);
    int rc = boot_file_read(file, 0, head, len, "header", err);
    if (rc)
        return rc;
    if (boot_elf_detect(head, len))
        return boot_elf_parse(mem, file, kernel, err);
    if (boot_bzimage_detect(head, len))
        return boot_bzimage_parse(mem, file, kernel, err);
    return error_fmt(err, -ENOEXEC,
                     "kernel '%s': not an ELF or bzImage kernel image (expected an ELF vmlinux, "
                     "a PVH ELF or a bzImage)",
                     file->path);
}

static int boot_kernel_load(const struct guest_mem *mem, const struct boot_file *file,
                            const struct boot_kernel *kernel, struct error *err)
{
    if (kernel->format == BOOT_FORMAT_BZIMAGE)
        return boot_bzimage_load(mem, file, kernel, err);
    return boot_elf_load(mem, file, kernel, err);
}

/* The limit is the smaller of the kernel's and the room kiln reserves at LAYOUT_CMDLINE. */
static int boot_cmdline_check(const char *cmdline, const struct boot_kernel *kernel,
                              struct error *err)
{
    uint64_t len = strlen(cmdline);
    uint64_t kiln_max = LAYOUT_CMDLINE_MAX - 1;
    bool kiln_limits = kiln_max < kernel->cmdline_max;
    uint64_t max = kiln_limits ? kiln_max : kernel->cmdline_max;
    if (len > max)
        return error_fmt(err, -E2BIG, "--cmdline: %llu bytes is longer than %s limit of %llu bytes",
                         (unsigned long long)len, kiln_limits ? "kiln's" : "the kernel's",
                         (unsigned long long)max);
    return 0;
}

static int boot_cmdline_write(const struct guest_mem *mem, const char *cmdline, struct error *err)
{
    int rc = guest_mem_write(mem, LAYOUT_CMDLINE, cmdline, strlen(cmdline) + 1);
    if (rc)
        return error_fmt(err, rc, "--cmdline: cannot write the command line at 0x%llx: %s",
                         LAYOUT_CMDLINE, strerror(-rc));
    return 0;
}

static int boot_initrd_prepare(const struct guest_mem *mem, const char *path,
                               const struct boot_kernel *kernel, struct boot_file *file,
                               struct boot_initrd *initrd, struct error *err)
{
    int rc = boot_file_open(file, "--initrd", path, err);
    if (!rc)
        rc = boot_initrd_place(mem, file, kernel, initrd, err);
    return rc;
}

static int boot_info_write(const struct guest_mem *mem, const struct boot_kernel *kernel,
                           const struct boot_initrd *initrd, uint64_t rsdp_gpa, struct error *err)
{
    if (kernel->mode == BOOT_ENTRY_PVH32)
        return boot_pvh_write(mem, initrd, rsdp_gpa, err);
    return boot_params_write(mem, &kernel->hdr, initrd, rsdp_gpa, err);
}

int boot_load(const struct guest_mem *mem, const struct boot_config *cfg, struct boot_entry *entry,
              struct error *err)
{
    struct boot_file kfile = {.fd = -1}, ifile = {.fd = -1};
    struct boot_kernel kernel = {0};
    struct boot_initrd initrd = {0};
    const char *cmdline = cfg->cmdline ? cfg->cmdline : "";

    if (!cfg->kernel_path)
        return error_fmt(err, -EINVAL, "kernel: no kernel image given");
    /* Everything that can be wrong with the user's inputs is found before the big copies. */
    int rc = boot_file_open(&kfile, "kernel", cfg->kernel_path, err);
    if (!rc)
        rc = boot_kernel_parse(mem, &kfile, &kernel, err);
    if (!rc)
        rc = boot_cmdline_check(cmdline, &kernel, err);
    if (!rc && cfg->initrd_path)
        rc = boot_initrd_prepare(mem, cfg->initrd_path, &kernel, &ifile, &initrd, err);
    if (!rc)
        rc = boot_kernel_load(mem, &kfile, &kernel, err);
    if (!rc)
        rc = boot_file_read_to_guest(&ifile, 0, initrd.size, mem, initrd.gpa, "initrd", err);
    if (!rc)
        rc = boot_cmdline_write(mem, cmdline, err);
    if (!rc)
        rc = boot_info_write(mem, &kernel, &initrd, cfg->rsdp_gpa, err);
    if (!rc)
        *entry = (struct boot_entry){
            .mode = kernel.mode,
            .rip = kernel.entry,
            .boot_info_gpa =
                kernel.mode == BOOT_ENTRY_PVH32 ? LAYOUT_PVH_START_INFO : LAYOUT_BOOT_PARAMS,
            .format = kernel.format_name,
        };

    boot_kernel_release(&kernel);
    boot_file_close(&ifile);
    boot_file_close(&kfile);
    return rc;
}
