/* Boot-time MSR values for every vCPU: SYSCALL/SYSENTER cleared, fast strings on, MTRRs on
 * with write-back default (else guests treat RAM as uncached). */
#include <errno.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#include "kiln/vcpu/vcpu.h"

/* Architectural MSR numbers (Intel SDM vol. 4); the UAPI headers do not carry them. */
#define MSR_IA32_TSC          0x10
#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE  0x1a0
#define MSR_MTRR_DEF_TYPE     0x2ff
#define MSR_STAR              0xc0000081
#define MSR_LSTAR             0xc0000082
#define MSR_CSTAR             0xc0000083
#define MSR_SYSCALL_MASK      0xc0000084
#define MSR_KERNEL_GS_BASE    0xc0000102

#define MISC_ENABLE_FAST_STRING 1ULL
#define MTRR_ENABLE             (1ULL << 11)
#define MTRR_TYPE_WRITE_BACK    6ULL

static const struct {
    uint32_t index;
    uint64_t value;
} boot_msrs[] = {
    {MSR_IA32_SYSENTER_CS, 0},
    {MSR_IA32_SYSENTER_ESP, 0},
    {MSR_IA32_SYSENTER_EIP, 0},
    {MSR_STAR, 0},
    {MSR_LSTAR, 0},
    {MSR_CSTAR, 0},
    {MSR_SYSCALL_MASK, 0},
    {MSR_KERNEL_GS_BASE, 0},
    {MSR_IA32_TSC, 0},
    {MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING},
    {MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WRITE_BACK},
};

#define BOOT_MSR_COUNT (sizeof(boot_msrs) / sizeof(boot_msrs[0]))

int vcpu_set_boot_msrs(int vcpu_fd, struct error *err)
{
    struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + BOOT_MSR_COUNT * sizeof(msrs->entries[0]));
    if (!msrs)
        return error_fmt(err, -ENOMEM, "MSR setup: out of memory");
    msrs->nmsrs = BOOT_MSR_COUNT;
    for (size_t i = 0; i < BOOT_MSR_COUNT; i++) {
        msrs->entries[i].index = boot_msrs[i].index;
        msrs->entries[i].data = boot_msrs[i].value;
    }
    /* KVM_SET_MSRS returns how many it set: it stops at the first one it refuses. */
    int set = ioctl(vcpu_fd, KVM_SET_MSRS, msrs);
    free(msrs);
    if (set < 0)
        return error_fmt(err, -errno, "KVM_SET_MSRS failed");
    if ((size_t)set < BOOT_MSR_COUNT)
        return error_fmt(err, -EINVAL, "KVM refused boot MSR 0x%x", boot_msrs[set].index);
    return 0;
}
