/* The guest-physical memory map kiln builds before the first instruction: where the GDT,
 * boot page tables, boot_params, PVH start info, command line and kernel go. */
#ifndef KILN_LAYOUT_H
#define KILN_LAYOUT_H

/* Low memory (first 640 KiB). Everything here is rebuilt at each boot. */
#define LAYOUT_GDT            0x0500ULL /* 4 descriptors: null, unused, code64/32, data */
#define LAYOUT_PML4           0x1000ULL /* 64-bit boot page tables: identity map of 4 GiB */
#define LAYOUT_PDPT           0x2000ULL
#define LAYOUT_PD             0x3000ULL /* 4 pages: 0x3000..0x6fff, 2 MiB entries */
#define LAYOUT_BOOT_PARAMS    0x7000ULL /* Linux zero page (struct boot_params, 4 KiB) */
#define LAYOUT_PVH_START_INFO 0x8000ULL /* struct hvm_start_info, then modlist, then memmap */
#define LAYOUT_PVH_MODLIST    0x8100ULL
#define LAYOUT_PVH_MEMMAP     0x8200ULL /* up to 128 entries of 24 bytes: ends < 0x9000 */
#define LAYOUT_PVH_MEMMAP_MAX 128
#define LAYOUT_BOOT_STACK     0x8ff0ULL   /* initial RSP for 64-bit Linux entry */
#define LAYOUT_CMDLINE        0x20000ULL  /* kernel command line */
#define LAYOUT_CMDLINE_MAX    0x10000ULL  /* hard cap, below any kernel's own limit check */
#define LAYOUT_EBDA_START     0x9fc00ULL  /* end of usable low RAM (e820) */
#define LAYOUT_HIGH_START     0x100000ULL /* 1 MiB: start of RAM above the legacy hole */
#define LAYOUT_KERNEL_LOAD    0x100000ULL /* bzImage protected-mode kernel goes here */

/* GDT selectors as the Linux boot protocol expects (__BOOT_CS 0x10, __BOOT_DS 0x18). */
#define LAYOUT_SEL_CODE 0x10
#define LAYOUT_SEL_DATA 0x18

/* In the MMIO hole: KVM needs three pages for the TSS and one for the identity map (Intel). */
#define LAYOUT_KVM_IDENTITY_MAP 0xfffbc000ULL
#define LAYOUT_KVM_TSS          0xfffbd000ULL

#endif
