/* The CPUID registers whose bits are features, with the features' names: what a template may
 * name, and what "this host lacks" messages say. Names as /proc/cpuinfo spells them. */
#include <errno.h>
#include <string.h>

#include "kiln/vcpu/cpu_template.h"

/* KVM's paravirtual features (leaf 0x40000001 EAX) as linux/kvm_para.h numbers them. */
const struct cpuid_feature_word cpuid_feature_words[] = {
    {1,
     0,
     CPUID_ECX,
     {[0] = "sse3",
      [1] = "pclmulqdq",
      [3] = "monitor",
      [9] = "ssse3",
      [12] = "fma",
      [13] = "cx16",
      [17] = "pcid",
      [19] = "sse4_1",
      [20] = "sse4_2",
      [21] = "x2apic",
      [22] = "movbe",
      [23] = "popcnt",
      [24] = "tsc_deadline_timer",
      [25] = "aes",
      [26] = "xsave",
      [27] = "osxsave",
      [28] = "avx",
      [29] = "f16c",
      [30] = "rdrand",
      [31] = "hypervisor"}},
    {1,
     0,
     CPUID_EDX,
     {[0] = "fpu",   [1] = "vme",    [2] = "de",    [3] = "pse",      [4] = "tsc",
      [5] = "msr",   [6] = "pae",    [7] = "mce",   [8] = "cx8",      [9] = "apic",
      [11] = "sep",  [12] = "mtrr",  [13] = "pge",  [14] = "mca",     [15] = "cmov",
      [16] = "pat",  [17] = "pse36", [18] = "pn",   [19] = "clflush", [23] = "mmx",
      [24] = "fxsr", [25] = "sse",   [26] = "sse2", [27] = "ss",      [28] = "ht"}},
    {7,
     0,
     CPUID_EBX,
     {[0] = "fsgsbase",    [1] = "tsc_adjust", [3] = "bmi1",      [4] = "hle",
      [5] = "avx2",        [7] = "smep",       [8] = "bmi2",      [9] = "erms",
      [10] = "invpcid",    [11] = "rtm",       [16] = "avx512f",  [17] = "avx512dq",
      [18] = "rdseed",     [19] = "adx",       [20] = "smap",     [21] = "avx512ifma",
      [23] = "clflushopt", [24] = "clwb",      [26] = "avx512pf", [27] = "avx512er",
      [28] = "avx512cd",   [29] = "sha_ni",    [30] = "avx512bw", [31] = "avx512vl"}},
    {7,
     0,
     CPUID_ECX,
     {[1] = "avx512vbmi",
      [2] = "umip",
      [3] = "pku",
      [4] = "ospke",
      [5] = "waitpkg",
      [6] = "avx512_vbmi2",
      [8] = "gfni",
      [9] = "vaes",
      [10] = "vpclmulqdq",
      [11] = "avx512_vnni",
      [12] = "avx512_bitalg",
      [14] = "avx512_vpopcntdq",
      [16] = "la57",
      [22] = "rdpid",
      [25] = "cldemote",
      [27] = "movdiri",
      [28] = "movdir64b"}},
    {7,
     0,
     CPUID_EDX,
     {[2] = "avx512_4vnniw",
      [3] = "avx512_4fmaps",
      [4] = "fsrm",
      [8] = "avx512_vp2intersect",
      [10] = "md_clear",
      [14] = "serialize",
      [16] = "tsxldtrk",
      [22] = "amx_bf16",
      [23] = "avx512_fp16",
      [24] = "amx_tile",
      [25] = "amx_int8",
      [26] = "spec_ctrl",
      [27] = "intel_stibp",
      [28] = "flush_l1d",
      [29] = "arch_capabilities",
      [31] = "ssbd"}},
    {7,
     1,
     CPUID_EAX,
     {[4] = "avx_vnni", [5] = "avx512_bf16", [10] = "fzrm", [11] = "fsrs", [12] = "fsrc"}},
    /* The state components XCR0 may enable: xstate_ names, since "sse" is leaf 1's. */
    {0xd,
     0,
     CPUID_EAX,
     {[0] = "xstate_x87",
      [1] = "xstate_sse",
      [2] = "xstate_avx",
      [3] = "xstate_bndregs",
      [4] = "xstate_bndcsr",
      [5] = "xstate_opmask",
      [6] = "xstate_zmm_hi256",
      [7] = "xstate_hi16_zmm",
      [9] = "xstate_pkru",
      [17] = "xstate_xtilecfg",
      [18] = "xstate_xtiledata"}},
    {0xd, 1, CPUID_EAX, {[0] = "xsaveopt", [1] = "xsavec", [2] = "xgetbv1", [3] = "xsaves"}},
    {0x80000001,
     0,
     CPUID_ECX,
     {[0] = "lahf_lm",
      [1] = "cmp_legacy",
      [2] = "svm",
      [5] = "abm",
      [6] = "sse4a",
      [7] = "misalignsse",
      [8] = "3dnowprefetch",
      [11] = "xop",
      [16] = "fma4",
      [21] = "tbm",
      [29] = "mwaitx"}},
    {0x80000001,
     0,
     CPUID_EDX,
     {[11] = "syscall",
      [20] = "nx",
      [22] = "mmxext",
      [25] = "fxsr_opt",
      [26] = "pdpe1gb",
      [27] = "rdtscp",
      [29] = "lm",
      [30] = "3dnowext",
      [31] = "3dnow"}},
    {0x40000001,
     0,
     CPUID_EAX,
     {[0] = "kvm_clocksource",
      [1] = "kvm_nop_io_delay",
      [3] = "kvm_clocksource2",
      [4] = "kvm_async_pf",
      [5] = "kvm_steal_time",
      [6] = "kvm_pv_eoi",
      [7] = "kvm_pv_unhalt",
      [9] = "kvm_pv_tlb_flush",
      [10] = "kvm_async_pf_vmexit",
      [11] = "kvm_pv_send_ipi",
      [12] = "kvm_poll_control",
      [13] = "kvm_pv_sched_yield",
      [14] = "kvm_async_pf_int",
      [15] = "kvm_msi_ext_dest_id",
      [16] = "kvm_hc_map_gpa_range",
      [17] = "kvm_migration_control",
      [24] = "kvm_clocksource_stable"}},
};

const size_t cpuid_feature_word_count =
    sizeof(cpuid_feature_words) / sizeof(cpuid_feature_words[0]);

const char *cpuid_reg_name(enum cpuid_reg reg)
{
    static const char *const names[] = {"EAX", "EBX", "ECX", "EDX"};
    return (unsigned)reg < 4 ? names[reg] : "?";
}

const struct cpuid_feature_word *cpuid_feature_word_of(uint32_t leaf, uint32_t subleaf,
                                                       enum cpuid_reg reg)
{
    for (size_t i = 0; i < cpuid_feature_word_count; i++) {
        const struct cpuid_feature_word *w = &cpuid_feature_words[i];
        if (w->leaf == leaf && w->subleaf == subleaf && w->reg == reg)
            return w;
    }
    return NULL;
}

int cpuid_feature_by_name(const char *name, const struct cpuid_feature_word **word, unsigned *bit)
{
    for (size_t i = 0; i < cpuid_feature_word_count; i++) {
        for (unsigned b = 0; b < 32; b++) {
            const char *n = cpuid_feature_words[i].names[b];
            if (n && strcmp(n, name) == 0) {
                *word = &cpuid_feature_words[i];
                *bit = b;
                return 0;
            }
        }
    }
    return -ENOENT;
}
