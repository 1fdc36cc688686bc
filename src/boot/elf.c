/* ELF kernel loader: validates the ELF header (64-bit, or 32-bit with a PVH note) and every
 * program header against the file and guest RAM, loads PT_LOAD segments at p_paddr, and picks
 * the PVH or the 64-bit Linux entry. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot_internal.h"
#include "kiln/boot/layout.h"

/* Start of the x86-64 kernel text mapping (__START_KERNEL_map): an e_entry at or above it is
 * virtual and has to go through its segment's p_vaddr -> p_paddr. */
#define ELF_KERNEL_VIRT_BASE 0xffffffff80000000ULL
/* What kiln tells an ELF vmlinux about where an initrd may go (as bzImages usually say). */
#define ELF_VMLINUX_INITRD_ADDR_MAX 0x7fffffffU

bool boot_elf_detect(const uint8_t *head, size_t len)
{
    return len >= SELFMAG && memcmp(head, ELFMAG, SELFMAG) == 0;
}

/* The ELF header fields the loader uses, the same for ELFCLASS32 and ELFCLASS64 files. A
 * 32-bit ELF is accepted only with a PVH note: its entry is 32-bit code, as PVH's always is. */
struct elf_header {
    bool is32;
    uint16_t type, machine, phentsize, phnum;
    uint64_t entry, phoff;
};

static int elf_read_header(const struct boot_file *file, struct elf_header *h, struct error *err)
{
    unsigned char ident[EI_NIDENT];
    int rc = boot_file_read(file, 0, ident, sizeof(ident), "ELF header", err);
    if (rc)
        return rc;
    if (ident[EI_CLASS] != ELFCLASS32 && ident[EI_CLASS] != ELFCLASS64)
        return error_fmt(err, -ENOEXEC,
                         "kernel '%s': ELF class %u is not supported; expected a 64-bit x86-64 ELF "
                         "or a 32-bit x86 PVH ELF",
                         file->path, ident[EI_CLASS]);
    if (ident[EI_DATA] != ELFDATA2LSB)
        return error_fmt(err, -ENOEXEC,
                         "kernel '%s': ELF data encoding %u is not little-endian (ELFDATA2LSB)",
                         file->path, ident[EI_DATA]);
    h->is32 = ident[EI_CLASS] == ELFCLASS32;
    if (h->is32) {
        Elf32_Ehdr eh = {0};
        rc = boot_file_read(file, 0, &eh, sizeof(eh), "ELF header", err);
        *h = (struct elf_header){true,       eh.e_type,  eh.e_machine, eh.e_phentsize,
                                 eh.e_phnum, eh.e_entry, eh.e_phoff};
    } else {
        Elf64_Ehdr eh = {0};
        rc = boot_file_read(file, 0, &eh, sizeof(eh), "ELF header", err);
        *h = (struct elf_header){false,      eh.e_type,  eh.e_machine, eh.e_phentsize,
                                 eh.e_phnum, eh.e_entry, eh.e_phoff};
    }
    return rc;
}

static int elf_check_header(const struct boot_file *file, const struct elf_header *h,
                            struct error *err)
{
    const char *path = file->path;
    unsigned machine = h->is32 ? EM_386 : EM_X86_64;
    size_t phentsize = h->is32 ? sizeof(Elf32_Phdr) : sizeof(Elf64_Phdr);
    if (h->machine != machine)
        return error_fmt(err, -ENOEXEC, "kernel '%s': ELF machine %u is not %s (expected %s, %u)",
                         path, h->machine, h->is32 ? "x86" : "x86-64",
                         h->is32 ? "EM_386 in a 32-bit ELF" : "EM_X86_64", machine);
    if (h->type != ET_EXEC)
        return error_fmt(err, -ENOEXEC,
                         "kernel '%s': ELF type %u is not an executable (expected ET_EXEC, %u)",
                         path, h->type, ET_EXEC);
    if (h->phentsize != phentsize)
        return error_fmt(err, -ENOEXEC,
                         "kernel '%s': ELF program header size %u is wrong (expected %zu)", path,
                         h->phentsize, phentsize);
    /* PN_XNUM would move the real count into section 0; no kernel needs that many. */
    if (h->phnum == 0 || h->phnum == PN_XNUM)
        return error_fmt(err, -ENOEXEC, "kernel '%s': ELF has %s program headers", path,
                         h->phnum ? "too many" : "no");
    return 0;
}

