/* Unit tests for host-compat: instruction decoding and emulation on fake state and memory, the
 * KVM state glue, the command-line merge, the log-once line, and (with /dev/kvm) the probe. */
#include <asm/processor-flags.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/hostcompat/hostcompat.h"
#include "kiln/boot/layout.h"
#include "kiln/vcpu/vcpu.h"

/* ---- Fake MMU: a page table of linear -> guest-physical pages over real guest_mem RAM ---- */

#define FAKE_RAM   0x10000 /* 64 KiB of guest RAM: GPAs beyond are "outside guest RAM" */
#define FAKE_PAGES 8
#define PAGE       0x1000ULL

struct fake_mmu {
    struct guest_mem ram;
    uint64_t linear[FAKE_PAGES];
    uint64_t gpa[FAKE_PAGES];
    int npages;
    int translations;
    int writes;
};

static int fake_translate(void *opaque, uint64_t linear, bool write, uint64_t *gpa)
{
    struct fake_mmu *m = opaque;
    m->translations++;
    for (int i = 0; i < m->npages; i++) {
        if (m->linear[i] == (linear & ~(PAGE - 1))) {
            *gpa = m->gpa[i] | (linear & (PAGE - 1));
            return 0;
        }
    }
    return -EFAULT;
}

static int fake_read(void *opaque, uint64_t gpa, void *dst, size_t len)
{
    struct fake_mmu *m = opaque;
    assert_true((gpa & (PAGE - 1)) + len <= PAGE); /* the emulation splits at pages */
    return guest_mem_read(&m->ram, gpa, dst, len);
}

static int fake_write(void *opaque, uint64_t gpa, const void *src, size_t len)
{
    struct fake_mmu *m = opaque;
    assert_true((gpa & (PAGE - 1)) + len <= PAGE);
    m->writes++;
    return guest_mem_write(&m->ram, gpa, src, len);
}

static void fake_init(struct fake_mmu *m, struct hostcompat_memory_ops *ops)
{
    memset(m, 0, sizeof(*m));
    assert_int_equal(guest_mem_init(&m->ram, FAKE_RAM, NULL), 0);
    *ops = (struct hostcompat_memory_ops){
        .translate = fake_translate, .read = fake_read, .write = fake_write, .opaque = m};
}

static void fake_map(struct fake_mmu *m, uint64_t linear, uint64_t gpa)
{
    assert_true(m->npages < FAKE_PAGES);
    m->linear[m->npages] = linear;
    m->gpa[m->npages] = gpa;
    m->npages++;
}

static void fake_put32(struct fake_mmu *m, uint64_t gpa, uint32_t value)
{
    assert_int_equal(guest_mem_write(&m->ram, gpa, &value, 4), 0);
}

static uint32_t fake_get32(struct fake_mmu *m, uint64_t gpa)
{
    uint32_t value = 0;
    assert_int_equal(guest_mem_read(&m->ram, gpa, &value, 4), 0);
    return value;
}

#define KERNEL_RIP 0xffffffff81000000ULL
#define DATA_LIN   0xffff888000010000ULL /* a direct-map address */
#define DATA_GPA   0x3000ULL

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };

/* A 64-bit ring-0 vCPU with SSE enabled, as Linux runs. */
static struct hostcompat_cpu kernel_cpu(void)
{
    struct hostcompat_cpu cpu;
    memset(&cpu, 0, sizeof(cpu));
    cpu.rip = KERNEL_RIP;
    cpu.rflags = X86_EFLAGS_FIXED;
    cpu.cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
    cpu.cr4 = X86_CR4_PAE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;
    cpu.code_bits = 64;
    cpu.mxcsr = 0x1f80;
    return cpu;
}

#define EMULATE(cpu, ops, ...)                                                                     \
    emulate_bytes((cpu), (ops), (const uint8_t[]){__VA_ARGS__},                                    \
                  sizeof((const uint8_t[]){__VA_ARGS__}))

static enum hostcompat_result emulate_bytes(struct hostcompat_cpu *cpu,
                                            const struct hostcompat_memory_ops *ops,
                                            const uint8_t *bytes, size_t len)
{
    return hostcompat_emulate(cpu, bytes, len, ops);
}

/* Expects success: the instruction kind, its exact length and RIP advanced by it. */
static void assert_emulated(enum hostcompat_result r, const struct hostcompat_cpu *cpu,
                            uint64_t old_rip, enum hostcompat_insn insn, unsigned length)
{
    assert_int_equal(r, HOSTCOMPAT_EMULATED);
    assert_int_equal(cpu->insn, insn);
    assert_int_equal(cpu->length, length);
    assert_int_equal(cpu->rip, old_rip + length);
}

/* Expects a refusal that left every field alone. */
static void assert_untouched(enum hostcompat_result r, enum hostcompat_result expected,
                             const struct hostcompat_cpu *cpu, const struct hostcompat_cpu *before)
{
    assert_int_equal(r, expected);
    assert_memory_equal(cpu, before, sizeof(*cpu));
}

/* ---- Register-only instructions ---------------------------------------------------------- */

static void test_clac_stac_toggle_ac(void **state)
{
    struct hostcompat_cpu cpu = kernel_cpu();
    cpu.rflags |= X86_EFLAGS_AC | X86_EFLAGS_IF;
    enum hostcompat_result r = EMULATE(&cpu, NULL, 0x0F, 0x01, 0xCA);
    assert_emulated(r, &cpu, KERNEL_RIP, HOSTCOMPAT_INSN_CLAC, 3);
    assert_int_equal(cpu.rflags, X86_EFLAGS_FIXED | X86_EFLAGS_IF);
    assert_false(cpu.fpu_changed);

    r = EMULATE(&cpu, NULL, 0x0F, 0x01, 0xCB);
    assert_emulated(r, &cpu, KERNEL_RIP + 3, HOSTCOMPAT_INSN_STAC, 3);
    assert_int_equal(cpu.rflags, X86_EFLAGS_FIXED | X86_EFLAGS_IF | X86_EFLAGS_AC);
}

static void test_fwait(void **state)
{
    struct hostcompat_cpu cpu = kernel_cpu();
    enum hostcompat_result r = EMULATE(&cpu, NULL, 0x9B, 0x90, 0x90);
    assert_emulated(r, &cpu, KERNEL_RIP, HOSTCOMPAT_INSN_FWAIT, 1);

    cpu.cr0 = (cpu.cr0 & ~(uint64_t)X86_CR0_MP) | X86_CR0_TS; /* TS without MP: no #NM */
    r = EMULATE(&cpu, NULL, 0x9B);
    assert_emulated(r, &cpu, KERNEL_RIP + 1, HOSTCOMPAT_INSN_FWAIT, 1);

    cpu = kernel_cpu();
    cpu.cr0 |= X86_CR0_MP | X86_CR0_TS; /* #NM */
    struct hostcompat_cpu before = cpu;
    assert_untouched(EMULATE(&cpu, NULL, 0x9B), HOSTCOMPAT_WOULD_FAULT, &cpu, &before);

    cpu = kernel_cpu();
    cpu.fsw = 0x0081; /* unmasked invalid-operation pending (ES): #MF */
    before = cpu;
    assert_untouched(EMULATE(&cpu, NULL, 0x9B), HOSTCOMPAT_WOULD_FAULT, &cpu, &before);
}

static void test_fnclex_and_fclex(void **state)
{
    struct hostcompat_cpu cpu = kernel_cpu();
    cpu.fsw = 0xB8FF; /* B, TOP=7, ES, SF, all exception flags */
    enum hostcompat_result r = EMULATE(&cpu, NULL, 0xDB, 0xE2);
    assert_emulated(r, &cpu, KERNEL_RIP, HOSTCOMPAT_INSN_FNCLEX, 2);
    assert_int_equal(cpu.fsw, 0x3800); /* only TOP survives */
    assert_true(cpu.fpu_changed);

    cpu = kernel_cpu();
    cpu.fsw = 0x383F; /* masked exceptions flagged, nothing pending: fwait passes */
    r = EMULATE(&cpu, NULL, 0x9B, 0xDB, 0xE2);
    assert_emulated(r, &cpu, KERNEL_RIP, HOSTCOMPAT_INSN_FNCLEX, 3);
    assert_int_equal(cpu.fsw, 0x3800);

    cpu = kernel_cpu();
    cpu.cr0 |= X86_CR0_TS; /* #NM */
    struct hostcompat_cpu before = cpu;
    assert_untouched(EMULATE(&cpu, NULL, 0xDB, 0xE2), HOSTCOMPAT_WOULD_FAULT, &cpu, &before);
    assert_untouched(EMULATE(&cpu, NULL, 0xDB, 0xE3), HOSTCOMPAT_UNKNOWN, &cpu, &before);
}

