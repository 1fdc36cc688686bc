/* kvmclock for kit guests: finding KVM through CPUID, enabling the per-vCPU time record and
 * turning a TSC reading into nanoseconds with it (the pvclock ABI). */
#include "guest.h"
#include "pvclock.h"

#define KVM_CPUID_SIGNATURE          0x40000000U
#define KVM_CPUID_FEATURES           0x40000001U
#define KVM_FEATURE_CLOCKSOURCE2     (1U << 3)
#define MSR_KVM_SYSTEM_TIME_NEW      0x4b564d01U
#define PVCLOCK_ENABLE_BIT           1ULL
#define PVCLOCK_FIRST_UPDATE_BOUND   1000000000ULL /* TSC ticks: "give up eventually" */
#define CPUID_HYPERVISOR_PRESENT_ECX (1U << 31)

_Static_assert(sizeof(struct pvclock_time_info) == 32, "the pvclock record is 32 bytes");

/* "KVMKVMKVM\0\0\0" in EBX, ECX, EDX, as CPUID returns it. */
static int is_kvm_signature(uint32_t ebx, uint32_t ecx, uint32_t edx)
{
    return ebx == 0x4b4d564bU && ecx == 0x564b4d56U && edx == 0x0000004dU;
}

static void wrmsr(uint32_t msr, uint64_t value)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32)));
}

const char *pvclock_enable(struct pvclock_time_info *info)
{
    uint32_t eax, ebx, ecx, edx;
    cpuid(1, &eax, &ebx, &ecx, &edx);
    if (!(ecx & CPUID_HYPERVISOR_PRESENT_ECX))
        return "no kvmclock: CPUID says no hypervisor is present";
    cpuid(KVM_CPUID_SIGNATURE, &eax, &ebx, &ecx, &edx);
    if (!is_kvm_signature(ebx, ecx, edx))
        return "no kvmclock: CPUID 0x40000000 does not name KVM";
    if (eax < KVM_CPUID_FEATURES)
        return "no kvmclock: CPUID 0x40000000 has no feature leaf";
    cpuid(KVM_CPUID_FEATURES, &eax, &ebx, &ecx, &edx);
    if (!(eax & KVM_FEATURE_CLOCKSOURCE2))
        return "no kvmclock: CPUID 0x40000001 lacks the clocksource2 feature";
    memset(info, 0, sizeof(*info));
    wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)(uintptr_t)info | PVCLOCK_ENABLE_BIT);
    /* KVM fills the record before the vCPU next enters the guest, so this loop normally
     * never spins; the bound only keeps a broken host from hanging the guest. */
    const volatile struct pvclock_time_info *record = info;
    uint64_t start = rdtsc();
    while (record->tsc_to_system_mul == 0)
        if (rdtsc() - start > PVCLOCK_FIRST_UPDATE_BOUND)
            return "kvmclock enabled but KVM never filled in its time record";
    return NULL;
}

/* (delta * mul) >> 32 without 128-bit arithmetic: the product of a 64-bit delta and a 32-bit
 * fraction, split at the delta's 32-bit halves so no partial product overflows. */
static uint64_t scale_delta(uint64_t delta, uint32_t mul_frac, int8_t shift)
{
    if (shift < 0)
        delta >>= -shift;
    else
        delta <<= shift;
    uint64_t low = (delta & 0xffffffffULL) * mul_frac;
    uint64_t high = (delta >> 32) * mul_frac;
    return high + (low >> 32);
}

uint64_t pvclock_read_ns(const volatile struct pvclock_time_info *info)
{
    uint32_t version, mul;
    uint64_t tsc_timestamp, system_time, tsc;
    int8_t shift;
    /* The hypervisor may rewrite the record at any moment (it makes version odd meanwhile):
     * read until one whole copy came from between two equal, even versions. */
    do {
        version = info->version;
        __asm__ volatile("" ::: "memory");
        tsc_timestamp = info->tsc_timestamp;
        system_time = info->system_time;
        mul = info->tsc_to_system_mul;
        shift = info->tsc_shift;
        tsc = rdtsc();
        __asm__ volatile("" ::: "memory");
    } while ((version & 1) || version != info->version);
    return system_time + scale_delta(tsc - tsc_timestamp, mul, shift);
}
