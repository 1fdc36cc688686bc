/* The CPU state a boot protocol promises at the kernel's entry: GDT and identity page tables
 * in guest RAM, segment/control registers, general registers, FPU and local APIC defaults. */
#include <asm/processor-flags.h>
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kiln/boot/layout.h"
#include "kiln/vcpu/vcpu.h"

/* EFER bits (AMD APM vol. 2, 3.1.7); not in the UAPI headers. */
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)

#define GDT_ENTRIES           4
#define PAGE_PRESENT_WRITABLE 0x3ULL
#define PAGE_HUGE             0x80ULL
#define IDENTITY_MAP_GIB      4

/* Local APIC register offsets and delivery modes (Intel SDM vol. 3, 10.5.1). */
#define APIC_LVT_LINT0       0x350
#define APIC_LVT_LINT1       0x360
#define APIC_DELIVERY_EXTINT 0x700
#define APIC_DELIVERY_NMI    0x400

uint64_t boot_state_gdt_entry(enum boot_entry_mode mode, unsigned index)
{
    switch (index) {
    case LAYOUT_SEL_CODE / 8:
        /* Flat code: 64-bit (L=1) for the Linux 64-bit entry, 32-bit (D=1) for PVH. */
        return mode == BOOT_ENTRY_LINUX64 ? 0x00af9b000000ffffULL : 0x00cf9b000000ffffULL;
    case LAYOUT_SEL_DATA / 8:
        return 0x00cf93000000ffffULL;
    default:
        return 0;
    }
}

int boot_state_write_tables(const struct guest_mem *mem, enum boot_entry_mode mode)
{
    uint64_t gdt[GDT_ENTRIES];
    for (unsigned i = 0; i < GDT_ENTRIES; i++)
        gdt[i] = boot_state_gdt_entry(mode, i);
    if (guest_mem_write(mem, LAYOUT_GDT, gdt, sizeof(gdt)) < 0)
        return -EFAULT;
    if (mode != BOOT_ENTRY_LINUX64)
        return 0; /* PVH starts with paging off */

    uint64_t *pml4 = guest_mem_ptr(mem, LAYOUT_PML4, 4096);
    uint64_t *pdpt = guest_mem_ptr(mem, LAYOUT_PDPT, 4096);
    uint64_t *pd = guest_mem_ptr(mem, LAYOUT_PD, 4096 * IDENTITY_MAP_GIB);
    if (!pml4 || !pdpt || !pd)
        return -EFAULT;
    memset(pml4, 0, 4096);
    memset(pdpt, 0, 4096);
    pml4[0] = LAYOUT_PDPT | PAGE_PRESENT_WRITABLE;
    for (uint64_t gib = 0; gib < IDENTITY_MAP_GIB; gib++)
        pdpt[gib] = (LAYOUT_PD + gib * 4096) | PAGE_PRESENT_WRITABLE;
    for (uint64_t i = 0; i < 512 * IDENTITY_MAP_GIB; i++)
        pd[i] = (i << 21) | PAGE_PRESENT_WRITABLE | PAGE_HUGE;
    return 0;
}

static struct kvm_segment flat_segment(uint16_t selector, uint8_t type, int code64)
{
    return (struct kvm_segment){
        .base = 0,
        .limit = 0xffffffff,
        .selector = selector,
        .type = type,
        .present = 1,
        .dpl = 0,
        .db = code64 ? 0 : 1,
        .s = 1,
        .l = code64 ? 1 : 0,
        .g = 1,
    };
}

void boot_state_sregs(struct kvm_sregs *sregs, enum boot_entry_mode mode)
{
    int long_mode = mode == BOOT_ENTRY_LINUX64;
    struct kvm_segment data = flat_segment(LAYOUT_SEL_DATA, 0x3, 0); /* read/write, accessed */
    sregs->cs = flat_segment(LAYOUT_SEL_CODE, 0xb, long_mode);       /* exec/read, accessed */
    sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
    sregs->gdt.base = LAYOUT_GDT;
    sregs->gdt.limit = GDT_ENTRIES * 8 - 1;
    sregs->idt.base = 0;
    sregs->idt.limit = 0;
    sregs->cr0 = X86_CR0_PE | X86_CR0_ET;
    sregs->cr4 = 0;
    sregs->cr3 = 0;
    sregs->efer = 0;
    if (long_mode) {
        sregs->cr0 |= X86_CR0_PG;
        sregs->cr3 = LAYOUT_PML4;
        sregs->cr4 = X86_CR4_PAE;
        sregs->efer = EFER_LME | EFER_LMA;
    }
}

static int set_lapic_wiring(int fd, struct error *err)
{
    struct kvm_lapic_state lapic;
    if (ioctl(fd, KVM_GET_LAPIC, &lapic) < 0)
        return error_fmt(err, -errno, "KVM_GET_LAPIC failed");
    /* Virtual-wire mode: the 8259's output reaches the CPU through LINT0, NMIs through LINT1,
     * so interrupts work before the guest programs the IOAPIC. */
    uint32_t lint0 = APIC_DELIVERY_EXTINT, lint1 = APIC_DELIVERY_NMI;
    memcpy(&lapic.regs[APIC_LVT_LINT0], &lint0, sizeof(lint0));
    memcpy(&lapic.regs[APIC_LVT_LINT1], &lint1, sizeof(lint1));
    if (ioctl(fd, KVM_SET_LAPIC, &lapic) < 0)
        return error_fmt(err, -errno, "KVM_SET_LAPIC failed");
    return 0;
}

/* Called for every vCPU at creation: state that must hold whatever the guest does first. */
int boot_state_vcpu_defaults(int fd, struct error *err)
{
    struct kvm_fpu fpu;
    memset(&fpu, 0, sizeof(fpu));
    fpu.fcw = 0x37f; /* x87 default control word: all exceptions masked */
    /* MXCSR: KVM_SET_FPU ignores kvm_fpu.mxcsr; KVM's reset value is already the SSE default
     * 0x1f80 (all exceptions masked, round to nearest), so nothing to do here. */
    if (ioctl(fd, KVM_SET_FPU, &fpu) < 0)
        return error_fmt(err, -errno, "KVM_SET_FPU failed");
    return set_lapic_wiring(fd, err);
}

int vcpu_set_boot_registers(struct vcpu *vcpu, const struct boot_entry *entry, struct error *err)
{
    struct kvm_sregs sregs;
    if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
        return error_fmt(err, -errno, "KVM_GET_SREGS failed");
    boot_state_sregs(&sregs, entry->mode); /* TR/LDT keep KVM's reset values */
    if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
        return error_fmt(err, -errno, "KVM_SET_SREGS failed");

    struct kvm_regs regs;
    memset(&regs, 0, sizeof(regs));
    regs.rflags = X86_EFLAGS_FIXED;
    regs.rip = entry->rip;
    if (entry->mode == BOOT_ENTRY_LINUX64) {
        regs.rsi = entry->boot_info_gpa;
        regs.rsp = regs.rbp = LAYOUT_BOOT_STACK;
    } else {
        regs.rbx = entry->boot_info_gpa;
    }
    if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
        return error_fmt(err, -errno, "KVM_SET_REGS failed");
    return 0;
}