static void test_emms(void **state)
{
    struct hostcompat_cpu cpu = kernel_cpu();
    cpu.ftwx = 0xFF;
    enum hostcompat_result r = EMULATE(&cpu, NULL, 0x0F, 0x77);
    assert_emulated(r, &cpu, KERNEL_RIP, HOSTCOMPAT_INSN_EMMS, 2);
    assert_int_equal(cpu.ftwx, 0);
    assert_true(cpu.fpu_changed);

    cpu = kernel_cpu();
    cpu.cr0 |= X86_CR0_EM; /* #UD */
    struct hostcompat_cpu before = cpu;
    assert_untouched(EMULATE(&cpu, NULL, 0x0F, 0x77), HOSTCOMPAT_WOULD_FAULT, &cpu, &before);
}

static void test_int3_requests_bp_after_the_byte(void **state)
{
    struct hostcompat_cpu cpu = kernel_cpu();
    /* Live patching: int3 over the first byte of a 5-byte nop; the rest must not matter. */
    enum hostcompat_result r = EMULATE(&cpu, NULL, 0xCC, 0x1F, 0x44, 0x00, 0x00);
    assert_int_equal(r, HOSTCOMPAT_INJECT_BP);
    assert_int_equal(cpu.insn, HOSTCOMPAT_INSN_INT3);
    assert_int_equal(cpu.length, 1);
    assert_int_equal(cpu.rip, KERNEL_RIP + 1);
    assert_false(cpu.fpu_changed);

    r = EMULATE(&cpu, NULL, 0xCC);
    assert_int_equal(r, HOSTCOMPAT_INJECT_BP);
    assert_int_equal(cpu.rip, KERNEL_RIP + 2);
}

static void test_cpl3_never_handled(void **state)
{
    struct hostcompat_memory_ops ops;
    struct fake_mmu m;
    fake_init(&m, &ops);
    fake_map(&m, 0x400000, DATA_GPA);
    struct hostcompat_cpu cpu = kernel_cpu();
    cpu.cpl = 3;
    cpu.rip = 0x401000;
    cpu.gpr[RAX] = 0x400000;
    struct hostcompat_cpu before = cpu;
    assert_untouched(EMULATE(&cpu, &ops, 0xCC), HOSTCOMPAT_NOT_CPL0, &cpu, &before);
    assert_untouched(EMULATE(&cpu, &ops, 0x0F, 0x01, 0xCA), HOSTCOMPAT_NOT_CPL0, &cpu, &before);
    assert_untouched(EMULATE(&cpu, &ops, 0x0F, 0xAE, 0x10), HOSTCOMPAT_NOT_CPL0, &cpu, &before);
    assert_untouched(EMULATE(&cpu, &ops, 0x0F, 0xAE, 0x18), HOSTCOMPAT_NOT_CPL0, &cpu, &before);
    assert_int_equal(m.translations, 0);
    guest_mem_destroy(&m.ram);
}

static void test_unknown_instructions(void **state)
{
    struct hostcompat_cpu cpu = kernel_cpu();
    struct hostcompat_cpu before = cpu;
#define UNKNOWN(...)                                                                               \
    assert_untouched(EMULATE(&cpu, NULL, __VA_ARGS__), HOSTCOMPAT_UNKNOWN, &cpu, &before)
    UNKNOWN(0x66, 0x0F, 0xEF, 0xC0); /* pxor xmm0, xmm0 */
    UNKNOWN(0x0F, 0xEF, 0xC0);       /* pxor mm0, mm0 */
    UNKNOWN(0xF3, 0x0F, 0xB8, 0xC3); /* popcnt eax, ebx */
    UNKNOWN(0x48, 0x0F, 0xC7, 0x0E); /* cmpxchg16b [rsi] */
    UNKNOWN(0x0F, 0x01, 0xD0);       /* xgetbv */
    UNKNOWN(0x0F, 0x01, 0xF9);       /* rdtscp */
    UNKNOWN(0x0F, 0xAE, 0xE8);       /* lfence */
    UNKNOWN(0x0F, 0xAE, 0x38);       /* clflush [rax] */
    UNKNOWN(0x66, 0x0F, 0xAE, 0x38); /* clflushopt [rax] */
    UNKNOWN(0x0F, 0xAE, 0x20);       /* xsave [rax] */
    UNKNOWN(0x0F, 0xAE, 0xD0);       /* ldmxcsr with a register operand: invalid */
    UNKNOWN(0xF3, 0x0F, 0xAE, 0xD0); /* wrfsbase eax */
    UNKNOWN(0x66, 0x0F, 0xAE, 0x10); /* ldmxcsr with 66: not ldmxcsr */
    UNKNOWN(0xF0, 0x0F, 0x01, 0xCB); /* lock stac: #UD */
    UNKNOWN(0xDB, 0xE3);             /* fninit: KVM's emulator has it */
    UNKNOWN(0x0F, 0x0B);             /* ud2 */
    UNKNOWN(0x90);                   /* nop */
#undef UNKNOWN
    /* 15 prefixes leave no room for an opcode: #GP on hardware, not ours. */
    uint8_t long_insn[16];
    memset(long_insn, 0x3E, sizeof(long_insn));
    assert_untouched(hostcompat_emulate(&cpu, long_insn, sizeof(long_insn), NULL),
                     HOSTCOMPAT_UNKNOWN, &cpu, &before);
}

static void test_truncated_bytes(void **state)
{
    struct hostcompat_cpu cpu = kernel_cpu();
    struct hostcompat_cpu before = cpu;
    assert_untouched(hostcompat_emulate(&cpu, NULL, 0, NULL), HOSTCOMPAT_TRUNCATED, &cpu, &before);
    assert_untouched(EMULATE(&cpu, NULL, 0x0F), HOSTCOMPAT_TRUNCATED, &cpu, &before);
    assert_untouched(EMULATE(&cpu, NULL, 0x0F, 0x01), HOSTCOMPAT_TRUNCATED, &cpu, &before);
    assert_untouched(EMULATE(&cpu, NULL, 0x65, 0x0F, 0xAE), HOSTCOMPAT_TRUNCATED, &cpu, &before);
    assert_untouched(EMULATE(&cpu, NULL, 0x0F, 0xAE, 0x15, 0x00, 0x00), HOSTCOMPAT_TRUNCATED, &cpu,
                     &before);
    assert_untouched(EMULATE(&cpu, NULL, 0x0F, 0xAE, 0x14), HOSTCOMPAT_TRUNCATED, &cpu, &before);
}

static void test_modes_other_than_32_and_64_bit(void **state)
{
    struct hostcompat_cpu cpu = kernel_cpu();
    cpu.code_bits = 16;
    struct hostcompat_cpu before = cpu;
    assert_untouched(EMULATE(&cpu, NULL, 0x0F, 0x77), HOSTCOMPAT_UNKNOWN, &cpu, &before);
}

/* ---- ldmxcsr / stmxcsr addressing ---------------------------------------------------------- */

struct mem_fixture {
    struct fake_mmu m;
    struct hostcompat_memory_ops ops;
    struct hostcompat_cpu cpu;
};

static int mem_setup(void **state)
{
    struct mem_fixture *f = calloc(1, sizeof(*f));
    fake_init(&f->m, &f->ops);
    fake_map(&f->m, DATA_LIN, DATA_GPA);
    f->cpu = kernel_cpu();
    *state = f;
    return 0;
}

static int mem_teardown(void **state)
{
    struct mem_fixture *f = *state;
    guest_mem_destroy(&f->m.ram);
    free(f);
    return 0;
}

static void test_ldmxcsr_base_disp8(void **state)
{
    struct mem_fixture *f = *state;
    f->cpu.gpr[RAX] = DATA_LIN + 0x20;
    fake_put32(&f->m, DATA_GPA + 0x30, 0x7f80);
    enum hostcompat_result r = EMULATE(&f->cpu, &f->ops, 0x0F, 0xAE, 0x50, 0x10); /* [rax+0x10] */
    assert_emulated(r, &f->cpu, KERNEL_RIP, HOSTCOMPAT_INSN_LDMXCSR, 4);
    assert_int_equal(f->cpu.mxcsr, 0x7f80);
    assert_true(f->cpu.fpu_changed);

    fake_put32(&f->m, DATA_GPA + 0x10, 0x1fc0);
    r = EMULATE(&f->cpu, &f->ops, 0x0F, 0xAE, 0x50, 0xF0); /* [rax-0x10] */
    assert_emulated(r, &f->cpu, KERNEL_RIP + 4, HOSTCOMPAT_INSN_LDMXCSR, 4);
    assert_int_equal(f->cpu.mxcsr, 0x1fc0);
}

