/* Guest kit entry: the PVH note, the 32-bit PVH entry point, the switch to long mode and
 * the statically built GDT, IDT, page tables and stack that make it cheap. */

/* Everything below is built by the assembler and linker, never at run time: ring-0 guest
 * code on our development hosts runs in KVM's instruction emulator (~0.7 us/instruction),
 * so a loop that builds page tables would cost more than the whole test. */

#define EFER_MSR 0xc0000080
#define EFER_LME 0x100
#define CR0_PE 0x1
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define SEL_CODE64 0x08
#define SEL_DATA 0x10
/* Accessed (and Dirty) are preset so the page walker never has to write them back. User is set
 * so that user.c can run a benchmark loop at CPL3 (the kit never enables SMEP or SMAP). */
#define PTE_TABLE 0x27 /* present, writable, user, accessed */
#define PTE_2M 0xe7    /* present, writable, user, accessed, dirty, 2 MiB page */
#define STACK_SIZE 16384
#define EXCEPTION_VECTORS 32

/* XEN_ELFNOTE_PHYS32_ENTRY: a PVH loader finds the 32-bit entry here (PT_NOTE segment). */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4 /* namesz: "Xen\0" */
	.long 4 /* descsz */
	.long 18 /* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.balign 4
	.long pvh_start32

	.section .text.entry, "ax", @progbits
	.code32
	.globl pvh_start32
pvh_start32:
	/* PVH guarantees flat CS/DS/ES/SS but not a GDTR we may keep, so load ours first. */
	cli
	cld
	lgdt gdt_desc
	mov %ebx, %edi /* start info: survives into long mode as runtime_main's argument */
	mov %cr4, %eax
	or $CR4_PAE, %eax
	mov %eax, %cr4
	mov $pml4, %eax
	mov %eax, %cr3
	/* EFER is written whole rather than read-modified: one MSR exit instead of two, and
	 * no bit a previous boot left (SCE, NXE) matters to the kit. */
	mov $EFER_MSR, %ecx
	mov $EFER_LME, %eax
	xor %edx, %edx
	wrmsr
	mov %cr0, %eax
	or $(CR0_PE | CR0_PG), %eax
	mov %eax, %cr0
	ljmp $SEL_CODE64, $start64

	.code64
start64:
	mov $SEL_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	lidt idt_desc(%rip)
	lea stack_top(%rip), %rsp
	/* Upper halves of registers are undefined after the mode switch. */
	mov %edi, %edi
	call runtime_main
halt_forever:
	cli
	hlt
	jmp halt_forever

/* One 16-byte stub per exception vector, so the IDT can point at base + 16 * vector (see
 * guest.ld for why the block is 512-byte aligned). Vectors with a CPU error code skip the
 * dummy push so the frame is the same for all. */
	.balign 512
	.globl guest_exception_stubs
guest_exception_stubs:
	.set vector, 0
	.rept EXCEPTION_VECTORS
	.balign 16
	.if vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21 || vector == 29 || vector == 30
	.else
	pushq $0
	.endif
	pushq $vector
	jmp exception_common
	.set vector, vector + 1
	.endr

exception_common:
	/* Frame: vector, error code, RIP, CS, RFLAGS, RSP, SS. */
	mov (%rsp), %rdi
	mov 8(%rsp), %rsi
	mov 16(%rsp), %rdx
	mov %cr2, %rcx
	mov 24(%rsp), %r8
	and $-16, %rsp
	call runtime_exception
	jmp halt_forever

	.section .data.entry, "aw", @progbits
	.balign 16
	.globl guest_gdt
guest_gdt:
gdt:
	.quad 0
	.quad 0x00af9a000000ffff /* 0x08: 64-bit code, DPL 0 */
	.quad 0x00cf92000000ffff /* 0x10: flat data, DPL 0 */
	.quad 0x00cff2000000ffff /* 0x18: flat data, DPL 3 (user.c) */
	.quad 0x00affa000000ffff /* 0x20: 64-bit code, DPL 3 (user.c) */
	.quad 0, 0               /* 0x28: TSS, filled in by user.c */
gdt_end:

	.balign 4
	.skip 2 /* so the base below is 4-byte aligned */
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt

	.balign 8
	.skip 6
idt_desc:
	.word idt_end - idt - 1
	.quad idt

	/* 64-bit interrupt gates. The linker script splits the stub block's address into the
	 * 16-bit halves a gate needs; the assembler cannot mask a relocatable symbol. */
	.balign 16
	.globl guest_idt
guest_idt:
idt:
	.set vector, 0
	.rept EXCEPTION_VECTORS
	.word guest_exception_stubs_lo + vector * 16
	.word SEL_CODE64
	.byte 0 /* IST */
	.byte 0x8e /* present, DPL 0, interrupt gate */
	.word guest_exception_stubs_hi
	.long 0 /* offset 63:32: the kit lives below 4 GiB */
	.long 0
	.set vector, vector + 1
	.endr
	.fill (256 - EXCEPTION_VECTORS) * 16, 1, 0
idt_end:

	/* Identity map of the low 4 GiB in 2 MiB pages: RAM plus the 32-bit MMIO hole where
	 * the virtio-mmio, IOAPIC and LAPIC registers of kiln and QEMU microvm live. */
	.balign 4096
pml4:
	.quad pdpt + PTE_TABLE
	.fill 511, 8, 0
pdpt:
	.quad pd + 0 * 4096 + PTE_TABLE
	.quad pd + 1 * 4096 + PTE_TABLE
	.quad pd + 2 * 4096 + PTE_TABLE
	.quad pd + 3 * 4096 + PTE_TABLE
	.fill 508, 8, 0
pd:
	.set page, 0
	.rept 4 * 512
	.quad (page << 21) + PTE_2M
	.set page, page + 1
	.endr

	.section .bss.stack, "aw", @nobits
	.balign 16
stack_bottom:
	.skip STACK_SIZE
stack_top:

	.section .note.GNU-stack, "", @progbits
