/* Unit tests, on /dev/kvm, for vCPU state (vcpu_state.c) and VM state (vm_state.c): a VM with
 * distinctive values saved, restored into a fresh VM and saved again; a running guest that
 * goes on identically after a restore; and states restore refuses. Skipped without KVM. */
#include <asm/kvm_para.h>
#include <asm/processor-flags.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/vm/guest_mem.h"
#include "kiln/vm/kvm.h"
#include "kiln/boot/layout.h"
#include "kiln/vcpu/vcpu.h"
#include "kiln/vcpu/vcpu_state.h"
#include "kiln/vm/vm_state.h"

/* Architectural MSR numbers (Intel SDM vol. 4) and local APIC register offsets (vol. 3,
 * 10.4.1); the UAPI headers do not carry them. */
#define MSR_IA32_TSC          0x10
#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_CR_PAT       0x277
#define MSR_IA32_TSC_DEADLINE 0x6e0
#define MSR_STAR              0xc0000081
#define MSR_LSTAR             0xc0000082
#define MSR_CSTAR             0xc0000083
#define MSR_SYSCALL_MASK      0xc0000084
#define MSR_KERNEL_GS_BASE    0xc0000102
#define APIC_TPR              0x80
#define APIC_LDR              0xd0
#define APIC_DFR              0xe0
#define APIC_SVR              0xf0
#define APIC_LVT_TIMER        0x320
#define APIC_TIMER_CURRENT    0x390
#define APIC_LVT_TSC_DEADLINE (2u << 17)

#define RAM       (4u << 20)
#define CODE      0x10000u
#define STACK     0x20000u
#define KVMCLOCK  0x30000u /* the guest's pvclock page, for MSR_KVM_SYSTEM_TIME_NEW */
#define DONE_PORT 0xf1
#define CLOCK_SET 123456789000ull     /* 123.46 s of guest time */
#define TOLERANCE (5ull * 1000000000) /* ns: generous, machines here are shared and slow */

/* One VM as kiln builds it (irqchip, PIT, KVM's CPUID normalised, boot MSRs and defaults),
 * with RAM and one vCPU. */
struct machine {
    int vm, vcpu;
    struct kvm_run *run;
    size_t run_size;
    struct guest_mem mem;
};

struct env {
    struct kvm_host kvm;
    struct kvm_cpuid2 *cpuid;
    struct vcpu_state_caps caps;
    bool usable;
};

static int machine_create(struct env *env, struct machine *m, struct error *err)
{
    memset(m, 0, sizeof(*m));
    m->vcpu = -1;
    m->vm = kvm_host_create_vm(&env->kvm, err);
    if (m->vm < 0)
        return m->vm;
    int r = guest_mem_init(&m->mem, RAM, err);
    if (r < 0)
        return r;
    struct kvm_userspace_memory_region region = {
        .memory_size = RAM, .userspace_addr = (uint64_t)(uintptr_t)m->mem.regions[0].hva};
    uint64_t identity_map = LAYOUT_KVM_IDENTITY_MAP;
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    if (ioctl(m->vm, KVM_SET_USER_MEMORY_REGION, &region) < 0 ||
        ioctl(m->vm, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS) < 0 ||
        ioctl(m->vm, KVM_SET_IDENTITY_MAP_ADDR, &identity_map) < 0 ||
        ioctl(m->vm, KVM_CREATE_IRQCHIP, 0) < 0 || ioctl(m->vm, KVM_CREATE_PIT2, &pit) < 0)
        return error_fmt(err, -errno, "VM set-up: %s", strerror(errno));
    m->vcpu = ioctl(m->vm, KVM_CREATE_VCPU, 0UL);
    if (m->vcpu < 0)
        return error_fmt(err, -errno, "KVM_CREATE_VCPU: %s", strerror(errno));
    m->run_size = (size_t)env->kvm.vcpu_mmap_size;
    m->run = mmap(NULL, m->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, m->vcpu, 0);
    if (m->run == MAP_FAILED) {
        m->run = NULL;
        return error_fmt(err, -errno, "mmap kvm_run: %s", strerror(errno));
    }
    if (ioctl(m->vcpu, KVM_SET_CPUID2, env->cpuid) < 0)
        return error_fmt(err, -errno, "KVM_SET_CPUID2: %s", strerror(errno));
    r = vcpu_set_boot_msrs(m->vcpu, err);
    return r < 0 ? r : boot_state_vcpu_defaults(m->vcpu, err);
}