/* Widens a 32-bit program header table in place: entry i of the Elf32_Phdr array at the start
 * of the buffer becomes Elf64_Phdr i, walking down so that no entry is overwritten unread. */
static void elf_widen_phdrs(Elf64_Phdr *phdrs, unsigned phnum)
{
    for (unsigned i = phnum; i-- > 0;) {
        Elf32_Phdr ph;
        memcpy(&ph, (const uint8_t *)phdrs + (size_t)i * sizeof(ph), sizeof(ph));
        phdrs[i] = (Elf64_Phdr){.p_type = ph.p_type,
                                .p_flags = ph.p_flags,
                                .p_offset = ph.p_offset,
                                .p_vaddr = ph.p_vaddr,
                                .p_paddr = ph.p_paddr,
                                .p_filesz = ph.p_filesz,
                                .p_memsz = ph.p_memsz,
                                .p_align = ph.p_align};
    }
}

static int elf_read_phdrs(const struct boot_file *file, const struct elf_header *h,
                          struct boot_kernel *kernel, struct error *err)
{
    uint64_t len = (uint64_t)h->phnum * h->phentsize;
    /* Check before allocating, so a bogus e_phoff costs nothing. */
    int rc = boot_file_need(file, h->phoff, len, "program header table", err);
    if (rc)
        return rc;
    kernel->phdrs = malloc((size_t)h->phnum * sizeof(Elf64_Phdr));
    if (!kernel->phdrs)
        return error_fmt(err, -ENOMEM, "kernel '%s': out of memory for program headers",
                         file->path);
    kernel->phnum = h->phnum;
    rc = boot_file_read(file, h->phoff, kernel->phdrs, len, "program header table", err);
    if (!rc && h->is32)
        elf_widen_phdrs(kernel->phdrs, kernel->phnum);
    return rc;
}

static int elf_check_load(const struct guest_mem *mem, const struct boot_file *file, unsigned i,
                          const Elf64_Phdr *ph, struct error *err)
{
    char what[64];
    snprintf(what, sizeof(what), "segment %u data", i);
    int rc = boot_file_need(file, ph->p_offset, ph->p_filesz, what, err);
    if (rc)
        return rc;
    unsigned long long addr = ph->p_paddr, size = ph->p_memsz;
    if (ph->p_filesz > ph->p_memsz)
        return error_fmt(err, -ENOEXEC,
                         "kernel '%s': segment %u has a file size 0x%llx larger than its memory "
                         "size 0x%llx",
                         file->path, i, (unsigned long long)ph->p_filesz, size);
    if (addr < LAYOUT_HIGH_START)
        return error_fmt(err, -ENOEXEC,
                         "kernel '%s': segment %u at 0x%llx (size 0x%llx) is below 1 MiB, where "
                         "kiln keeps its boot structures; link the kernel at 0x100000 or above",
                         file->path, i, addr, size);
    if (!guest_mem_ptr(mem, addr, size)) {
        char ram[128];
        boot_describe_ram(mem, ram, sizeof(ram));
        return error_fmt(err, -ENOMEM,
                         "kernel '%s': segment %u at 0x%llx (size 0x%llx) is outside guest RAM "
                         "(%s)",
                         file->path, i, addr, size, ram);
    }
    return 0;
}

static bool elf_is_loaded(const Elf64_Phdr *ph)
{
    /* p_filesz alone still counts, so that filesz > memsz is caught rather than skipped. */
    return ph->p_type == PT_LOAD && (ph->p_memsz > 0 || ph->p_filesz > 0);
}

static int elf_check_segments(const struct guest_mem *mem, const struct boot_file *file,
                              struct boot_kernel *kernel, struct error *err)
{
    uint64_t end = 0;
    for (unsigned i = 0; i < kernel->phnum; i++) {
        const Elf64_Phdr *ph = &kernel->phdrs[i];
        if (!elf_is_loaded(ph))
            continue;
        int rc = elf_check_load(mem, file, i, ph, err);
        if (rc)
            return rc;
        if (ph->p_paddr + ph->p_memsz > end)
            end = ph->p_paddr + ph->p_memsz;
    }
    if (end == 0)
        return error_fmt(err, -ENOEXEC, "kernel '%s': ELF has no loadable (PT_LOAD) segments",
                         file->path);
    kernel->end = end;
    return 0;
}

