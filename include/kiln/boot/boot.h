/* Kernel loaders: bzImage, ELF vmlinux and PVH ELF. They place the kernel, initrd and
 * command line in guest RAM, build boot_params or hvm_start_info, and say how to enter. */
#ifndef KILN_BOOT_H
#define KILN_BOOT_H

#include <stdint.h>

#include "kiln/util/error.h"
#include "kiln/vm/guest_mem.h"

struct boot_config {
    const char *kernel_path;
    const char *initrd_path; /* NULL: none */
    const char *cmdline;     /* never NULL */
    uint64_t rsdp_gpa;       /* ACPI RSDP for boot_params / start info; 0: none */
};

enum boot_entry_mode {
    BOOT_ENTRY_LINUX64, /* 64-bit Linux boot protocol: long mode, RSI = boot_params */
    BOOT_ENTRY_PVH32,   /* PVH: 32-bit flat protected mode, paging off, EBX = start info */
};

struct boot_entry {
    enum boot_entry_mode mode;
    uint64_t rip;
    uint64_t boot_info_gpa; /* LAYOUT_BOOT_PARAMS or LAYOUT_PVH_START_INFO */
    const char *format;     /* "bzImage", "ELF vmlinux" or "PVH ELF", for logs */
};

/* Loads everything and fills entry. On any problem: one-line message in err, negative errno,
 * and the caller must not start the VM. */
int boot_load(const struct guest_mem *mem, const struct boot_config *cfg, struct boot_entry *entry,
              struct error *err);

/* Writes the e820-style RAM map for mem into entries (max n), returns the count.
 * Shared by boot_params (e820) and PVH (hvm_memmap_table_entry) builders. */
struct boot_mem_range {
    uint64_t addr;
    uint64_t size;
    uint32_t type; /* E820 type: 1 RAM, 2 reserved */
};
int boot_memory_map(const struct guest_mem *mem, struct boot_mem_range *entries, int n);

/* boot_memory_map() returns at most this many entries (low RAM, the reserved EBDA/BIOS hole,
 * RAM from 1 MiB, RAM at 4 GiB); if n is smaller it writes nothing and returns -ENOSPC. */
#define BOOT_MEMORY_MAP_MAX 4

/* PVH start info (Xen public ABI, xen/include/public/arch-x86/hvm/start_info.h), which the
 * kernel UAPI headers do not carry. Version 1 adds the memory map. */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC_VALUE    0x336ec578U

struct hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
};

struct hvm_modlist_entry {
    uint64_t paddr;
    uint64_t size;
    uint64_t cmdline_paddr;
    uint64_t reserved;
};

struct hvm_memmap_table_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};

#endif