static void machine_destroy(struct machine *m)
{
    if (m->run)
        munmap(m->run, m->run_size);
    if (m->vcpu >= 0)
        close(m->vcpu);
    if (m->vm >= 0)
        close(m->vm);
    guest_mem_destroy(&m->mem);
}

static void machine_must_create(struct env *env, struct machine *m)
{
    struct error err = {.msg = ""};
    if (machine_create(env, m, &err) < 0)
        fail_msg("%s", err.msg);
}

static int group_setup(void **state)
{
    struct env *env = calloc(1, sizeof(*env));
    *state = env;
    struct error err = {.msg = ""};
    if (kvm_host_open(&env->kvm, NULL, &err) < 0) {
        fprintf(stderr, "SKIP: no /dev/kvm (%s): KVM state tests not run\n", err.msg);
        return 0;
    }
    int vm = kvm_host_create_vm(&env->kvm, &err);
    if (vm < 0) {
        fprintf(stderr, "SKIP: no /dev/kvm (%s): KVM state tests not run\n", err.msg);
        return 0;
    }
    close(vm);
    /* From here on KVM is there: anything failing is a failure, not a skip. */
    int r = cpuid_get_supported(env->kvm.fd, &env->cpuid, &err);
    if (r == 0) {
        cpuid_normalise(env->cpuid, 0, 1);
        struct machine m;
        r = machine_create(env, &m, &err);
        if (r == 0)
            r = vcpu_state_probe(env->kvm.fd, m.vm, m.vcpu, &env->caps, &err);
        machine_destroy(&m);
    }
    if (r < 0) {
        fprintf(stderr, "KVM state tests: %s\n", err.msg);
        return -1;
    }
    env->usable = true;

    /* What this host's KVM offers, for the record. */
    uint32_t xsave_eax = 0, xsave_ecx = 0;
    for (uint32_t i = 0; i < env->cpuid->nent; i++) {
        if (env->cpuid->entries[i].function == 0xd && env->cpuid->entries[i].index == 0) {
            xsave_eax = env->cpuid->entries[i].eax;
            xsave_ecx = env->cpuid->entries[i].ecx;
        }
    }
    fprintf(
        stderr,
        "KVM state on this host: XSAVE area %u bytes (%s), CPUID 0xD.0 EAX 0x%x (XCR0 "
        "bits KVM offers) ECX %u (bytes they need), XCRs %s; MSRs: %u listed (KVM's index list and "
        "kiln's extras), %u readable and saved:",
        env->caps.xsave_size,
        env->caps.xsave_size == 0 ? "none: KVM_GET_FPU"
        : env->caps.xsave2        ? "KVM_GET_XSAVE2"
                                  : "KVM_GET_XSAVE",
        xsave_eax, xsave_ecx, env->caps.xcrs ? "yes" : "no", env->caps.nmsrs_listed,
        env->caps.nmsrs);
    for (uint32_t i = 0; i < env->caps.nmsrs; i++)
        fprintf(stderr, " %x", env->caps.msrs[i]);
    fprintf(stderr, "\n");
    return 0;
}

static int group_teardown(void **state)
{
    struct env *env = *state;
    free(env->cpuid);
    kvm_host_close(&env->kvm);
    free(env);
    return 0;
}

static struct env *env_or_skip(void **state)
{
    struct env *env = *state;
    if (!env->usable)
        skip();
    return env;
}

static bool has_msr(const struct env *env, uint32_t index)
{
    for (uint32_t i = 0; i < env->caps.nmsrs; i++) {
        if (env->caps.msrs[i] == index)
            return true;
    }
    return false;
}