static void test_stmxcsr_base_index_scale_disp32(void **state)
{
    struct mem_fixture *f = *state;
    f->cpu.mxcsr = 0x9fa0;
    f->cpu.gpr[RBX] = DATA_LIN;
    f->cpu.gpr[RCX] = 4;
    /* stmxcsr [rbx+rcx*4+0x100]: ModRM 10 011 100, SIB 10 001 011 */
    enum hostcompat_result r =
        EMULATE(&f->cpu, &f->ops, 0x0F, 0xAE, 0x9C, 0x8B, 0x00, 0x01, 0x00, 0x00);
    assert_emulated(r, &f->cpu, KERNEL_RIP, HOSTCOMPAT_INSN_STMXCSR, 8);
    assert_int_equal(fake_get32(&f->m, DATA_GPA + 0x110), 0x9fa0);
    assert_false(f->cpu.fpu_changed);
}

static void test_ldmxcsr_rip_relative(void **state)
{
    struct mem_fixture *f = *state;
    fake_map(&f->m, KERNEL_RIP + 0x2000, 0x5000);
    fake_put32(&f->m, 0x5040, 0x3f80);
    /* ldmxcsr [rip+disp32]: disp is from the end of the 7-byte instruction */
    uint32_t disp = 0x2040 - 7;
    enum hostcompat_result r =
        EMULATE(&f->cpu, &f->ops, 0x0F, 0xAE, 0x15, (uint8_t)disp, (uint8_t)(disp >> 8), 0, 0);
    assert_emulated(r, &f->cpu, KERNEL_RIP, HOSTCOMPAT_INSN_LDMXCSR, 7);
    assert_int_equal(f->cpu.mxcsr, 0x3f80);

    /* REX.B does not turn mod=00 rm=101 into [r13]: still RIP-relative. */
    f->cpu.rip = KERNEL_RIP;
    f->cpu.gpr[R13] = 0xdeadbeef;
    fake_put32(&f->m, 0x5040, 0x1f80);
    disp = 0x2040 - 8;
    r = EMULATE(&f->cpu, &f->ops, 0x41, 0x0F, 0xAE, 0x15, (uint8_t)disp, (uint8_t)(disp >> 8), 0,
                0);
    assert_emulated(r, &f->cpu, KERNEL_RIP, HOSTCOMPAT_INSN_LDMXCSR, 8);
    assert_int_equal(f->cpu.mxcsr, 0x1f80);
}

static void test_rex_extended_registers(void **state)
{
    struct mem_fixture *f = *state;
    f->cpu.mxcsr = 0x1234;
    f->cpu.gpr[R13] = DATA_LIN;
    f->cpu.gpr[R9] = 2;
    f->cpu.gpr[RBP] = f->cpu.gpr[RCX] = 0x5555; /* what the registers would be without REX */
    /* stmxcsr [r13+r9*4+8]: REX.XB, ModRM 01 011 100, SIB 10 001 101, disp8 */
    enum hostcompat_result r = EMULATE(&f->cpu, &f->ops, 0x43, 0x0F, 0xAE, 0x5C, 0x8D, 0x08);
    assert_emulated(r, &f->cpu, KERNEL_RIP, HOSTCOMPAT_INSN_STMXCSR, 6);
    assert_int_equal(fake_get32(&f->m, DATA_GPA + 0x10), 0x1234);

    /* REX.X makes index 100b R12; base 101b with mod=00 is "no base, disp32" even with REX.B */
    f->cpu.gpr[R12] = DATA_LIN + 0x40;
    f->cpu.gpr[RSP] = 0x7777; /* what index 100b would mean without REX.X: no index at all */
    r = EMULATE(&f->cpu, &f->ops, 0x43, 0x0F, 0xAE, 0x1C, 0x25, 0x08, 0x00, 0x00, 0x00);
    assert_emulated(r, &f->cpu, KERNEL_RIP + 6, HOSTCOMPAT_INSN_STMXCSR, 9);
    assert_int_equal(fake_get32(&f->m, DATA_GPA + 0x48), 0x1234);

    /* [r12]: base 100b + REX.B needs a SIB (index 100b = none) */
    fake_put32(&f->m, DATA_GPA + 0x40, 0x1f80);
    r = EMULATE(&f->cpu, &f->ops, 0x41, 0x0F, 0xAE, 0x14, 0x24);
    assert_emulated(r, &f->cpu, KERNEL_RIP + 15, HOSTCOMPAT_INSN_LDMXCSR, 5);
    assert_int_equal(f->cpu.mxcsr, 0x1f80);

    /* REX.W changes nothing here */
    f->cpu.gpr[R8] = DATA_LIN + 0x80;
    f->cpu.gpr[RAX] = 0x9999;                              /* not mapped */
    r = EMULATE(&f->cpu, &f->ops, 0x49, 0x0F, 0xAE, 0x18); /* stmxcsr [r8] */
    assert_emulated(r, &f->cpu, KERNEL_RIP + 20, HOSTCOMPAT_INSN_STMXCSR, 4);
    assert_int_equal(fake_get32(&f->m, DATA_GPA + 0x80), 0x1f80);
    /* A REX followed by a legacy prefix is ignored: this is stmxcsr ds:[rax], not [r8] */
    struct hostcompat_cpu before = f->cpu;
    assert_untouched(EMULATE(&f->cpu, &f->ops, 0x41, 0x3E, 0x0F, 0xAE, 0x18),
                     HOSTCOMPAT_BAD_ADDRESS, &f->cpu, &before);
}

static void test_segment_overrides(void **state)
{
    struct mem_fixture *f = *state;
    uint64_t percpu = 0xffff888000020000ULL;
    fake_map(&f->m, percpu, 0x6000);
    f->cpu.seg_base[HOSTCOMPAT_SEG_GS] = percpu;
    f->cpu.seg_base[HOSTCOMPAT_SEG_FS] = DATA_LIN;
    f->cpu.seg_base[HOSTCOMPAT_SEG_DS] = 0x1000000; /* ignored in long mode */
    fake_put32(&f->m, 0x6018, 0x1fa0);

    /* ldmxcsr gs:[0x18] — the kernel's per-CPU form: SIB with no base and no index */
    enum hostcompat_result r =
        EMULATE(&f->cpu, &f->ops, 0x65, 0x0F, 0xAE, 0x14, 0x25, 0x18, 0x00, 0x00, 0x00);
    assert_emulated(r, &f->cpu, KERNEL_RIP, HOSTCOMPAT_INSN_LDMXCSR, 9);
    assert_int_equal(f->cpu.mxcsr, 0x1fa0);

    /* stmxcsr gs:[rbx+8] */
    f->cpu.gpr[RBX] = 0x20;
    r = EMULATE(&f->cpu, &f->ops, 0x65, 0x0F, 0xAE, 0x5B, 0x08);
    assert_emulated(r, &f->cpu, KERNEL_RIP + 9, HOSTCOMPAT_INSN_STMXCSR, 5);
    assert_int_equal(fake_get32(&f->m, 0x6028), 0x1fa0);

    /* fs: with a REX after it; ds: has no base in 64-bit mode */
    f->cpu.gpr[R10] = 0x100;
    r = EMULATE(&f->cpu, &f->ops, 0x64, 0x41, 0x0F, 0xAE, 0x1A); /* stmxcsr fs:[r10] */
    assert_emulated(r, &f->cpu, KERNEL_RIP + 14, HOSTCOMPAT_INSN_STMXCSR, 5);
    assert_int_equal(fake_get32(&f->m, DATA_GPA + 0x100), 0x1fa0);
    f->cpu.gpr[RDX] = DATA_LIN + 0x200;
    r = EMULATE(&f->cpu, &f->ops, 0x3E, 0x0F, 0xAE, 0x1A); /* stmxcsr ds:[rdx] */
    assert_emulated(r, &f->cpu, KERNEL_RIP + 19, HOSTCOMPAT_INSN_STMXCSR, 4);
    assert_int_equal(fake_get32(&f->m, DATA_GPA + 0x200), 0x1fa0);
}

static void test_address_size_override_in_64bit_mode(void **state)
{
    struct mem_fixture *f = *state;
    fake_map(&f->m, 0x10000, 0x7000);
    fake_put32(&f->m, 0x7010, 0x1f90);
    f->cpu.gpr[RAX] = 0xdead000000010000ULL; /* only EAX counts */
    enum hostcompat_result r = EMULATE(&f->cpu, &f->ops, 0x67, 0x0F, 0xAE, 0x50, 0x10);
    assert_emulated(r, &f->cpu, KERNEL_RIP, HOSTCOMPAT_INSN_LDMXCSR, 5);
    assert_int_equal(f->cpu.mxcsr, 0x1f90);
}