/* vmlinux's e_entry is physical (ENTRY(phys_startup_64)); other linkers may leave the
 * virtual one. Either way the result must land inside a loaded segment. */
static int elf_physical_entry(const struct boot_file *file, const struct boot_kernel *kernel,
                              uint64_t entry, bool may_be_virtual, uint64_t *phys,
                              struct error *err)
{
    bool virt = may_be_virtual && entry >= ELF_KERNEL_VIRT_BASE;
    for (unsigned i = 0; i < kernel->phnum; i++) {
        const Elf64_Phdr *ph = &kernel->phdrs[i];
        uint64_t base = virt ? ph->p_vaddr : ph->p_paddr;
        if (!elf_is_loaded(ph) || entry < base || entry - base >= ph->p_memsz)
            continue;
        *phys = ph->p_paddr + (entry - base);
        return 0;
    }
    return error_fmt(err, -ENOEXEC,
                     "kernel '%s': entry point 0x%llx is not inside any loadable segment",
                     file->path, (unsigned long long)entry);
}

static int elf_choose_entry(const struct boot_file *file, const struct elf_header *h,
                            struct boot_kernel *kernel, struct error *err)
{
    uint32_t pvh_entry;
    bool pvh;
    int rc = boot_elf_find_pvh_entry(file, kernel->phdrs, kernel->phnum, &pvh_entry, &pvh, err);
    if (rc)
        return rc;
    if (pvh) {
        kernel->mode = BOOT_ENTRY_PVH32;
        kernel->format_name = "PVH ELF";
        /* No limit of its own is known (PVH guests need not be Linux): kiln's applies. */
        kernel->cmdline_max = UINT64_MAX;
        kernel->initrd_end_max = UINT64_MAX;
        return elf_physical_entry(file, kernel, pvh_entry, false, &kernel->entry, err);
    }
    if (h->is32)
        return error_fmt(err, -ENOEXEC,
                         "kernel '%s': 32-bit ELF without a PVH entry note "
                         "(XEN_ELFNOTE_PHYS32_ENTRY); expected a PVH kernel or a 64-bit x86-64 ELF",
                         file->path);
    kernel->mode = BOOT_ENTRY_LINUX64;
    kernel->format_name = "ELF vmlinux";
    boot_params_vmlinux_header(&kernel->hdr);
    kernel->cmdline_max = kernel->hdr.cmdline_size;
    kernel->initrd_end_max = (uint64_t)kernel->hdr.initrd_addr_max + 1;
    return elf_physical_entry(file, kernel, h->entry, true, &kernel->entry, err);
}

int boot_elf_parse(const struct guest_mem *mem, const struct boot_file *file,
                   struct boot_kernel *kernel, struct error *err)
{
    struct elf_header h = {0};
    int rc = elf_read_header(file, &h, err);
    if (!rc)
        rc = elf_check_header(file, &h, err);
    if (!rc)
        rc = elf_read_phdrs(file, &h, kernel, err);
    if (!rc)
        rc = elf_check_segments(mem, file, kernel, err);
    if (!rc)
        rc = elf_choose_entry(file, &h, kernel, err);
    kernel->format = BOOT_FORMAT_ELF;
    return rc;
}

int boot_elf_load(const struct guest_mem *mem, const struct boot_file *file,
                  const struct boot_kernel *kernel, struct error *err)
{
    for (unsigned i = 0; i < kernel->phnum; i++) {
        const Elf64_Phdr *ph = &kernel->phdrs[i];
        if (!elf_is_loaded(ph))
            continue;
        uint8_t *seg = guest_mem_ptr(mem, ph->p_paddr, ph->p_memsz);
        if (!seg) /* boot_elf_parse() checked this; guard against misuse */
            return error_fmt(err, -EFAULT, "kernel '%s': segment %u is outside guest RAM",
                             file->path, i);
        char what[64];
        snprintf(what, sizeof(what), "segment %u data", i);
        int rc = boot_file_read(file, ph->p_offset, seg, ph->p_filesz, what, err);
        if (rc)
            return rc;
        /* .bss: guest RAM may hold a previous boot's bytes, so zero it explicitly. */
        memset(seg + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
    }
    return 0;
}
