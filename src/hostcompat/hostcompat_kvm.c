/* Host-compat glue to KVM: vCPU state in and out of struct hostcompat_cpu, guest memory through
 * KVM_TRANSLATE + guest_mem_*, #BP injection, and hostcompat_handle_exit() for vCPU threads. */
#include <asm/processor-flags.h>
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kiln/hostcompat/hostcompat.h"

/* EFER.LMA (AMD APM vol. 2, 3.1.7): long mode active. Not in the UAPI headers. */
#define EFER_LMA (1ULL << 10)
/* The legacy region of the XSAVE area (Intel SDM vol. 1, table 10-2, and 13.4.1) and the
 * XSTATE_BV field of its header (13.4.2), as KVM_GET/SET_XSAVE exchange it. */
#define XSAVE_FSW       2
#define XSAVE_FTW       4 /* abridged tag byte, as FXSAVE stores it */
#define XSAVE_MXCSR     24
#define XSAVE_XSTATE_BV 512
#define XFEATURE_X87    (1ULL << 0)
#define XFEATURE_SSE    (1ULL << 1)
/* #BP is vector 3 (Intel SDM vol. 3, table 6-1). */
#define VECTOR_BP 3
#define INSN_MAX  15
#define PAGE_SIZE 4096u

static unsigned cpl_of(const struct kvm_sregs *sregs, uint64_t rflags)
{
    if (!(sregs->cr0 & X86_CR0_PE))
        return 0; /* real mode */
    if (rflags & X86_EFLAGS_VM)
        return 3; /* virtual-8086 mode */
    /* SS.DPL is the CPL (what KVM uses); CS.RPL equals it in any consistent state. Take the
     * less privileged of the two so an odd state never passes for ring 0. */
    unsigned ss = sregs->ss.dpl, cs = sregs->cs.selector & 3;
    return ss > cs ? ss : cs;
}

static uint32_t xsave_get(const struct kvm_xsave *xsave, size_t offset, size_t size)
{
    uint32_t value = 0;
    memcpy(&value, (const uint8_t *)xsave->region + offset, size); /* x86: little-endian */
    return value;
}

static void xsave_put(struct kvm_xsave *xsave, size_t offset, size_t size, uint64_t value)
{
    memcpy((uint8_t *)xsave->region + offset, &value, size);
}

void hostcompat_cpu_from_kvm(struct hostcompat_cpu *cpu, const struct kvm_regs *regs,
                             const struct kvm_sregs *sregs, const struct kvm_xsave *xsave)
{
    memset(cpu, 0, sizeof(*cpu));
    cpu->rip = regs->rip;
    cpu->rflags = regs->rflags;
    const uint64_t gpr[16] = {regs->rax, regs->rcx, regs->rdx, regs->rbx, regs->rsp, regs->rbp,
                              regs->rsi, regs->rdi, regs->r8,  regs->r9,  regs->r10, regs->r11,
                              regs->r12, regs->r13, regs->r14, regs->r15};
    memcpy(cpu->gpr, gpr, sizeof(gpr));
    cpu->seg_base[HOSTCOMPAT_SEG_ES] = sregs->es.base;
    cpu->seg_base[HOSTCOMPAT_SEG_CS] = sregs->cs.base;
    cpu->seg_base[HOSTCOMPAT_SEG_SS] = sregs->ss.base;
    cpu->seg_base[HOSTCOMPAT_SEG_DS] = sregs->ds.base;
    cpu->seg_base[HOSTCOMPAT_SEG_FS] = sregs->fs.base;
    cpu->seg_base[HOSTCOMPAT_SEG_GS] = sregs->gs.base;
    cpu->cr0 = sregs->cr0;
    cpu->cr4 = sregs->cr4;
    cpu->cpl = cpl_of(sregs, regs->rflags);
    if ((sregs->efer & EFER_LMA) && sregs->cs.l)
        cpu->code_bits = 64;
    else if ((sregs->cr0 & X86_CR0_PE) && sregs->cs.db)
        cpu->code_bits = 32;
    else
        cpu->code_bits = 16;
    cpu->mxcsr = xsave_get(xsave, XSAVE_MXCSR, 4);
    cpu->fsw = (uint16_t)xsave_get(xsave, XSAVE_FSW, 2);
    cpu->ftwx = (uint8_t)xsave_get(xsave, XSAVE_FTW, 1);
}