static void test_32bit_protected_mode(void **state)
{
    struct mem_fixture *f = *state;
    struct hostcompat_cpu cpu = kernel_cpu();
    cpu.code_bits = 32;
    cpu.cr0 &= ~(uint64_t)X86_CR0_PG;
    cpu.rip = 0x100000;
    cpu.seg_base[HOSTCOMPAT_SEG_SS] = 0x1000; /* [ebp+...] defaults to SS */
    cpu.gpr[RBP] = 0xffffffff00008ff0ULL;     /* upper half ignored */
    fake_map(&f->m, 0x9000, 0x4000);
    fake_put32(&f->m, 0x4ff8, 0x1f81);
    enum hostcompat_result r = EMULATE(&cpu, &f->ops, 0x0F, 0xAE, 0x55, 0x08); /* [ebp+8] */
    assert_emulated(r, &cpu, 0x100000, HOSTCOMPAT_INSN_LDMXCSR, 4);
    assert_int_equal(cpu.mxcsr, 0x1f81);

    /* mod=00 rm=101 is an absolute disp32 outside 64-bit mode */
    cpu.seg_base[HOSTCOMPAT_SEG_DS] = 0;
    r = EMULATE(&cpu, &f->ops, 0x0F, 0xAE, 0x1D, 0x00, 0x91, 0x00, 0x00); /* stmxcsr [0x9100] */
    assert_emulated(r, &cpu, 0x100004, HOSTCOMPAT_INSN_STMXCSR, 7);
    assert_int_equal(fake_get32(&f->m, 0x4100), 0x1f81);

    /* 0x40 is inc eax here, not REX; 0x67 would mean 16-bit addressing */
    struct hostcompat_cpu before = cpu;
    assert_untouched(EMULATE(&cpu, &f->ops, 0x41, 0x0F, 0xAE, 0x10), HOSTCOMPAT_UNKNOWN, &cpu,
                     &before);
    assert_untouched(EMULATE(&cpu, &f->ops, 0x67, 0x0F, 0xAE, 0x10), HOSTCOMPAT_UNKNOWN, &cpu,
                     &before);

    /* EIP wraps at 4 GiB */
    cpu.rip = 0xfffffffeULL;
    r = EMULATE(&cpu, NULL, 0x0F, 0x77);
    assert_int_equal(r, HOSTCOMPAT_EMULATED);
    assert_int_equal(cpu.rip, 0);
}

static void test_page_crossing_operand(void **state)
{
    struct mem_fixture *f = *state;
    /* Two linear pages backed by non-adjacent guest pages. */
    fake_map(&f->m, DATA_LIN + PAGE, 0x8000);
    uint8_t lo[2] = {0x80, 0x7f}, hi[2] = {0x00, 0x00};
    assert_int_equal(guest_mem_write(&f->m.ram, DATA_GPA + PAGE - 2, lo, 2), 0);
    assert_int_equal(guest_mem_write(&f->m.ram, 0x8000, hi, 2), 0);
    f->cpu.gpr[RSI] = DATA_LIN + PAGE - 2;
    enum hostcompat_result r = EMULATE(&f->cpu, &f->ops, 0x0F, 0xAE, 0x16); /* ldmxcsr [rsi] */
    assert_emulated(r, &f->cpu, KERNEL_RIP, HOSTCOMPAT_INSN_LDMXCSR, 3);
    assert_int_equal(f->cpu.mxcsr, 0x7f80);

    f->cpu.mxcsr = 0xA1B2; /* fits the valid bits; bytes B2 A1 00 00 */
    f->cpu.gpr[RSI] = DATA_LIN + PAGE - 1;
    r = EMULATE(&f->cpu, &f->ops, 0x0F, 0xAE, 0x1E); /* stmxcsr [rsi] */
    assert_emulated(r, &f->cpu, KERNEL_RIP + 3, HOSTCOMPAT_INSN_STMXCSR, 3);
    uint8_t got[4];
    assert_int_equal(guest_mem_read(&f->m.ram, DATA_GPA + PAGE - 1, got, 1), 0);
    assert_int_equal(guest_mem_read(&f->m.ram, 0x8000, got + 1, 3), 0);
    assert_int_equal(got[0], 0xB2);
    assert_int_equal(got[1], 0xA1);
    assert_int_equal(got[2], 0);
    assert_int_equal(got[3], 0);
}

static void test_page_crossing_into_a_bad_page_writes_nothing(void **state)
{
    struct mem_fixture *f = *state;
    f->cpu.mxcsr = 0x1f80;
    f->cpu.gpr[RSI] = DATA_LIN + PAGE - 2;
    fake_put32(&f->m, DATA_GPA + PAGE - 4, 0xAAAAAAAA);
    struct hostcompat_cpu before = f->cpu;

    /* The second page is not mapped at all. */
    enum hostcompat_result r = EMULATE(&f->cpu, &f->ops, 0x0F, 0xAE, 0x1E);
    assert_untouched(r, HOSTCOMPAT_BAD_ADDRESS, &f->cpu, &before);
    /* The second page maps to a GPA outside guest RAM. */
    fake_map(&f->m, DATA_LIN + PAGE, FAKE_RAM + 0x100000);
    r = EMULATE(&f->cpu, &f->ops, 0x0F, 0xAE, 0x1E);
    assert_untouched(r, HOSTCOMPAT_BAD_ADDRESS, &f->cpu, &before);
    r = EMULATE(&f->cpu, &f->ops, 0x0F, 0xAE, 0x16);
    assert_untouched(r, HOSTCOMPAT_BAD_ADDRESS, &f->cpu, &before);
    assert_int_equal(f->m.writes, 0);
    assert_int_equal(fake_get32(&f->m, DATA_GPA + PAGE - 4), 0xAAAAAAAA);
}

static void test_operand_outside_guest_ram(void **state)
{
    struct mem_fixture *f = *state;
    fake_map(&f->m, 0xffffc90000000000ULL, 0xfee00000); /* the LAPIC page: MMIO, not RAM */
    f->cpu.gpr[RDI] = 0xffffc90000000010ULL;
    struct hostcompat_cpu before = f->cpu;
    assert_untouched(EMULATE(&f->cpu, &f->ops, 0x0F, 0xAE, 0x17), HOSTCOMPAT_BAD_ADDRESS, &f->cpu,
                     &before);
    assert_untouched(EMULATE(&f->cpu, &f->ops, 0x0F, 0xAE, 0x1F), HOSTCOMPAT_BAD_ADDRESS, &f->cpu,
                     &before);
    /* Not mapped at all */
    f->cpu.gpr[RDI] = 0xffffc90000100000ULL;
    before = f->cpu;
    assert_untouched(EMULATE(&f->cpu, &f->ops, 0x0F, 0xAE, 0x17), HOSTCOMPAT_BAD_ADDRESS, &f->cpu,
                     &before);
    /* Non-canonical: #GP before any page walk */
    int translations = f->m.translations;
    f->cpu.gpr[RDI] = 0x0000800000000000ULL;
    before = f->cpu;
    assert_untouched(EMULATE(&f->cpu, &f->ops, 0x0F, 0xAE, 0x17), HOSTCOMPAT_BAD_ADDRESS, &f->cpu,
                     &before);
    assert_int_equal(f->m.translations, translations);
    assert_int_equal(f->m.writes, 0);
}

static void test_mxcsr_faults_left_to_the_guest(void **state)
{
    struct mem_fixture *f = *state;
    f->cpu.gpr[RAX] = DATA_LIN;
    fake_put32(&f->m, DATA_GPA, 0x00011f80); /* bit 16 reserved: #GP(0) */
    struct hostcompat_cpu before = f->cpu;
    assert_untouched(EMULATE(&f->cpu, &f->ops, 0x0F, 0xAE, 0x10), HOSTCOMPAT_WOULD_FAULT, &f->cpu,
                     &before);

    fake_put32(&f->m, DATA_GPA, 0x1f80);
    f->cpu.cr4 &= ~(uint64_t)X86_CR4_OSFXSR; /* #UD */
    before = f->cpu;
    assert_untouched(EMULATE(&f->cpu, &f->ops, 0x0F, 0xAE, 0x10), HOSTCOMPAT_WOULD_FAULT, &f->cpu,
                     &before);
    f->cpu = kernel_cpu();
    f->cpu.gpr[RAX] = DATA_LIN;
    f->cpu.cr0 |= X86_CR0_TS; /* #NM */
    before = f->cpu;
    assert_untouched(EMULATE(&f->cpu, &f->ops, 0x0F, 0xAE, 0x18), HOSTCOMPAT_WOULD_FAULT, &f->cpu,
                     &before);
    assert_int_equal(f->m.writes, 0);
}

/* ---- KVM state glue ------------------------------------------------------------------------- */

static uint64_t xsave_field(const struct kvm_xsave *xsave, size_t offset, size_t size)
{
    uint64_t value = 0;
    memcpy(&value, (const uint8_t *)xsave->region + offset, size);
    return value;
}

static void set_xsave_field(struct kvm_xsave *xsave, size_t offset, size_t size, uint64_t value)
{
    memcpy((uint8_t *)xsave->region + offset, &value, size);
}