static void set_msr(const struct env *env, int vcpu, uint32_t index, uint64_t value)
{
    if (!has_msr(env, index))
        return; /* not carried on this host: nothing to check */
    struct {
        struct kvm_msrs head;
        struct kvm_msr_entry entry;
    } msrs = {.head.nmsrs = 1, .entry = {.index = index, .data = value}};
    if (ioctl(vcpu, KVM_SET_MSRS, &msrs) != 1)
        fail_msg("KVM_SET_MSRS refused 0x%x = 0x%llx", index, (unsigned long long)value);
}

static uint64_t msr_of(const struct vcpu_state *s, uint32_t index)
{
    for (uint32_t i = 0; i < s->nmsrs; i++) {
        if (s->msrs[i].index == index)
            return s->msrs[i].data;
    }
    fail_msg("MSR 0x%x not saved", index);
    return 0;
}

static void lapic_put(struct kvm_lapic_state *lapic, unsigned reg, uint32_t value)
{
    memcpy(&lapic->regs[reg], &value, sizeof(value));
}

static uint32_t lapic_get(const struct kvm_lapic_state *lapic, unsigned reg)
{
    uint32_t value;
    memcpy(&value, &lapic->regs[reg], sizeof(value));
    return value;
}

/* 64-bit long mode on kiln's boot page tables, with a value in every register KVM holds that
 * a guest can set: general and control registers, XMM0 and MXCSR, XCR0, debug registers,
 * MSRs, the local APIC (TSC-deadline timer armed far ahead), an NMI mask. */