void hostcompat_cpu_to_kvm(const struct hostcompat_cpu *cpu, struct kvm_regs *regs,
                           struct kvm_xsave *xsave)
{
    regs->rip = cpu->rip;
    regs->rflags = cpu->rflags;
    if (!cpu->fpu_changed)
        return;
    xsave_put(xsave, XSAVE_MXCSR, 4, cpu->mxcsr);
    xsave_put(xsave, XSAVE_FSW, 2, cpu->fsw);
    xsave_put(xsave, XSAVE_FTW, 1, cpu->ftwx);
    /* KVM_SET_XSAVE takes the x87 area and MXCSR only for features marked present; a
     * feature KVM_GET_XSAVE reported absent came back holding its initial values, so marking
     * it present keeps everything else as it was. */
    uint64_t bv = 0;
    memcpy(&bv, (uint8_t *)xsave->region + XSAVE_XSTATE_BV, sizeof(bv));
    xsave_put(xsave, XSAVE_XSTATE_BV, 8, bv | XFEATURE_X87 | XFEATURE_SSE);
}

bool hostcompat_events_inject_bp(struct kvm_vcpu_events *events)
{
    if (events->exception.injected || events->exception.pending)
        return false; /* never stack a second exception on one KVM has not delivered */
    events->exception.injected = 1;
    events->exception.nr = VECTOR_BP;
    events->exception.has_error_code = 0;
    events->exception.error_code = 0;
    events->exception_has_payload = 0;
    events->exception_payload = 0;
    return true;
}

struct kvm_memory {
    int vcpu_fd;
    const struct guest_mem *mem;
};

static int kvm_translate(void *opaque, uint64_t linear, bool write, uint64_t *gpa)
{
    const struct kvm_memory *m = opaque;
    struct kvm_translation tr = {.linear_address = linear};
    if (ioctl(m->vcpu_fd, KVM_TRANSLATE, &tr) < 0)
        return -errno;
    if (!tr.valid || (write && !tr.writeable))
        return -EFAULT;
    *gpa = tr.physical_address;
    return 0;
}

static int kvm_read(void *opaque, uint64_t gpa, void *dst, size_t len)
{
    const struct kvm_memory *m = opaque;
    return guest_mem_read(m->mem, gpa, dst, len);
}

static int kvm_write(void *opaque, uint64_t gpa, const void *src, size_t len)
{
    const struct kvm_memory *m = opaque;
    return guest_mem_write(m->mem, gpa, src, len);
}

/* The failing instruction: KVM's copy when it reports one, else up to 15 bytes read at CS:RIP
 * (as many as are mapped guest RAM). */