static void test_cpu_from_kvm(void **state)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    static struct kvm_xsave xsave; /* 4 KiB */
    memset(&regs, 0, sizeof(regs));
    memset(&sregs, 0, sizeof(sregs));
    memset(&xsave, 0, sizeof(xsave));
    regs.rip = KERNEL_RIP;
    regs.rflags = 0x246;
    regs.rax = 1, regs.rcx = 2, regs.rsp = 5, regs.r9 = 10, regs.r15 = 16;
    boot_state_sregs(&sregs, BOOT_ENTRY_LINUX64);
    sregs.gs.base = 0xffff888000020000ULL;
    sregs.cr4 |= X86_CR4_OSFXSR;
    /* XSAVE legacy region (SDM vol. 1, table 10-2): FCW 0, FSW 2, abridged FTW 4, MXCSR 24 */
    set_xsave_field(&xsave, 0, 2, 0x37f);
    set_xsave_field(&xsave, 2, 2, 0x3800);
    set_xsave_field(&xsave, 4, 1, 0x81);
    set_xsave_field(&xsave, 24, 4, 0x1fa0);
    set_xsave_field(&xsave, 160, 8, 0x1122334455667788ULL); /* xmm0, must survive */

    struct hostcompat_cpu cpu;
    hostcompat_cpu_from_kvm(&cpu, &regs, &sregs, &xsave);
    assert_int_equal(cpu.code_bits, 64);
    assert_int_equal(cpu.cpl, 0);
    assert_int_equal(cpu.rip, KERNEL_RIP);
    assert_int_equal(cpu.gpr[RAX], 1);
    assert_int_equal(cpu.gpr[RCX], 2);
    assert_int_equal(cpu.gpr[RSP], 5);
    assert_int_equal(cpu.gpr[R9], 10);
    assert_int_equal(cpu.gpr[R15], 16);
    assert_int_equal(cpu.seg_base[HOSTCOMPAT_SEG_GS], 0xffff888000020000ULL);
    assert_true(cpu.cr4 & X86_CR4_OSFXSR);
    assert_int_equal(cpu.mxcsr, 0x1fa0);
    assert_int_equal(cpu.fsw, 0x3800);
    assert_int_equal(cpu.ftwx, 0x81);

    /* CPL: SS.DPL, or CS.RPL if that is less privileged; real mode is ring 0, 16-bit code */
    struct kvm_sregs other = sregs;
    other.ss.dpl = 3;
    hostcompat_cpu_from_kvm(&cpu, &regs, &other, &xsave);
    assert_int_equal(cpu.cpl, 3);
    other = sregs;
    other.cs.selector = 0x33;
    hostcompat_cpu_from_kvm(&cpu, &regs, &other, &xsave);
    assert_int_equal(cpu.cpl, 3);
    boot_state_sregs(&other, BOOT_ENTRY_PVH32);
    hostcompat_cpu_from_kvm(&cpu, &regs, &other, &xsave);
    assert_int_equal(cpu.code_bits, 32);
    assert_int_equal(cpu.cpl, 0);
    other.cr0 = 0;
    other.cs.db = 0;
    other.cs.selector = 0xf003;
    hostcompat_cpu_from_kvm(&cpu, &regs, &other, &xsave);
    assert_int_equal(cpu.code_bits, 16);
    assert_int_equal(cpu.cpl, 0);

    /* Back to KVM: registers always; x87/SSE fields only when changed, marked present */
    hostcompat_cpu_from_kvm(&cpu, &regs, &sregs, &xsave);
    cpu.rip += 4;
    cpu.rflags |= X86_EFLAGS_AC;
    cpu.mxcsr = 0x7f80;
    hostcompat_cpu_to_kvm(&cpu, &regs, &xsave);
    assert_int_equal(regs.rip, KERNEL_RIP + 4);
    assert_int_equal(regs.rflags, 0x246 | X86_EFLAGS_AC);
    assert_int_equal(regs.r15, 16);
    assert_int_equal(xsave_field(&xsave, 24, 4), 0x1fa0); /* fpu_changed not set */
    assert_int_equal(xsave_field(&xsave, 512, 8), 0);
    cpu.fpu_changed = true;
    cpu.fsw = 0;
    cpu.ftwx = 0;
    hostcompat_cpu_to_kvm(&cpu, &regs, &xsave);
    assert_int_equal(xsave_field(&xsave, 24, 4), 0x7f80);
    assert_int_equal(xsave_field(&xsave, 2, 2), 0);
    assert_int_equal(xsave_field(&xsave, 4, 1), 0);
    assert_int_equal(xsave_field(&xsave, 0, 2), 0x37f);
    assert_int_equal(xsave_field(&xsave, 160, 8), 0x1122334455667788ULL);
    assert_int_equal(xsave_field(&xsave, 512, 8), 3); /* XSTATE_BV: x87 | SSE */
}

static void test_events_inject_bp(void **state)
{
    struct kvm_vcpu_events events;
    memset(&events, 0, sizeof(events));
    events.flags = KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
    events.interrupt.shadow = 1;
    assert_true(hostcompat_events_inject_bp(&events));
    assert_int_equal(events.exception.injected, 1);
    assert_int_equal(events.exception.nr, 3);
    assert_int_equal(events.exception.has_error_code, 0);
    assert_int_equal(events.exception.error_code, 0);
    assert_int_equal(events.flags, KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM);
    assert_int_equal(events.interrupt.shadow, 1);

    struct kvm_vcpu_events busy;
    memset(&busy, 0, sizeof(busy));
    busy.exception.pending = 1;
    busy.exception.nr = 14;
    struct kvm_vcpu_events copy = busy;
    assert_false(hostcompat_events_inject_bp(&busy));
    assert_memory_equal(&busy, &copy, sizeof(busy));
}

/* ---- Command line -----------------------------------------------------------------------------
 */

/* The first blank-separated word of cmdline that is the option `name` ("lpj=" matches any
 * value, "nowatchdog" only itself), or NULL. */
static const char *find_word(const char *cmdline, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = cmdline; *p; p += strcspn(p, " "), p += strspn(p, " ")) {
        if (strncmp(p, name, n) == 0 && (name[n - 1] == '=' || p[n] == ' ' || p[n] == 0))
            return p;
    }
    return NULL;
}

static int count_words(const char *cmdline, const char *prefix)
{
    int count = 0;
    for (const char *p = cmdline; (p = find_word(p, prefix)) != NULL; p += strcspn(p, " "))
        count++;
    return count;
}

static void assert_append(const char *user, const char *expected)
{
    char *out = NULL;
    assert_int_equal(hostcompat_cmdline_append(user, &out), 0);
    assert_string_equal(out, expected);
    free(out);
}

static void test_cmdline_clearcpuid_fits_the_kernel(void **state)
{
    /* The kernel copies clearcpuid's value into a 128-byte buffer: 127 characters survive. */
    const char *opt = find_word(hostcompat_cmdline_extra(), "clearcpuid=");
    assert_non_null(opt);
    size_t len = strcspn(opt, " ");
    size_t value = len - strlen("clearcpuid=");
    print_message("clearcpuid value: %zu characters (kernel keeps 127)\n", value);
    assert_true(len <= 127); /* even the whole option fits */
    assert_true(value <= 127);
    /* Each feature is named once, and the list includes what the emulator lacks. */
    const char *needed[] = {"cx16", "popcnt", "sse4_2", "smap", "rdtscp", "invpcid", "clwb"};
    for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++)
        assert_non_null(strstr(opt, needed[i]));
}

static void test_cmdline_append_basic(void **state)
{
    const char *extra = hostcompat_cmdline_extra();
    assert_append("", extra);
    assert_append(NULL, extra);
    char expected[512];
    snprintf(expected, sizeof(expected), "console=ttyS0 %s", extra);
    assert_append("console=ttyS0", expected);
    assert_append("console=ttyS0   ", expected); /* trailing blanks do not pile up */
    /* init's arguments stay after "--"; an lpj= there is not the kernel's */
    snprintf(expected, sizeof(expected), "console=ttyS0 %s -- lpj=7 single", extra);
    assert_append("console=ttyS0 -- lpj=7 single", expected);
    snprintf(expected, sizeof(expected), "%s -- x", extra);
    assert_append("-- x", expected);
}