static void set_distinctive_vcpu(const struct env *env, struct machine *m)
{
    int fd = m->vcpu;
    assert_int_equal(boot_state_write_tables(&m->mem, BOOT_ENTRY_LINUX64), 0);
    struct kvm_sregs sregs;
    assert_int_equal(ioctl(fd, KVM_GET_SREGS, &sregs), 0);
    boot_state_sregs(&sregs, BOOT_ENTRY_LINUX64);
    sregs.cr0 |= X86_CR0_MP | X86_CR0_NE | X86_CR0_WP;
    sregs.cr4 |= X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;
    sregs.cr2 = 0xdead000;
    sregs.fs.base = 0x7f0000001000;
    sregs.gs.base = 0xffff888000002000;
    sregs.efer |= 1ULL << 0 | 1ULL << 11; /* SCE, NXE */
    assert_int_equal(ioctl(fd, KVM_SET_SREGS, &sregs), 0);

    /* struct kvm_regs starts with the 16 general registers, RAX ... R15. */
    uint64_t gpr[16];
    for (unsigned i = 0; i < 16; i++)
        gpr[i] = 0x1111111111111111ull * (i + 1);
    struct kvm_regs regs;
    memset(&regs, 0, sizeof(regs));
    memcpy(&regs, gpr, sizeof(gpr));
    regs.rsp = STACK;
    regs.rip = CODE;
    regs.rflags = X86_EFLAGS_FIXED | X86_EFLAGS_CF | X86_EFLAGS_ZF;
    assert_int_equal(ioctl(fd, KVM_SET_REGS, &regs), 0);

    if (env->caps.xsave_size) {
        struct kvm_xsave *xsave = calloc(1, VCPU_STATE_XSAVE_SIZE);
        assert_int_equal(ioctl(fd, KVM_GET_XSAVE, xsave), 0);
        uint8_t *area = (uint8_t *)xsave->region;
        uint32_t mxcsr = 0x7f80; /* round toward zero, all masked */
        memcpy(area + 24, &mxcsr, 4);
        for (unsigned i = 0; i < 16; i++)
            area[160 + i] = (uint8_t)(0xa0 + i); /* XMM0 */
        area[512] |= 0x3;                        /* XSTATE_BV: x87 and SSE present */
        assert_int_equal(ioctl(fd, KVM_SET_XSAVE, xsave), 0);
        free(xsave);
    }
    if (env->caps.xcrs) {
        struct kvm_xcrs xcrs = {.nr_xcrs = 1, .xcrs[0] = {.xcr = 0, .value = 0x3}};
        assert_int_equal(ioctl(fd, KVM_SET_XCRS, &xcrs), 0);
    }
    struct kvm_debugregs dbg;
    assert_int_equal(ioctl(fd, KVM_GET_DEBUGREGS, &dbg), 0);
    dbg.db[0] = 0x1000;
    dbg.db[3] = 0xffffffff81000000;
    assert_int_equal(ioctl(fd, KVM_SET_DEBUGREGS, &dbg), 0);

    struct kvm_lapic_state lapic;
    assert_int_equal(ioctl(fd, KVM_GET_LAPIC, &lapic), 0);
    lapic_put(&lapic, APIC_TPR, 0x20);
    lapic_put(&lapic, APIC_LDR, 0x01000000);
    lapic_put(&lapic, APIC_DFR, 0xffffffff);
    lapic_put(&lapic, APIC_SVR, 0x1ff);
    lapic_put(&lapic, APIC_LVT_TIMER, APIC_LVT_TSC_DEADLINE | 0xec);
    assert_int_equal(ioctl(fd, KVM_SET_LAPIC, &lapic), 0);

    set_msr(env, fd, MSR_STAR, 0x0023001000000000ull);
    set_msr(env, fd, MSR_LSTAR, 0xffffffff81a00000ull);
    set_msr(env, fd, MSR_CSTAR, 0xffffffff81a00100ull);
    set_msr(env, fd, MSR_SYSCALL_MASK, 0x47700);
    set_msr(env, fd, MSR_KERNEL_GS_BASE, 0xffff888007c00000ull);
    set_msr(env, fd, MSR_IA32_SYSENTER_CS, 0x10);
    set_msr(env, fd, MSR_IA32_SYSENTER_ESP, 0xfffffe0000003000ull);
    set_msr(env, fd, MSR_IA32_SYSENTER_EIP, 0xffffffff81a01000ull);
    set_msr(env, fd, MSR_IA32_CR_PAT, 0x0007010600070106ull);
    set_msr(env, fd, MSR_KVM_SYSTEM_TIME_NEW, KVMCLOCK | 1);
    set_msr(env, fd, MSR_IA32_TSC, 1ull << 40);
    set_msr(env, fd, MSR_IA32_TSC_DEADLINE, 1ull << 60); /* far ahead: never fires here */

    struct kvm_vcpu_events events;
    assert_int_equal(ioctl(fd, KVM_GET_VCPU_EVENTS, &events), 0);
    events.nmi.masked = 1;
    events.flags = KVM_VCPUEVENT_VALID_SHADOW;
    assert_int_equal(ioctl(fd, KVM_SET_VCPU_EVENTS, &events), 0);
    struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_HALTED};
    assert_int_equal(ioctl(fd, KVM_SET_MP_STATE, &mp), 0);
}

/* PIC mask and vector bases, IOAPIC redirection entries, PIT channels 1 and 2 (channel 0
 * would fire into the PIC and make the comparison a race), the clock. */
