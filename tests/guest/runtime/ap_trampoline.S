/* Guest kit AP start-up: the real-mode trampoline an AP runs after SIPI (copied below 1 MiB
 * by ap_boot_prepare), and the 64-bit stub that gives it a stack and calls its C entry. */
#include "apic.h"

#define EFER_MSR 0xc0000080
#define EFER_LME 0x100
#define CR0_PE 0x1
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
/* The trampoline's own GDT keeps the kit's selectors (0x08 64-bit code, 0x10 data; the IDT's
 * gates name 0x08) and adds the 32-bit code segment the mode switch passes through. */
#define SEL_CODE64 0x08
#define SEL_DATA 0x10
#define SEL_CODE32 0x18

/* Addresses inside the blob, as the AP sees them once it runs at AP_TRAMPOLINE_PADDR. */
#define TRAMPOLINE(label) (AP_TRAMPOLINE_PADDR + (label - ap_trampoline_start))

/* Read-only here: only the copy runs, and ap_boot_prepare patches the copy's CR3 slot. */
	.section .rodata.ap_trampoline, "a", @progbits
	.balign 16
	.globl ap_trampoline_start, ap_trampoline_end, ap_trampoline_cr3
	.code16
ap_trampoline_start:
	/* SIPI leaves CS = page number << 8, IP = 0, other segments 0, interrupts masked by
	 * INIT; cli anyway, the AP must take nothing until the kit's IDT is loaded. */
	cli
	lgdtl %cs:(tramp_gdt_desc - ap_trampoline_start)
	mov %cr0, %eax
	or $CR0_PE, %eax
	mov %eax, %cr0
	ljmpl $SEL_CODE32, $TRAMPOLINE(tramp_pm32)

	.code32
tramp_pm32:
	mov $SEL_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	/* The same steps as the BSP's entry.S: PAE, the BSP's page tables, LME, paging. */
	mov %cr4, %eax
	or $CR4_PAE, %eax
	mov %eax, %cr4
	mov TRAMPOLINE(ap_trampoline_cr3), %eax
	mov %eax, %cr3
	mov $EFER_MSR, %ecx
	mov $EFER_LME, %eax
	xor %edx, %edx
	wrmsr
	mov %cr0, %eax
	or $CR0_PG, %eax
	mov %eax, %cr0
	/* ap_start64 is in the kit's image at 1 MiB, which the page tables identity-map. */
	ljmp $SEL_CODE64, $ap_start64

	.balign 8
tramp_gdt:
	.quad 0
	.quad 0x00af9a000000ffff /* 0x08: 64-bit code, DPL 0 */
	.quad 0x00cf92000000ffff /* 0x10: flat data, DPL 0 */
	.quad 0x00cf9a000000ffff /* 0x18: flat 32-bit code, DPL 0 */
tramp_gdt_end:
tramp_gdt_desc:
	.word tramp_gdt_end - tramp_gdt - 1
	.long TRAMPOLINE(tramp_gdt)
ap_trampoline_cr3:
	.long 0 /* filled in the copy by ap_boot_prepare */
ap_trampoline_end:

	.text
	.code64
ap_start64:
	mov $SEL_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	/* The BSP's tables from here on, so nothing the AP uses depends on the copy below
	 * 1 MiB any more; the selectors mean the same in both GDTs. */
	lgdt ap_boot_gdtr(%rip)
	lidt ap_boot_idtr(%rip)
	/* A stack ticket: APs may run this at the same time, each needs its own stack. */
	mov $1, %eax
	lock xadd %eax, ap_boot_next_stack(%rip)
	cmp ap_boot_nstacks(%rip), %eax
	jae ap_park
	inc %eax /* the stack grows down from the end of its slot */
	imul ap_boot_stack_size(%rip), %rax
	add ap_boot_stacks(%rip), %rax
	mov %rax, %rsp
	call *ap_boot_entry(%rip)
ap_park:
	cli
	hlt
	jmp ap_park

	.data
	.balign 16
	.globl ap_boot_gdtr, ap_boot_idtr, ap_boot_entry, ap_boot_stacks, ap_boot_stack_size
	.globl ap_boot_nstacks
	.skip 6 /* so the descriptor bases below are 8-byte aligned */
ap_boot_gdtr:
	.word 0
	.quad 0
	.skip 6
ap_boot_idtr:
	.word 0
	.quad 0
	.balign 8
ap_boot_entry:
	.quad 0
ap_boot_stacks:
	.quad 0
ap_boot_stack_size:
	.quad 0
ap_boot_nstacks:
	.long 0
ap_boot_next_stack:
	.long 0

	.section .note.GNU-stack, "", @progbits