static void test_cmdline_user_options_win(void **state)
{
    char *out = NULL;
    struct hostcompat_cmdline_note note;
    const char *user = "console=ttyS0 clearcpuid=sse4_2 lpj=1000 no-timer-check";
    assert_int_equal(hostcompat_cmdline_merge(user, &out, &note), 0);
    assert_int_equal(count_words(out, "clearcpuid="), 1);
    assert_non_null(strstr(out, "clearcpuid=sse4_2"));
    assert_int_equal(count_words(out, "lpj="), 1);
    assert_non_null(strstr(out, "lpj=1000"));
    assert_null(strstr(out, "no_timer_check"));
    assert_int_equal(count_words(out, "noxsave"), 1);
    assert_int_equal(count_words(out, "nowatchdog"), 1);
    assert_int_equal(count_words(out, "tsc="), 1);
    assert_string_equal(note.kept, "clearcpuid lpj no_timer_check");
    assert_int_equal(count_words(out, "nofsgsbase"), 1);
    assert_string_equal(note.added, "noxsave tsc=reliable nowatchdog nofsgsbase");
    assert_string_equal(out, "console=ttyS0 clearcpuid=sse4_2 lpj=1000 no-timer-check noxsave "
                             "tsc=reliable nowatchdog nofsgsbase");

    /* Appending again adds nothing: no duplicates, the line is unchanged byte for byte */
    char *again = NULL;
    assert_int_equal(hostcompat_cmdline_merge(out, &again, &note), 0);
    assert_string_equal(again, out);
    assert_string_equal(note.added, "");
    free(again);
    free(out);
}

static void test_cmdline_names_match_whole_words(void **state)
{
    /* Lookalikes and quoted text are not the options themselves. */
    char *out = NULL;
    struct hostcompat_cmdline_note note;
    const char *user = "clearcpuidx=1 nowatchdogs foo=\"lpj=1 noxsave\" tsc";
    assert_int_equal(hostcompat_cmdline_merge(user, &out, &note), 0);
    assert_string_equal(note.kept, "tsc"); /* a bare "tsc" does name the option */
    assert_int_equal(count_words(out, "clearcpuid="), 1);
    assert_int_equal(count_words(out, "lpj=5000000"), 1);
    assert_int_equal(count_words(out, "nowatchdog"), 1);
    assert_int_equal(count_words(out, "tsc=reliable"), 0);
    free(out);
}

/* ---- Module state: modes, the one log line, counters ----------------------------------------- */

static int count_lines_with(FILE *f, const char *needle, char *last, size_t size)
{
    fflush(f);
    rewind(f);
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strstr(line, needle)) {
            n++;
            if (last)
                snprintf(last, size, "%s", line);
        }
    }
    return n;
}

static void test_init_forced_modes(void **state)
{
    struct log log;
    log_init(&log, LOG_DEBUG);
    struct hostcompat hc;
    assert_int_equal(hostcompat_init(&hc, HOST_COMPAT_ON, -1, &log, NULL), 0);
    assert_true(hc.enabled);
    assert_false(hc.probed);
    assert_int_equal(hostcompat_init(&hc, HOST_COMPAT_OFF, -1, &log, NULL), 0);
    assert_false(hc.enabled);
    assert_false(hc.probed);
}

static void test_boot_cmdline_and_the_one_line(void **state)
{
    struct log log;
    log_init(&log, LOG_INFO);
    log.out = tmpfile();
    assert_non_null(log.out);
    struct hostcompat hc;
    char *out = NULL;

    /* Off: the user's line exactly, and nothing logged. */
    assert_int_equal(hostcompat_init(&hc, HOST_COMPAT_OFF, -1, &log, NULL), 0);
    assert_int_equal(hostcompat_boot_cmdline(&hc, "console=ttyS0", &out, &log, NULL), 0);
    assert_string_equal(out, "console=ttyS0");
    free(out);
    assert_int_equal(count_lines_with(log.out, "host-compat", NULL, 0), 0);

    /* On: merged, and one info line that says so and names the user's clearcpuid. */
    assert_int_equal(hostcompat_init(&hc, HOST_COMPAT_ON, -1, &log, NULL), 0);
    assert_int_equal(hostcompat_boot_cmdline(&hc, "clearcpuid=sse4_2", &out, &log, NULL), 0);
    assert_non_null(strstr(out, "noxsave"));
    assert_int_equal(count_words(out, "clearcpuid="), 1);
    free(out);
    hostcompat_announce(&hc, &log);
    hostcompat_record(&hc, HOSTCOMPAT_INSN_INT3, &log);
    char line[2048];
    assert_int_equal(count_lines_with(log.out, "host-compat mode on", line, sizeof(line)), 1);
    print_message("%s", line);
    assert_non_null(strstr(line, "kiln: info: "));
    assert_non_null(strstr(line, "forced by --host-compat on"));
    assert_non_null(strstr(line, "kernel command line += 'noxsave lpj=5000000"));
    assert_non_null(strstr(line, "own clearcpuid"));
    fclose(log.out);

    /* At the default level (warn) kiln stays silent on success: no line at all. */
    log_init(&log, LOG_WARN);
    log.out = tmpfile();
    assert_int_equal(hostcompat_init(&hc, HOST_COMPAT_ON, -1, &log, NULL), 0);
    assert_int_equal(hostcompat_boot_cmdline(&hc, "", &out, &log, NULL), 0);
    free(out);
    assert_int_equal(count_lines_with(log.out, "host-compat", NULL, 0), 0);
    assert_int_equal(hc.announced, 1); /* still counts as said: never repeated later */
    fclose(log.out);
}

struct record_thread {
    struct hostcompat *hc;
    const struct log *log;
    int first;
};

#define RECORD_THREADS 4
#define RECORD_EACH    4000

static void *record_many(void *arg)
{
    struct record_thread *t = arg;
    for (int i = 0; i < RECORD_EACH; i++)
        hostcompat_record(t->hc, (enum hostcompat_insn)((t->first + i) % HOSTCOMPAT_INSN_COUNT),
                          t->log);
    return NULL;
}

static void test_log_once_and_counters_across_threads(void **state)
{
    struct log log;
    log_init(&log, LOG_DEBUG);
    log.out = tmpfile();
    assert_non_null(log.out);
    struct hostcompat hc;
    assert_int_equal(hostcompat_init(&hc, HOST_COMPAT_ON, -1, &log, NULL), 0);

    pthread_t threads[RECORD_THREADS];
    struct record_thread args[RECORD_THREADS];
    for (int i = 0; i < RECORD_THREADS; i++) {
        args[i] = (struct record_thread){.hc = &hc, .log = &log, .first = i};
        assert_int_equal(pthread_create(&threads[i], NULL, record_many, &args[i]), 0);
    }
    for (int i = 0; i < RECORD_THREADS; i++)
        pthread_join(threads[i], NULL);

    assert_int_equal(count_lines_with(log.out, "host-compat mode on", NULL, 0), 1);
    uint64_t total = 0;
    for (int i = 0; i < HOSTCOMPAT_INSN_COUNT; i++) {
        assert_int_equal(hostcompat_count(&hc, i),
                         RECORD_THREADS * RECORD_EACH / HOSTCOMPAT_INSN_COUNT);
        total += hostcompat_count(&hc, i);
    }
    assert_int_equal(total, RECORD_THREADS * RECORD_EACH);

    char line[2048];
    hostcompat_log_stats(&hc, &log);
    assert_int_equal(count_lines_with(log.out, "host-compat: emulated", line, sizeof(line)), 1);
    assert_non_null(strstr(line, "int3 2000, fwait 2000"));
    assert_non_null(strstr(line, "stmxcsr 2000"));
    fclose(log.out);

    /* Stats stay quiet when the module is off */
    log.out = tmpfile();
    assert_int_equal(hostcompat_init(&hc, HOST_COMPAT_OFF, -1, &log, NULL), 0);
    hostcompat_log_stats(&hc, &log);
    assert_int_equal(count_lines_with(log.out, "host-compat", NULL, 0), 0);
    fclose(log.out);
}

static void test_handle_exit_inert_when_off_or_not_ours(void **state)
{
    struct log log;
    log_init(&log, LOG_WARN);
    struct hostcompat hc;
    struct kvm_run run;
    memset(&run, 0, sizeof(run));
    run.exit_reason = KVM_EXIT_INTERNAL_ERROR;
    run.emulation_failure.suberror = KVM_INTERNAL_ERROR_EMULATION;
    run.emulation_failure.ndata = 3;
    run.emulation_failure.flags = KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES;
    run.emulation_failure.insn_size = 1;
    run.emulation_failure.insn_bytes[0] = 0xCC;

    /* Off (hardware virtualisation): never looks, whatever the exit. fd -1 proves no ioctl. */
    assert_int_equal(hostcompat_init(&hc, HOST_COMPAT_OFF, -1, &log, NULL), 0);
    assert_int_equal(hostcompat_handle_exit(&hc, -1, &run, NULL, &log), 0);
    assert_int_equal(hc.declined, 0);

    /* On, but not an emulation failure */
    assert_int_equal(hostcompat_init(&hc, HOST_COMPAT_ON, -1, &log, NULL), 0);
    run.exit_reason = KVM_EXIT_IO;
    assert_int_equal(hostcompat_handle_exit(&hc, -1, &run, NULL, &log), 0);
    run.exit_reason = KVM_EXIT_INTERNAL_ERROR;
    run.internal.suberror = KVM_INTERNAL_ERROR_DELIVERY_EV;
    assert_int_equal(hostcompat_handle_exit(&hc, -1, &run, NULL, &log), 0);
    assert_int_equal(hc.declined, 0);

    /* On, emulation failure, but the vCPU state cannot be read: declined, not crashed */
    run.internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
    assert_int_equal(hostcompat_handle_exit(&hc, -1, &run, NULL, &log), 0);
    assert_int_equal(hc.declined, 1);
    assert_int_equal(hostcompat_count(&hc, HOSTCOMPAT_INSN_INT3), 0);
}