static void set_distinctive_vm(struct machine *m)
{
    struct kvm_irqchip pic = {.chip_id = KVM_IRQCHIP_PIC_MASTER};
    assert_int_equal(ioctl(m->vm, KVM_GET_IRQCHIP, &pic), 0);
    pic.chip.pic.irq_base = 0x30;
    pic.chip.pic.imr = 0xfa;
    pic.chip.pic.elcr = 0x08;
    assert_int_equal(ioctl(m->vm, KVM_SET_IRQCHIP, &pic), 0);
    pic = (struct kvm_irqchip){.chip_id = KVM_IRQCHIP_PIC_SLAVE};
    assert_int_equal(ioctl(m->vm, KVM_GET_IRQCHIP, &pic), 0);
    pic.chip.pic.irq_base = 0x38;
    pic.chip.pic.imr = 0xef;
    assert_int_equal(ioctl(m->vm, KVM_SET_IRQCHIP, &pic), 0);
    struct kvm_irqchip ioapic = {.chip_id = KVM_IRQCHIP_IOAPIC};
    assert_int_equal(ioctl(m->vm, KVM_GET_IRQCHIP, &ioapic), 0);
    ioapic.chip.ioapic.redirtbl[4].fields.vector = 0x34;
    ioapic.chip.ioapic.redirtbl[4].fields.mask = 1;
    ioapic.chip.ioapic.redirtbl[9].fields.vector = 0x39;
    ioapic.chip.ioapic.redirtbl[9].fields.trig_mode = 1;
    ioapic.chip.ioapic.redirtbl[9].fields.mask = 1;
    assert_int_equal(ioctl(m->vm, KVM_SET_IRQCHIP, &ioapic), 0);

    struct kvm_pit_state2 pit;
    assert_int_equal(ioctl(m->vm, KVM_GET_PIT2, &pit), 0);
    pit.channels[1].count = 0x1234;
    pit.channels[1].mode = 2;
    pit.channels[1].rw_mode = 3;
    pit.channels[2].count = 0x0800;
    pit.channels[2].mode = 3;
    pit.channels[2].rw_mode = 3;
    assert_int_equal(ioctl(m->vm, KVM_SET_PIT2, &pit), 0);

    struct kvm_clock_data clock = {.clock = CLOCK_SET};
    assert_int_equal(ioctl(m->vm, KVM_SET_CLOCK, &clock), 0);
}

struct saved {
    struct vm_state vm;
    struct vcpu_state vcpu;
};

static void save_machine(const struct env *env, struct machine *m, struct saved *out)
{
    struct error err = {.msg = ""};
    if (vm_state_save(m->vm, &out->vm, &err) < 0 ||
        vcpu_state_save(m->vcpu, &env->caps, &out->vcpu, &err) < 0)
        fail_msg("%s", err.msg);
}

static void restore_machine(const struct env *env, struct machine *m, const struct saved *in)
{
    struct error err = {.msg = ""};
    if (vm_state_restore(m->vm, &in->vm, &err) < 0 ||
        vcpu_state_restore(m->vcpu, &env->caps, &in->vcpu, &err) < 0)
        fail_msg("%s", err.msg);
}

static void assert_pit_channels_equal(const struct kvm_pit_state2 *a,
                                      const struct kvm_pit_state2 *b)
{
    assert_int_equal(a->flags, b->flags);
    for (int i = 0; i < 3; i++) {
        const struct kvm_pit_channel_state *x = &a->channels[i], *y = &b->channels[i];
        /* count_load_time is the host's time of the (re)load: KVM_SET_PIT2 restarts it. */
        assert_int_equal(x->count, y->count);
        assert_int_equal(x->latched_count, y->latched_count);
        assert_int_equal(x->count_latched, y->count_latched);
        assert_int_equal(x->status_latched, y->status_latched);
        assert_int_equal(x->status, y->status);
        assert_int_equal(x->read_state, y->read_state);
        assert_int_equal(x->write_state, y->write_state);
        assert_int_equal(x->write_latch, y->write_latch);
        assert_int_equal(x->rw_mode, y->rw_mode);
        assert_int_equal(x->mode, y->mode);
        assert_int_equal(x->bcd, y->bcd);
        assert_int_equal(x->gate, y->gate);
    }
}

