/* Host-compat CPUID policy: hide the KVM paravirtual features whose guest side issues
 * `vmcall`, which a host that emulates guest ring 0 never completes. */
#include <asm/kvm_para.h>

#include "kiln/hostcompat/hostcompat.h"

#define PV_FEATURES_USING_VMCALL                                                                   \
    ((1U << KVM_FEATURE_PV_UNHALT) | (1U << KVM_FEATURE_PV_TLB_FLUSH) |                            \
     (1U << KVM_FEATURE_PV_SEND_IPI) | (1U << KVM_FEATURE_PV_SCHED_YIELD))

void hostcompat_adjust_cpuid(const struct hostcompat *hc, struct kvm_cpuid2 *cpuid)
{
    if (!hc->enabled)
        return;
    for (unsigned i = 0; i < cpuid->nent; i++) {
        if (cpuid->entries[i].function == KVM_CPUID_FEATURES)
            cpuid->entries[i].eax &= ~PV_FEATURES_USING_VMCALL;
    }
}
