/* CPUID for each vCPU: KVM's supported table with this vCPU's APIC ID and the VM's topology
 * written in, and the hypervisor bit set, so guests see a consistent SMP machine. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kiln/vcpu/vcpu.h"

#define CPUID_1_ECX_HYPERVISOR (1U << 31)
#define CPUID_1_EDX_HTT        (1U << 28)
#define TOPOLOGY_LEVEL_SMT     1
#define TOPOLOGY_LEVEL_CORE    2

int cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **out, struct error *err)
{
    for (unsigned nent = 64; nent <= 4096; nent *= 2) {
        struct kvm_cpuid2 *cpuid =
            calloc(1, sizeof(*cpuid) + nent * sizeof(struct kvm_cpuid_entry2));
        if (!cpuid)
            return error_fmt(err, -ENOMEM, "CPUID: out of memory");
        cpuid->nent = nent;
        if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) == 0) {
            *out = cpuid;
            return 0;
        }
        int e = errno;
        free(cpuid);
        if (e != E2BIG)
            return error_fmt(err, -e, "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(e));
    }
    return error_fmt(err, -E2BIG, "KVM_GET_SUPPORTED_CPUID: table too large");
}

static unsigned bits_for(unsigned count)
{
    unsigned bits = 0;
    while ((1U << bits) < count)
        bits++;
    return bits;
}

/* One package, ncpus cores, one thread per core. */
static void set_topology_leaf(struct kvm_cpuid_entry2 *e, unsigned apic_id, unsigned ncpus)
{
    e->edx = apic_id;
    if (e->index == 0) {
        e->eax = 0;
        e->ebx = 1;
        e->ecx = (TOPOLOGY_LEVEL_SMT << 8) | e->index;
    } else if (e->index == 1) {
        e->eax = bits_for(ncpus);
        e->ebx = ncpus;
        e->ecx = (TOPOLOGY_LEVEL_CORE << 8) | e->index;
    } else {
        e->eax = 0;
        e->ebx = 0;
        e->ecx = e->index;
    }
}

void cpuid_normalise(struct kvm_cpuid2 *cpuid, unsigned apic_id, unsigned ncpus)
{
    for (unsigned i = 0; i < cpuid->nent; i++) {
        struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
        switch (e->function) {
        case 1:
            e->ebx = (e->ebx & 0x0000ffffU) | (apic_id << 24) | ((ncpus & 0xff) << 16);
            e->ecx |= CPUID_1_ECX_HYPERVISOR;
            if (ncpus > 1)
                e->edx |= CPUID_1_EDX_HTT;
            else
                e->edx &= ~CPUID_1_EDX_HTT;
            break;
        case 4:
            /* Cores per package - 1 in EAX[31:26]; no cache is shared by more than us. */
            if (e->eax & 0x1f)
                e->eax = (e->eax & 0x03ffffffU) | ((ncpus - 1) << 26);
            break;
        case 0xb:
        case 0x1f:
            set_topology_leaf(e, apic_id, ncpus);
            break;
        default:
            break;
        }
    }
}