/* The TSC and kvmclock run on between two saves; everything else must be the same bytes. */
static void assert_vcpu_equal(const struct vcpu_state *a, const struct vcpu_state *b)
{
    assert_memory_equal(&a->regs, &b->regs, sizeof(a->regs));
    assert_memory_equal(&a->sregs, &b->sregs, sizeof(a->sregs));
    assert_memory_equal(&a->fpu, &b->fpu, sizeof(a->fpu));
    assert_int_equal(a->xsave_size, b->xsave_size);
    assert_memory_equal(a->xsave, b->xsave, sizeof(a->xsave));
    assert_memory_equal(&a->xcrs, &b->xcrs, sizeof(a->xcrs));
    assert_memory_equal(&a->debugregs, &b->debugregs, sizeof(a->debugregs));
    assert_memory_equal(&a->events, &b->events, sizeof(a->events));
    assert_memory_equal(&a->mp_state, &b->mp_state, sizeof(a->mp_state));
    assert_int_equal(a->tsc_khz, b->tsc_khz);
    /* The LAPIC, but for the timer's current count, which counts down by itself. */
    for (unsigned reg = 0; reg < KVM_APIC_REG_SIZE; reg += 16) {
        if (reg != APIC_TIMER_CURRENT && lapic_get(&a->lapic, reg) != lapic_get(&b->lapic, reg))
            fail_msg("LAPIC register 0x%x: 0x%x before, 0x%x after", reg, lapic_get(&a->lapic, reg),
                     lapic_get(&b->lapic, reg));
    }
    assert_int_equal(a->nmsrs, b->nmsrs);
    uint64_t tsc_tolerance = (uint64_t)(a->tsc_khz ? a->tsc_khz : 4000000) * 1000 * 5;
    for (uint32_t i = 0; i < a->nmsrs; i++) {
        assert_int_equal(a->msrs[i].index, b->msrs[i].index);
        if (a->msrs[i].index == MSR_IA32_TSC) {
            assert_true(b->msrs[i].data >= a->msrs[i].data);
            assert_true(b->msrs[i].data - a->msrs[i].data < tsc_tolerance);
        } else if (a->msrs[i].data != b->msrs[i].data) {
            fail_msg("MSR 0x%x: 0x%llx saved, 0x%llx after restore", a->msrs[i].index,
                     (unsigned long long)a->msrs[i].data, (unsigned long long)b->msrs[i].data);
        }
    }
}

static void test_state_round_trip(void **state)
{
    struct env *env = env_or_skip(state);
    struct machine a, b;
    machine_must_create(env, &a);
    set_distinctive_vcpu(env, &a);
    set_distinctive_vm(&a);
    struct saved *first = calloc(1, sizeof(*first)), *second = calloc(1, sizeof(*second));
    save_machine(env, &a, first);

    /* The values set above are what was saved. */
    const struct vcpu_state *s = &first->vcpu;
    assert_int_equal(s->regs.rip, CODE);
    assert_int_equal(s->regs.r15, 0x1111111111111111ull * 16);
    assert_int_equal(s->sregs.cr2, 0xdead000);
    assert_int_equal(s->sregs.cr8, 2); /* the TPR's priority class */
    assert_int_equal(s->mp_state.mp_state, KVM_MP_STATE_HALTED);
    assert_int_equal(s->events.nmi.masked, 1);
    assert_int_equal(s->debugregs.db[3], 0xffffffff81000000ull);
    assert_int_equal(lapic_get(&s->lapic, APIC_SVR), 0x1ff);
    if (env->caps.xsave_size)
        assert_int_equal(s->xsave[160], 0xa0);
    if (env->caps.xcrs)
        assert_int_equal(s->xcrs.xcrs[0].value, 0x3);
    if (has_msr(env, MSR_LSTAR))
        assert_int_equal(msr_of(s, MSR_LSTAR), 0xffffffff81a00000ull);
    if (has_msr(env, MSR_IA32_TSC_DEADLINE))
        assert_int_equal(msr_of(s, MSR_IA32_TSC_DEADLINE), 1ull << 60);
    assert_int_equal(first->vm.pic_master.chip.pic.imr, 0xfa);
    assert_int_equal(first->vm.ioapic.chip.ioapic.redirtbl[9].fields.vector, 0x39);
    assert_int_equal(first->vm.pit.channels[1].count, 0x1234);
    assert_true(first->vm.clock.clock >= CLOCK_SET);
    assert_true(first->vm.clock.clock < CLOCK_SET + TOLERANCE);
    assert_int_equal(s->msrs_skipped, 0);

    machine_must_create(env, &b);
    restore_machine(env, &b, first);
    save_machine(env, &b, second);

    assert_vcpu_equal(&first->vcpu, &second->vcpu);
    assert_memory_equal(&first->vm.pic_master, &second->vm.pic_master,
                        sizeof(first->vm.pic_master));
    assert_memory_equal(&first->vm.pic_slave, &second->vm.pic_slave, sizeof(first->vm.pic_slave));
    assert_memory_equal(&first->vm.ioapic, &second->vm.ioapic, sizeof(first->vm.ioapic));
    assert_pit_channels_equal(&first->vm.pit, &second->vm.pit);
    assert_true(second->vm.clock.clock >= first->vm.clock.clock);
    assert_true(second->vm.clock.clock - first->vm.clock.clock < TOLERANCE);

    free(first);
    free(second);
    machine_destroy(&a);
    machine_destroy(&b);
}

