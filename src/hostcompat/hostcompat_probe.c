/* Host-compat start-time probe: a throwaway one-vCPU VM runs a few ring-0 instructions to tell
 * a /dev/kvm that emulates guest ring 0 (its emulator gives up) from hardware virtualisation. */
#include <asm/processor-flags.h>
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kiln/hostcompat/hostcompat.h"

#define PROBE_RAM_SIZE 0x2000 /* page 0 unused, code in page 1 */
#define PROBE_CODE_GPA 0x1000
#define PROBE_PORT     0x80
#define PROBE_MAX_RUNS 4 /* out, then int3: two exits on hardware; one more for an EINTR */

/* 32-bit ring-0 code. pxor is an SSE2 ALU instruction every x86-64 CPU runs (CR4.OSFXSR is
 * set) and KVM's emulator does not have; int3 is the instruction Linux most needs help with.
 * With IDTR.limit 0, hardware turns the int3 into a triple fault: a clean KVM_EXIT_SHUTDOWN. */
static const uint8_t probe_code[] = {
    0x66, 0x0F,       0xEF, 0xC0, /* pxor xmm0, xmm0 */
    0xE6, PROBE_PORT,             /* out 0x80, al: hardware ran the pxor */
    0xCC,                         /* int3 */
    0xF4,                         /* hlt: never reached */
};

struct probe_vm {
    int vm_fd;
    int vcpu_fd;
    struct kvm_run *run;
    size_t run_size;
    struct guest_mem mem;
};

static int probe_fail(struct error *err, int code, const char *what)
{
    return error_fmt(err, code,
                     "host-compat probe: %s failed: %s (--host-compat on or off skips the probe)",
                     what, strerror(-code));
}

static struct kvm_segment flat_segment(uint16_t selector, uint8_t type)
{
    return (struct kvm_segment){.limit = 0xffffffff,
                                .selector = selector,
                                .type = type,
                                .present = 1,
                                .db = 1,
                                .s = 1,
                                .g = 1};
}

/* Flat 32-bit protected mode, paging off, SSE enabled, no IDT. */
static int set_probe_registers(int vcpu_fd, struct error *err)
{
    struct kvm_sregs sregs;
    if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
        return probe_fail(err, -errno, "KVM_GET_SREGS");
    sregs.cs = flat_segment(0x08, 0xb); /* execute/read, accessed */
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = flat_segment(0x10, 0x3);
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE;
    sregs.cr4 = X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;
    sregs.efer = 0;
    if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
        return probe_fail(err, -errno, "KVM_SET_SREGS");
    struct kvm_regs regs;
    memset(&regs, 0, sizeof(regs));
    regs.rip = PROBE_CODE_GPA;
    regs.rflags = X86_EFLAGS_FIXED;
    if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
        return probe_fail(err, -errno, "KVM_SET_REGS");
    return 0;
}

static int build_probe_vm(struct probe_vm *p, int kvm_fd, struct error *err)
{
    p->vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
    if (p->vm_fd < 0)
        return probe_fail(err, -errno, "KVM_CREATE_VM");
    int r = guest_mem_init(&p->mem, PROBE_RAM_SIZE, err);
    if (r < 0)
        return r;
    struct kvm_userspace_memory_region region = {
        .slot = 0,
        .guest_phys_addr = p->mem.regions[0].gpa,
        .memory_size = p->mem.regions[0].size,
        .userspace_addr = (uint64_t)(uintptr_t)p->mem.regions[0].hva,
    };
    if (ioctl(p->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return probe_fail(err, -errno, "KVM_SET_USER_MEMORY_REGION");
    if (guest_mem_write(&p->mem, PROBE_CODE_GPA, probe_code, sizeof(probe_code)) < 0)
        return probe_fail(err, -EFAULT, "writing the probe code");
    p->vcpu_fd = ioctl(p->vm_fd, KVM_CREATE_VCPU, 0UL);
    if (p->vcpu_fd < 0)
        return probe_fail(err, -errno, "KVM_CREATE_VCPU");
    int size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (size <= 0)
        return probe_fail(err, size < 0 ? -errno : -EINVAL, "KVM_GET_VCPU_MMAP_SIZE");
    void *run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, p->vcpu_fd, 0);
    if (run == MAP_FAILED)
        return probe_fail(err, -errno, "mapping kvm_run");
    p->run = run;
    p->run_size = (size_t)size;
    return set_probe_registers(p->vcpu_fd, err);
}

static void destroy_probe_vm(struct probe_vm *p)
{
    if (p->run)
        munmap(p->run, p->run_size);
    if (p->vcpu_fd >= 0)
        close(p->vcpu_fd);
    if (p->vm_fd >= 0)
        close(p->vm_fd);
    guest_mem_destroy(&p->mem);
}

static int run_probe(struct probe_vm *p, struct hostcompat_probe_result *result, struct error *err)
{
    for (int i = 0; i < PROBE_MAX_RUNS; i++) {
        if (ioctl(p->vcpu_fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return probe_fail(err, -errno, "KVM_RUN");
        }
        struct kvm_run *run = p->run;
        result->exit_reason = run->exit_reason;
        if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR &&
            run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
            struct kvm_regs regs;
            if (ioctl(p->vcpu_fd, KVM_GET_REGS, &regs) == 0)
                result->failed_rip = regs.rip;
            result->emulated_ring0 = true;
            return 0;
        }
        if (run->exit_reason != KVM_EXIT_IO || run->io.port != PROBE_PORT)
            return 0; /* hardware: the int3's triple fault (KVM_EXIT_SHUTDOWN), or anything */
    }
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int hostcompat_probe_run(int kvm_fd, struct hostcompat_probe_result *result, struct error *err)
{
    memset(result, 0, sizeof(*result));
    uint64_t start = now_ns();
    struct probe_vm p = {.vm_fd = -1, .vcpu_fd = -1};
    int r = build_probe_vm(&p, kvm_fd, err);
    if (r == 0)
        r = run_probe(&p, result, err);
    destroy_probe_vm(&p);
    result->elapsed_ns = now_ns() - start;
    return r;
}

int hostcompat_probe(int kvm_fd, bool *emulated_ring0, struct error *err)
{
    struct hostcompat_probe_result result;
    int r = hostcompat_probe_run(kvm_fd, &result, err);
    *emulated_ring0 = r == 0 && result.emulated_ring0;
    return r;
}