static size_t fetch_insn(const struct kvm_run *run, const struct hostcompat_cpu *cpu,
                         struct kvm_memory *m, uint8_t *out)
{
    if (run->emulation_failure.ndata >= 3 &&
        (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
        size_t n = run->emulation_failure.insn_size;
        if (n > INSN_MAX)
            n = INSN_MAX;
        memcpy(out, run->emulation_failure.insn_bytes, n);
        return n;
    }
    uint64_t mask = cpu->code_bits == 64 ? UINT64_MAX : 0xFFFFFFFFull;
    uint64_t linear = cpu->code_bits == 64 ? cpu->rip : cpu->seg_base[HOSTCOMPAT_SEG_CS] + cpu->rip;
    uint64_t gpa = 0;
    for (size_t n = 0; n < INSN_MAX; n++) {
        uint64_t at = (linear + n) & mask;
        if ((n == 0 || (at & (PAGE_SIZE - 1)) == 0) && kvm_translate(m, at, false, &gpa) < 0)
            return n;
        if (guest_mem_read(m->mem, gpa, &out[n], 1) < 0)
            return n;
        gpa++;
    }
    return INSN_MAX;
}

static int decline(struct hostcompat *hc, const struct log *log, uint64_t rip, const char *why)
{
    __atomic_fetch_add(&hc->declined, 1, __ATOMIC_RELAXED);
    log_debug(log, "host-compat: emulation failure at RIP 0x%llx not handled: %s",
              (unsigned long long)rip, why);
    return 0;
}

/* x87/SSE state travels through KVM_GET/SET_XSAVE: KVM_GET_FPU and KVM_SET_FPU leave
 * struct kvm_fpu.mxcsr alone (measured: set 0x7f80, get 0), so MXCSR cannot go that way.
 * The 4 KiB struct kvm_xsave holds every state a guest can have unless the VMM asked for AMX
 * (ARCH_REQ_XCOMP_GUEST_PERM), which kiln does not; that would need KVM_GET_XSAVE2. */
struct vcpu_state {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_xsave xsave;
    struct kvm_vcpu_events events;
};

/* Writes back what the instruction changed. KVM_SET_REGS drops a pending exception, so the
 * #BP goes in last. */
static const char *commit(int vcpu_fd, struct vcpu_state *s, const struct hostcompat_cpu *cpu,
                          bool inject_bp)
{
    hostcompat_cpu_to_kvm(cpu, &s->regs, &s->xsave);
    if (cpu->fpu_changed && ioctl(vcpu_fd, KVM_SET_XSAVE, &s->xsave) < 0)
        return "KVM_SET_XSAVE failed";
    if (ioctl(vcpu_fd, KVM_SET_REGS, &s->regs) < 0)
        return "KVM_SET_REGS failed";
    if (inject_bp && ioctl(vcpu_fd, KVM_SET_VCPU_EVENTS, &s->events) < 0)
        return "KVM_SET_VCPU_EVENTS failed";
    return NULL;
}

int hostcompat_handle_exit(struct hostcompat *hc, int vcpu_fd, struct kvm_run *run,
                           const struct guest_mem *mem, const struct log *log)
{
    if (!hc->enabled || run->exit_reason != KVM_EXIT_INTERNAL_ERROR ||
        run->internal.suberror != KVM_INTERNAL_ERROR_EMULATION)
        return 0;
    struct vcpu_state s;
    memset(&s, 0, sizeof(s));
    if (ioctl(vcpu_fd, KVM_GET_REGS, &s.regs) < 0 || ioctl(vcpu_fd, KVM_GET_SREGS, &s.sregs) < 0 ||
        ioctl(vcpu_fd, KVM_GET_XSAVE, &s.xsave) < 0)
        return decline(hc, log, s.regs.rip, "cannot read vCPU state");

    struct hostcompat_cpu cpu;
    hostcompat_cpu_from_kvm(&cpu, &s.regs, &s.sregs, &s.xsave);
    uint64_t rip = cpu.rip;
    struct kvm_memory m = {.vcpu_fd = vcpu_fd, .mem = mem};
    const struct hostcompat_memory_ops ops = {
        .translate = kvm_translate, .read = kvm_read, .write = kvm_write, .opaque = &m};
    uint8_t insn[INSN_MAX];
    size_t n = fetch_insn(run, &cpu, &m, insn);
    enum hostcompat_result r = hostcompat_emulate(&cpu, insn, n, &ops);
    if (r != HOSTCOMPAT_EMULATED && r != HOSTCOMPAT_INJECT_BP)
        return decline(hc, log, rip, hostcompat_result_name(r));

    bool inject_bp = r == HOSTCOMPAT_INJECT_BP;
    if (inject_bp && ioctl(vcpu_fd, KVM_GET_VCPU_EVENTS, &s.events) < 0)
        return decline(hc, log, rip, "KVM_GET_VCPU_EVENTS failed");
    if (inject_bp && !hostcompat_events_inject_bp(&s.events))
        return decline(hc, log, rip, "int3 while another exception is pending");
    /* If this fails after a stmxcsr stored to guest RAM, the VM stops with the diagnostic:
     * no running guest ever sees the store without the RIP advance. */
    const char *failed = commit(vcpu_fd, &s, &cpu, inject_bp);
    if (failed)
        return decline(hc, log, rip, failed);
    hostcompat_record(hc, cpu.insn, log);
    return 1;
}