/* add rax, rbx; imul rbx, rbx, 3; inc rcx; in al, DONE_PORT; add rdx, rax; jmp back: each
 * pass changes the registers, and stops at the port for a byte from the test. */
static const uint8_t loop_code[] = {0x48, 0x01, 0xd8,      0x48, 0x6b, 0xdb, 0x03, 0x48, 0xff,
                                    0xc1, 0xe4, DONE_PORT, 0x48, 0x01, 0xc2, 0xeb, 0xef};
#define AFTER_IN 12 /* offset of the instruction after the in */

/* Runs to the guest's in from DONE_PORT and answers it with value (KVM completes the in at
 * the next KVM_RUN). */
static void run_to_port(struct machine *m, uint8_t value)
{
    assert_int_equal(ioctl(m->vcpu, KVM_RUN, 0), 0);
    if (m->run->exit_reason != KVM_EXIT_IO || m->run->io.port != DONE_PORT ||
        m->run->io.direction != KVM_EXIT_IO_IN) {
        struct kvm_regs regs;
        ioctl(m->vcpu, KVM_GET_REGS, &regs);
        fail_msg("unexpected exit %u at RIP 0x%llx", m->run->exit_reason,
                 (unsigned long long)regs.rip);
    }
    *((uint8_t *)m->run + m->run->io.data_offset) = value;
}

/* Save a guest stopped at a port read (completed first: vcpu_state_complete_io), restore it
 * into a new VM with a copy of its RAM, and run both: each pass they must hold the same
 * registers. */
static void test_guest_continues_after_restore(void **state)
{
    struct env *env = env_or_skip(state);
    struct machine a, b;
    machine_must_create(env, &a);
    assert_int_equal(boot_state_write_tables(&a.mem, BOOT_ENTRY_LINUX64), 0);
    assert_int_equal(guest_mem_write(&a.mem, CODE, loop_code, sizeof(loop_code)), 0);
    struct kvm_sregs sregs;
    assert_int_equal(ioctl(a.vcpu, KVM_GET_SREGS, &sregs), 0);
    boot_state_sregs(&sregs, BOOT_ENTRY_LINUX64);
    assert_int_equal(ioctl(a.vcpu, KVM_SET_SREGS, &sregs), 0);
    struct kvm_regs regs = {
        .rip = CODE, .rsp = STACK, .rflags = X86_EFLAGS_FIXED, .rax = 1, .rbx = 7};
    assert_int_equal(ioctl(a.vcpu, KVM_SET_REGS, &regs), 0);

    run_to_port(&a, 0x11);
    run_to_port(&a, 0x5a);
    struct error err = {.msg = ""};
    if (vcpu_state_complete_io(a.vcpu, a.run, &err) < 0)
        fail_msg("%s", err.msg);
    struct saved *saved = calloc(1, sizeof(*saved));
    save_machine(env, &a, saved);
    /* The in is done: the byte is in AL and RIP is past it, not in KVM's pending state. */
    assert_int_equal(saved->vcpu.regs.rip, CODE + AFTER_IN);
    assert_int_equal(saved->vcpu.regs.rax & 0xff, 0x5a);

    machine_must_create(env, &b);
    memcpy(b.mem.regions[0].hva, a.mem.regions[0].hva, RAM);
    restore_machine(env, &b, saved);
    for (int pass = 0; pass < 8; pass++) {
        run_to_port(&a, (uint8_t)(0x80 + pass));
        run_to_port(&b, (uint8_t)(0x80 + pass));
        struct kvm_regs ra, rb;
        assert_int_equal(ioctl(a.vcpu, KVM_GET_REGS, &ra), 0);
        assert_int_equal(ioctl(b.vcpu, KVM_GET_REGS, &rb), 0);
        assert_memory_equal(&ra, &rb, sizeof(ra));
        assert_int_equal(rb.rcx, (uint64_t)pass + 3); /* two passes before the save */
    }
    free(saved);
    machine_destroy(&a);
    machine_destroy(&b);
}

