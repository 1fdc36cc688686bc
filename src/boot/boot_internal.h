/* Internal interfaces of the kernel loaders: the checked file reader, the parsed-kernel
 * description each format fills in, and the builders boot_load() calls in order. */
#ifndef KILN_BOOT_INTERNAL_H
#define KILN_BOOT_INTERNAL_H

#include <asm/bootparam.h>
#include <elf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/boot/boot.h"

/* Linux boot protocol values (Documentation/arch/x86/boot.rst) that no UAPI header names. */
#define BOOT_HDR_MAGIC          0x53726448U /* "HdrS" at 0x202 */
#define BOOT_FLAG_MAGIC         0xAA55U     /* boot_flag at 0x1fe */
#define BOOT_LOADER_UNDEFINED   0xffU       /* type_of_loader for a loader with no assigned id */
#define BOOT_LINUX_CMDLINE_SIZE 2048U       /* x86 COMMAND_LINE_SIZE, including the NUL */

#define BOOT_PAGE_SIZE 0x1000ULL

static inline uint64_t boot_align_up(uint64_t value, uint64_t align)
{
    return (value + align - 1) & ~(align - 1);
}

static inline uint64_t boot_add_sat(uint64_t a, uint64_t b)
{
    uint64_t sum;
    return __builtin_add_overflow(a, b, &sum) ? UINT64_MAX : sum;
}

/* An input file (kernel or initrd) opened for reading. label and path name it in messages:
 * "kernel 'PATH': ..." or "--initrd 'PATH': ...". */
struct boot_file {
    int fd;
    uint64_t size;
    const char *label;
    const char *path;
};

int boot_file_open(struct boot_file *file, const char *label, const char *path, struct error *err);
void boot_file_close(struct boot_file *file);
/* Fails with "truncated (WHAT; file has N bytes, expected M bytes)" unless
 * [offset, offset+len) lies inside the file. */
int boot_file_need(const struct boot_file *file, uint64_t offset, uint64_t len, const char *what,
                   struct error *err);
/* Reads exactly len bytes at offset; a short read is reported as truncation of WHAT. */
int boot_file_read(const struct boot_file *file, uint64_t offset, void *buf, uint64_t len,
                   const char *what, struct error *err);
/* Reads len file bytes at offset straight into guest RAM at gpa. */
int boot_file_read_to_guest(const struct boot_file *file, uint64_t offset, uint64_t len,
                            const struct guest_mem *mem, uint64_t gpa, const char *what,
                            struct error *err);

enum boot_format { BOOT_FORMAT_BZIMAGE, BOOT_FORMAT_ELF };

/* What parsing a kernel found. Parsing validates everything; loading only copies. */
struct boot_kernel {
    enum boot_format format;
    enum boot_entry_mode mode;
    const char *format_name; /* for struct boot_entry */
    uint64_t entry;          /* guest-physical entry point */
    uint64_t end;            /* first byte above all RAM the kernel occupies */
    uint64_t cmdline_max;    /* kernel's command-line limit without the NUL; UINT64_MAX: none */
    uint64_t initrd_end_max; /* an initrd must end at or below this address */
    struct setup_header hdr; /* BOOT_ENTRY_LINUX64: the header boot_params starts from */
    uint64_t pm_offset;      /* bzImage: protected-mode kernel in the file ... */
    uint64_t pm_size;        /* ... copied to LAYOUT_KERNEL_LOAD */
    Elf64_Phdr *phdrs;       /* ELF: program header table (malloc'd) */
    unsigned phnum;
};

void boot_kernel_release(struct boot_kernel *kernel);

bool boot_bzimage_detect(const uint8_t *head, size_t len);
int boot_bzimage_parse(const struct guest_mem *mem, const struct boot_file *file,
                       struct boot_kernel *kernel, struct error *err);
int boot_bzimage_load(const struct guest_mem *mem, const struct boot_file *file,
                      const struct boot_kernel *kernel, struct error *err);

bool boot_elf_detect(const uint8_t *head, size_t len);
int boot_elf_parse(const struct guest_mem *mem, const struct boot_file *file,
                   struct boot_kernel *kernel, struct error *err);
int boot_elf_load(const struct guest_mem *mem, const struct boot_file *file,
                  const struct boot_kernel *kernel, struct error *err);
/* Looks for a Xen PHYS32_ENTRY note in the PT_NOTE segments; *found says whether one was. */
int boot_elf_find_pvh_entry(const struct boot_file *file, const Elf64_Phdr *phdrs, unsigned phnum,
                            uint32_t *entry, bool *found, struct error *err);

/* Where the initrd went; size 0 means none. */
struct boot_initrd {
    uint64_t gpa;
    uint64_t size;
};

/* Chooses the initrd's address (see initrd.c) without touching guest RAM. */
int boot_initrd_place(const struct guest_mem *mem, const struct boot_file *file,
                      const struct boot_kernel *kernel, struct boot_initrd *initrd,
                      struct error *err);

/* The 64-bit boot protocol header kiln supplies for an ELF vmlinux, which has none. */
void boot_params_vmlinux_header(struct setup_header *hdr);
/* Builds the zero page at LAYOUT_BOOT_PARAMS from hdr plus kiln's fields. */
int boot_params_write(const struct guest_mem *mem, const struct setup_header *hdr,
                      const struct boot_initrd *initrd, uint64_t rsdp_gpa, struct error *err);
/* Builds hvm_start_info, the module list and the memory map at LAYOUT_PVH_*. */
int boot_pvh_write(const struct guest_mem *mem, const struct boot_initrd *initrd, uint64_t rsdp_gpa,
                   struct error *err);

/* "0x0-0x4000000" or "0x0-0xc0000000, 0x100000000-0x104000000": guest RAM for messages. */
void boot_describe_ram(const struct guest_mem *mem, char *buf, size_t len);

#endif
