/* The built-in `minimal` CPU template: the x86-64 baseline (x86-64-v1: up to SSE2) with
 * CMPXCHG16B and LAHF in long mode; no SSE3 and up, no XSAVE, AVX, TSX or vendor extras. */
#include "kiln/vcpu/cpu_template.h"

#define BIT(n) (1u << (n))

/* Leaf 1 ECX: cx16 only. SSE3 to SSE4.2, POPCNT and XSAVE are not in it because a host kiln
 * runs on (a KVM that emulates guest ring 0) offers none of them (docs/cpu-templates.md). */
#define MIN_1_ECX_SET BIT(13)
/* Kept as KVM gives them: x2apic and the TSC deadline timer are KVM's own LAPIC; kiln sets
 * the hypervisor bit for every vCPU itself. */
#define MIN_1_ECX_KEEP (BIT(21) | BIT(24) | BIT(31))
/* Leaf 1 EDX: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush
 * mmx fxsr sse sse2. */
#define MIN_1_EDX_SET                                                                              \
    (BIT(0) | BIT(1) | BIT(2) | BIT(3) | BIT(4) | BIT(5) | BIT(6) | BIT(7) | BIT(8) | BIT(9) |     \
     BIT(11) | BIT(12) | BIT(13) | BIT(14) | BIT(15) | BIT(16) | BIT(17) | BIT(19) | BIT(23) |     \
     BIT(24) | BIT(25) | BIT(26))
/* HTT is set per vCPU from the VM's topology. */
#define MIN_1_EDX_KEEP BIT(28)
/* Without XSAVE, leaf 0xD describes nothing: every subleaf empty, so no guest sizes an XSAVE
 * area from it. */
#define XSAVE_SUBLEAVES 64u
/* Leaf 0x80000001: lahf_lm; syscall, nx, lm. */
#define MIN_EXT_ECX_SET BIT(0)
#define MIN_EXT_EDX_SET (BIT(11) | BIT(20) | BIT(29))

static int add(struct cpu_template *t, uint32_t leaf, uint32_t subleaf, enum cpuid_reg reg,
               uint32_t set, uint32_t keep, struct error *err)
{
    struct cpu_template_change c = {
        .leaf = leaf, .subleaf = subleaf, .reg = reg, .set = set, .keep = keep};
    return cpu_template_add(t, &c, err);
}

/* Every register of leaf/subleaf zero: the guest sees the leaf as empty. */
static int clear_leaf(struct cpu_template *t, uint32_t leaf, uint32_t subleaf, struct error *err)
{
    int r = 0;
    for (enum cpuid_reg reg = CPUID_EAX; r == 0 && reg <= CPUID_EDX; reg++)
        r = add(t, leaf, subleaf, reg, 0, 0, err);
    return r;
}

int cpu_template_minimal(struct cpu_template *t, struct error *err)
{
    cpu_template_init(t, "minimal");
    int r = add(t, 1, 0, CPUID_ECX, MIN_1_ECX_SET, MIN_1_ECX_KEEP, err);
    if (r == 0)
        r = add(t, 1, 0, CPUID_EDX, MIN_1_EDX_SET, MIN_1_EDX_KEEP, err);
    /* No leaf 7 features at all (FSGSBASE, AVX2, BMI, TSX, AVX-512, ...), and no subleaf
     * past 0 (EAX of subleaf 0 is the highest subleaf). */
    for (uint32_t sub = 0; r == 0 && sub <= 2; sub++)
        r = clear_leaf(t, 7, sub, err);
    for (uint32_t sub = 0; r == 0 && sub < XSAVE_SUBLEAVES; sub++)
        r = clear_leaf(t, 0xd, sub, err);
    if (r == 0)
        r = add(t, 0x80000001, 0, CPUID_ECX, MIN_EXT_ECX_SET, 0, err);
    if (r == 0)
        r = add(t, 0x80000001, 0, CPUID_EDX, MIN_EXT_EDX_SET, 0, err);
    if (r < 0)
        cpu_template_free(t);
    return r;
}