/* A saved state restore must refuse: the line it must say, and a vCPU it left alone. */
struct bad_vcpu {
    const char *name;
    void (*corrupt)(struct vcpu_state *s);
    const char *message;
};

static void bad_nmsrs(struct vcpu_state *s)
{
    s->nmsrs = VCPU_STATE_MAX_MSRS + 1;
}
static void bad_msr_index(struct vcpu_state *s)
{
    s->msrs[0].index = 0x12345678;
}
static void bad_xsave_size(struct vcpu_state *s)
{
    s->xsave_size = s->xsave_size ? s->xsave_size / 2 : 512;
}
static void bad_mp_state(struct vcpu_state *s)
{
    s->mp_state.mp_state = 77;
}
static void bad_event_flags(struct vcpu_state *s)
{
    s->events.flags |= 0x80000000u;
}

static const struct bad_vcpu bad_vcpus[] = {
    {"nmsrs", bad_nmsrs, "vCPU state: nmsrs is 256 (expected at most 255)"},
    {"msr index", bad_msr_index, "vCPU state: msrs[0] is MSR 0x12345678 (expected one of the"},
    {"xsave_size", bad_xsave_size, "vCPU state: xsave_size is "},
    {"mp_state", bad_mp_state, "vCPU state: mp_state is 77 (expected 0-4, an x86 MP state)"},
    {"event flags", bad_event_flags, "vCPU state: events.flags is 0x8000"},
};

static void test_restore_rejects_bad_states(void **state)
{
    struct env *env = env_or_skip(state);
    struct machine a, b;
    machine_must_create(env, &a);
    set_distinctive_vcpu(env, &a);
    machine_must_create(env, &b);
    struct saved *good = calloc(1, sizeof(*good)), *bad = calloc(1, sizeof(*bad));
    struct vcpu_state *before = calloc(1, sizeof(*before)), *after = calloc(1, sizeof(*after));
    save_machine(env, &a, good);
    struct error err;
    assert_int_equal(vcpu_state_save(b.vcpu, &env->caps, before, &err), 0);
    for (size_t i = 0; i < sizeof(bad_vcpus) / sizeof(bad_vcpus[0]); i++) {
        *bad = *good;
        bad_vcpus[i].corrupt(&bad->vcpu);
        err.msg[0] = '\0';
        assert_int_equal(vcpu_state_restore(b.vcpu, &env->caps, &bad->vcpu, &err), -EINVAL);
        if (strncmp(err.msg, bad_vcpus[i].message, strlen(bad_vcpus[i].message)) != 0)
            fail_msg("%s: got \"%s\"", bad_vcpus[i].name, err.msg);
        assert_int_equal(vcpu_state_save(b.vcpu, &env->caps, after, &err), 0);
        assert_vcpu_equal(before, after); /* untouched */
    }

    *bad = *good;
    bad->vm.ioapic.chip_id = KVM_IRQCHIP_PIC_SLAVE;
    assert_int_equal(vm_state_restore(b.vm, &bad->vm, &err), -EINVAL);
    assert_string_equal(err.msg, "VM state: ioapic.chip_id is 1 (expected 2)");
    *bad = *good;
    bad->vm.pic_master.chip.dummy[100] = 1;
    assert_int_equal(vm_state_restore(b.vm, &bad->vm, &err), -EINVAL);
    assert_string_equal(err.msg,
                        "VM state: pic_master has bytes set outside its chip state (expected 0)");
    free(good);
    free(bad);
    free(before);
    free(after);
    machine_destroy(&a);
    machine_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_round_trip),
        cmocka_unit_test(test_guest_continues_after_restore),
        cmocka_unit_test(test_restore_rejects_bad_states),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