/* ---- With /dev/kvm: the real probe and a guest that needs every emulation ---------------------
 */

static int open_kvm(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        fprintf(stderr, "SKIP: no /dev/kvm (%s): probe and end-to-end tests not run\n",
                strerror(errno));
    return fd;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

#define PROBE_RUNS 20

static void test_kvm_probe(void **state)
{
    int kvm = open_kvm();
    if (kvm < 0)
        skip();
    uint64_t ns[PROBE_RUNS];
    struct hostcompat_probe_result first;
    for (int i = 0; i < PROBE_RUNS; i++) {
        struct hostcompat_probe_result result;
        struct error err = {.msg = ""};
        int r = hostcompat_probe_run(kvm, &result, &err);
        if (r < 0)
            fail_msg("probe failed: %s", err.msg);
        if (i == 0)
            first = result;
        assert_int_equal(result.emulated_ring0, first.emulated_ring0); /* deterministic */
        ns[i] = result.elapsed_ns;
    }
    qsort(ns, PROBE_RUNS, sizeof(ns[0]), compare_u64);
    fprintf(stderr,
            "host-compat probe: %s (exit reason %u, failing RIP 0x%llx); %d runs: min %.2f ms, "
            "median %.2f ms, max %.2f ms\n",
            first.emulated_ring0 ? "guest ring 0 is EMULATED" : "hardware virtualisation",
            first.exit_reason, (unsigned long long)first.failed_rip, PROBE_RUNS, ns[0] / 1e6,
            ns[PROBE_RUNS / 2] / 1e6, ns[PROBE_RUNS - 1] / 1e6);
#ifdef __SANITIZE_THREAD__
    /* Under ThreadSanitizer every run pays for its thread and mmap interception, and a busy
     * machine doubles the median (33 ms seen at load 17): bound the fastest run instead. */
    assert_true(ns[0] < 20 * 1000000ull);
#else
    assert_true(ns[PROBE_RUNS / 2] < 20 * 1000000ull); /* "a few ms": generous for CI noise */
#endif
    if (first.emulated_ring0)
        assert_int_equal(first.exit_reason, KVM_EXIT_INTERNAL_ERROR);

    bool emulated = !first.emulated_ring0;
    assert_int_equal(hostcompat_probe(kvm, &emulated, NULL), 0);
    assert_int_equal(emulated, first.emulated_ring0);
    struct log log;
    log_init(&log, LOG_WARN);
    struct hostcompat hc;
    assert_int_equal(hostcompat_init(&hc, HOST_COMPAT_AUTO, kvm, &log, NULL), 0);
    assert_true(hc.probed);
    assert_int_equal(hc.enabled, first.emulated_ring0);
    close(kvm);
}

/* The end-to-end guest: 64-bit ring 0 on kiln's boot page tables, running each instruction
 * host-compat emulates; int3 goes to a #BP handler that reports through a port. */
#define E2E_RAM       (4u << 20)
#define E2E_IDT       0x30000u
#define E2E_CODE      0x31000u
#define E2E_HANDLER   0x31800u
#define E2E_DATA      0x32000u
#define E2E_STACK     0x34000u
#define E2E_DONE_PORT 0xF1
#define E2E_MXCSR     0x7f80u /* round toward zero, all exceptions masked */

struct e2e {
    int kvm, vm, vcpu;
    struct kvm_run *run;
    size_t run_size;
    struct guest_mem mem;
    size_t int3_offset;
};

static size_t e2e_code(uint8_t *code, bool with_smap_insns, size_t *int3_offset)
{
    size_t n = 0;
#define EMIT(...)                                                                                  \
    do {                                                                                           \
        const uint8_t b[] = {__VA_ARGS__};                                                         \
        memcpy(code + n, b, sizeof(b));                                                            \
        n += sizeof(b);                                                                            \
    } while (0)
    if (with_smap_insns) {
        EMIT(0x0F, 0x01, 0xCA); /* clac */
        EMIT(0x0F, 0x01, 0xCB); /* stac: AC stays set, visible in the #BP frame */
    }
    EMIT(0x9B);             /* fwait */
    EMIT(0xDB, 0xE2);       /* fnclex */
    EMIT(0x9B, 0xDB, 0xE2); /* fclex */
    EMIT(0x0F, 0x77);       /* emms */
    uint32_t disp = E2E_DATA - (E2E_CODE + (uint32_t)n + 7);
    EMIT(0x0F, 0xAE, 0x15, (uint8_t)disp, (uint8_t)(disp >> 8), (uint8_t)(disp >> 16),
         (uint8_t)(disp >> 24));              /* ldmxcsr [rip -> E2E_DATA] */
    EMIT(0x65, 0x0F, 0xAE, 0x5B, 0x08);       /* stmxcsr gs:[rbx+8] */
    EMIT(0x43, 0x0F, 0xAE, 0x5C, 0x8D, 0x08); /* stmxcsr [r13+r9*4+8] */
    *int3_offset = n;
    EMIT(0xCC); /* int3 */
    EMIT(0xF4); /* hlt: not reached, the handler does not return */
#undef EMIT
    return n;
}

static void e2e_build(struct e2e *t, bool with_smap_insns)
{
    t->vm = ioctl(t->kvm, KVM_CREATE_VM, 0);
    assert_true(t->vm >= 0);
    assert_int_equal(guest_mem_init(&t->mem, E2E_RAM, NULL), 0);
    struct kvm_userspace_memory_region region = {
        .memory_size = E2E_RAM, .userspace_addr = (uint64_t)(uintptr_t)t->mem.regions[0].hva};
    assert_int_equal(ioctl(t->vm, KVM_SET_USER_MEMORY_REGION, &region), 0);
    assert_int_equal(boot_state_write_tables(&t->mem, BOOT_ENTRY_LINUX64), 0);

    uint8_t code[64];
    size_t n = e2e_code(code, with_smap_insns, &t->int3_offset);
    assert_int_equal(guest_mem_write(&t->mem, E2E_CODE, code, n), 0);
    const uint8_t handler[] = {0xE6, E2E_DONE_PORT, 0xF4}; /* out 0xF1, al; hlt */
    assert_int_equal(guest_mem_write(&t->mem, E2E_HANDLER, handler, sizeof(handler)), 0);
    /* 64-bit interrupt gate for vector 3 (SDM vol. 3, 6.14.1): present, DPL 0, type 0xE */
    uint64_t gate[2] = {(E2E_HANDLER & 0xffffu) | ((uint64_t)LAYOUT_SEL_CODE << 16) |
                            (0x8EULL << 40) | ((uint64_t)(E2E_HANDLER >> 16) << 48),
                        0};
    assert_int_equal(guest_mem_write(&t->mem, E2E_IDT + 3 * 16, gate, sizeof(gate)), 0);
    uint32_t mxcsr = E2E_MXCSR;
    assert_int_equal(guest_mem_write(&t->mem, E2E_DATA, &mxcsr, 4), 0);

    t->vcpu = ioctl(t->vm, KVM_CREATE_VCPU, 0UL);
    assert_true(t->vcpu >= 0);
    t->run_size = (size_t)ioctl(t->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    t->run = mmap(NULL, t->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, t->vcpu, 0);
    assert_true(t->run != MAP_FAILED);

    struct kvm_sregs sregs;
    assert_int_equal(ioctl(t->vcpu, KVM_GET_SREGS, &sregs), 0);
    boot_state_sregs(&sregs, BOOT_ENTRY_LINUX64);
    sregs.cr0 |= X86_CR0_MP | X86_CR0_NE;
    sregs.cr4 |= X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;
    sregs.idt.base = E2E_IDT;
    sregs.idt.limit = 4 * 16 - 1;
    sregs.gs.base = E2E_DATA;
    assert_int_equal(ioctl(t->vcpu, KVM_SET_SREGS, &sregs), 0);
    struct kvm_regs regs;
    memset(&regs, 0, sizeof(regs));
    regs.rip = E2E_CODE;
    regs.rsp = E2E_STACK;
    regs.rflags = X86_EFLAGS_FIXED;
    regs.r13 = E2E_DATA;
    regs.r9 = 2;
    assert_int_equal(ioctl(t->vcpu, KVM_SET_REGS, &regs), 0);
    struct kvm_fpu fpu;
    memset(&fpu, 0, sizeof(fpu));
    fpu.fcw = 0x37f;
    fpu.fsw = 0x0001; /* a masked invalid-operation flag for fnclex to clear */
    fpu.ftwx = 0x01;  /* st0 in use, for emms to empty */
    assert_int_equal(ioctl(t->vcpu, KVM_SET_FPU, &fpu), 0); /* MXCSR: KVM's reset 0x1f80 */
}

static void e2e_destroy(struct e2e *t)
{
    munmap(t->run, t->run_size);
    close(t->vcpu);
    close(t->vm);
    guest_mem_destroy(&t->mem);
}

/* Runs until the handler's port write; every emulation failure must be host-compat's. */
static void e2e_run(struct e2e *t, struct hostcompat *hc, const struct log *log)
{
    for (int exits = 0; exits < 64; exits++) {
        assert_int_equal(ioctl(t->vcpu, KVM_RUN, 0), 0);
        struct kvm_run *run = t->run;
        if (run->exit_reason == KVM_EXIT_IO && run->io.port == E2E_DONE_PORT)
            return;
        if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR &&
            hostcompat_handle_exit(hc, t->vcpu, run, &t->mem, log) == 1)
            continue;
        struct kvm_regs regs;
        ioctl(t->vcpu, KVM_GET_REGS, &regs);
        fail_msg("unexpected exit %u (suberror %u) at RIP 0x%llx", run->exit_reason,
                 run->internal.suberror, (unsigned long long)regs.rip);
    }
    fail_msg("the guest never reached its #BP handler");
}

static uint64_t e2e_get64(struct e2e *t, uint64_t gpa)
{
    uint64_t v = 0;
    assert_int_equal(guest_mem_read(&t->mem, gpa, &v, sizeof(v)), 0);
    return v;
}

static void test_kvm_guest_end_to_end(void **state)
{
    struct e2e t = {.kvm = open_kvm()};
    if (t.kvm < 0)
        skip();
    struct log log;
    log_init(&log, LOG_WARN);
    struct hostcompat hc;
    assert_int_equal(hostcompat_init(&hc, HOST_COMPAT_AUTO, t.kvm, &log, NULL), 0);
    /* clac/stac need SMAP on hardware; an emulated ring 0 is where they matter. */
    e2e_build(&t, hc.enabled);
    e2e_run(&t, &hc, &log);

    struct kvm_regs regs;
    static struct kvm_xsave xsave;
    assert_int_equal(ioctl(t.vcpu, KVM_GET_REGS, &regs), 0);
    assert_int_equal(ioctl(t.vcpu, KVM_GET_XSAVE, &xsave), 0);
    assert_int_equal(xsave_field(&xsave, 24, 4), E2E_MXCSR);
    assert_int_equal(xsave_field(&xsave, 2, 2) & 0x80ff, 0); /* fnclex */
    assert_int_equal(xsave_field(&xsave, 4, 1), 0);          /* emms */
    assert_int_equal(e2e_get64(&t, E2E_DATA + 8) & 0xffffffff, E2E_MXCSR);
    assert_int_equal(e2e_get64(&t, E2E_DATA + 16) & 0xffffffff, E2E_MXCSR);
    /* The #BP frame: RIP just after the int3, then CS, then RFLAGS */
    assert_int_equal(regs.rsp, E2E_STACK - 40);
    assert_int_equal(e2e_get64(&t, regs.rsp), E2E_CODE + t.int3_offset + 1);
    assert_int_equal(e2e_get64(&t, regs.rsp + 8), LAYOUT_SEL_CODE);
    uint64_t rflags = e2e_get64(&t, regs.rsp + 16);
    assert_int_equal(!!(rflags & X86_EFLAGS_AC), hc.enabled);

    char counts[256] = "";
    for (int i = 0; i < HOSTCOMPAT_INSN_COUNT; i++)
        snprintf(counts + strlen(counts), sizeof(counts) - strlen(counts), " %s=%llu",
                 hostcompat_insn_name(i), (unsigned long long)hostcompat_count(&hc, i));
    fprintf(stderr, "host-compat end-to-end (%s):%s\n",
            hc.enabled ? "emulated ring 0, host-compat on" : "hardware, host-compat off", counts);
    if (hc.enabled) {
        assert_int_equal(hostcompat_count(&hc, HOSTCOMPAT_INSN_INT3), 1);
        assert_int_equal(hostcompat_count(&hc, HOSTCOMPAT_INSN_LDMXCSR), 1);
        assert_int_equal(hostcompat_count(&hc, HOSTCOMPAT_INSN_STMXCSR), 2);
    } else {
        for (int i = 0; i < HOSTCOMPAT_INSN_COUNT; i++)
            assert_int_equal(hostcompat_count(&hc, i), 0);
    }
    e2e_destroy(&t);
    close(t.kvm);
}

/* When on, only the vmcall-based KVM PV features go; other leaves and bits stay. */
static void test_cpuid_hides_vmcall_features(void **state)
{
    struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + 2 * sizeof(struct kvm_cpuid_entry2));
    assert_non_null(cpuid);
    cpuid->nent = 2;
    cpuid->entries[0].function = 0x40000001;
    cpuid->entries[0].eax = 0xffffffff;
    cpuid->entries[1].function = 1;
    cpuid->entries[1].eax = 0xffffffff;
    struct hostcompat hc = {.enabled = false};
    hostcompat_adjust_cpuid(&hc, cpuid);
    assert_int_equal(cpuid->entries[0].eax, 0xffffffff);
    hc.enabled = true;
    hostcompat_adjust_cpuid(&hc, cpuid);
    /* PV_UNHALT 7, PV_TLB_FLUSH 9, PV_SEND_IPI 11, PV_SCHED_YIELD 13 */
    assert_int_equal(cpuid->entries[0].eax,
                     0xffffffffu & ~((1u << 7) | (1u << 9) | (1u << 11) | (1u << 13)));
    assert_int_equal(cpuid->entries[1].eax, 0xffffffff);
    free(cpuid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clac_stac_toggle_ac),
        cmocka_unit_test(test_fwait),
        cmocka_unit_test(test_fnclex_and_fclex),
        cmocka_unit_test(test_emms),
        cmocka_unit_test(test_int3_requests_bp_after_the_byte),
        cmocka_unit_test(test_cpl3_never_handled),
        cmocka_unit_test(test_unknown_instructions),
        cmocka_unit_test(test_truncated_bytes),
        cmocka_unit_test(test_modes_other_than_32_and_64_bit),
        cmocka_unit_test_setup_teardown(test_ldmxcsr_base_disp8, mem_setup, mem_teardown),
        cmocka_unit_test_setup_teardown(test_stmxcsr_base_index_scale_disp32, mem_setup,
                                        mem_teardown),
        cmocka_unit_test_setup_teardown(test_ldmxcsr_rip_relative, mem_setup, mem_teardown),
        cmocka_unit_test_setup_teardown(test_rex_extended_registers, mem_setup, mem_teardown),
        cmocka_unit_test_setup_teardown(test_segment_overrides, mem_setup, mem_teardown),
        cmocka_unit_test_setup_teardown(test_address_size_override_in_64bit_mode, mem_setup,
                                        mem_teardown),
        cmocka_unit_test_setup_teardown(test_32bit_protected_mode, mem_setup, mem_teardown),
        cmocka_unit_test_setup_teardown(test_page_crossing_operand, mem_setup, mem_teardown),
        cmocka_unit_test_setup_teardown(test_page_crossing_into_a_bad_page_writes_nothing,
                                        mem_setup, mem_teardown),
        cmocka_unit_test_setup_teardown(test_operand_outside_guest_ram, mem_setup, mem_teardown),
        cmocka_unit_test_setup_teardown(test_mxcsr_faults_left_to_the_guest, mem_setup,
                                        mem_teardown),
        cmocka_unit_test(test_cpu_from_kvm),
        cmocka_unit_test(test_events_inject_bp),
        cmocka_unit_test(test_cmdline_clearcpuid_fits_the_kernel),
        cmocka_unit_test(test_cmdline_append_basic),
        cmocka_unit_test(test_cmdline_user_options_win),
        cmocka_unit_test(test_cmdline_names_match_whole_words),
        cmocka_unit_test(test_init_forced_modes),
        cmocka_unit_test(test_boot_cmdline_and_the_one_line),
        cmocka_unit_test(test_log_once_and_counters_across_threads),
        cmocka_unit_test(test_handle_exit_inert_when_off_or_not_ours),
        cmocka_unit_test(test_cpuid_hides_vmcall_features),
        cmocka_unit_test(test_kvm_probe),
        cmocka_unit_test(test_kvm_guest_end_to_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
