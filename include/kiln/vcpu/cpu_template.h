/* CPU templates (--cpu-template host|minimal|FILE): changes to KVM's supported CPUID table that
 * choose what a guest sees, and the check that this host's KVM can give every bit asked for. */
#ifndef KILN_VCPU_CPU_TEMPLATE_H
#define KILN_VCPU_CPU_TEMPLATE_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/util/error.h"

enum cpuid_reg { CPUID_EAX, CPUID_EBX, CPUID_ECX, CPUID_EDX };

/* "EAX" ... "EDX". */
const char *cpuid_reg_name(enum cpuid_reg reg);

/* One register of one CPUID leaf and subleaf: each bit becomes 1 (in set), stays as KVM offers
 * it (in keep) or becomes 0 (in neither). value = (value & keep) | set. */
struct cpu_template_change {
    uint32_t leaf, subleaf;
    enum cpuid_reg reg;
    uint32_t set, keep;
    unsigned line; /* where a template file says it, for messages; 0 for a built-in one */
};

/* An MSR every vCPU of a booting VM starts with (after kiln's own boot values). */
struct cpu_template_msr {
    uint32_t index;
    uint64_t value;
    unsigned line; /* in the template file */
};

/* A template: its changes, applied in order, so a later one refines an earlier one; and its
 * MSRs. */
struct cpu_template {
    char name[256]; /* "minimal", or the file's path: the start of every message about it */
    struct cpu_template_change *changes;
    size_t count, cap;
    struct cpu_template_msr *msrs;
    size_t nmsrs, msrs_cap;
};

void cpu_template_init(struct cpu_template *t, const char *name);
/* Control characters in text (a YAML scalar may hold newlines) become '?', so a message that
 * quotes a file's text stays one line. */
void cpu_template_make_one_line(char *text);
void cpu_template_free(struct cpu_template *t);
/* Appends a change; -ENOMEM and one line if memory is short. */
int cpu_template_add(struct cpu_template *t, const struct cpu_template_change *change,
                     struct error *err);

/* Appends an MSR; -ENOMEM and one line if memory is short. */
int cpu_template_add_msr(struct cpu_template *t, const struct cpu_template_msr *msr,
                         struct error *err);
/* Gives vCPU vcpu_fd (number index) the template's MSRs; the first one KVM refuses is one line
 * "PATH:LINE: KVM refused MSR 0x... = 0x... on vCPU N". */
int cpu_template_set_msrs(const struct cpu_template *t, int vcpu_fd, unsigned index,
                          struct error *err);

/* The built-in `minimal` template: an x86-64-v2 baseline (docs/cpu-templates.md). */
int cpu_template_minimal(struct cpu_template *t, struct error *err);

/* Reads a template file (YAML, docs/cpu-templates.md). Every problem is one line "PATH:LINE:
 * what is wrong (expected what)", -EINVAL (-ENOENT/-EACCES if it cannot be read). */
int cpu_template_load_file(struct cpu_template *t, const char *path, struct error *err);
/* The same from size bytes in memory (the fuzz target's entry); name stands for the path. */
int cpu_template_load_buffer(struct cpu_template *t, const char *name, const void *bytes,
                             size_t size, struct error *err);

/* host, minimal or a file's path: t gets the template (host: no changes). */
int cpu_template_load(struct cpu_template *t, const char *what, struct error *err);

/* Applies t to cpuid (KVM's supported table, changed in place). A change that sets a bit of a
 * feature word (cpuid_feature_word) which the table does not have, or sets bits in a leaf the
 * table does not have, is refused with one line naming the leaf, subleaf, register, bit and
 * feature: the host cannot give the guest what the template promises. Leaf 0x40000000 (KVM's
 * signature) cannot be changed. */
int cpu_template_apply(const struct cpu_template *t, struct kvm_cpuid2 *cpuid, struct error *err);

/* Whether this host's supported table offers every feature bit of wanted (a VM's effective
 * table, saved in a snapshot): 0, or -ENODEV and one line "LABEL: needs CPUID leaf 0x7 EBX bit 5
 * (avx2), which this host's KVM does not offer (and N more)". */
int cpuid_check_offered(const struct kvm_cpuid2 *wanted, const struct kvm_cpuid2 *supported,
                        const char *label, struct error *err);

/* A CPUID table as a state file stores it (a struct kvm_cpuid2: count, padding, entries):
 * size must be 8 + 40 bytes per entry, 1 to 256 entries (KVM's most). 0, or -EINVAL and one
 * line starting with label. */
#define CPUID_TABLE_MAX_ENTRIES 256u
int cpuid_table_check(const void *bytes, uint32_t size, const char *label, struct error *err);

/* The entry for leaf/subleaf in cpuid (subleaf ignored where the leaf has none), or NULL. */
struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid2 *cpuid, uint32_t leaf,
                                    uint32_t subleaf);
uint32_t *cpuid_reg_of(struct kvm_cpuid_entry2 *entry, enum cpuid_reg reg);

/* A register whose bits are features a host has or lacks (leaf 1 ECX, leaf 7 EBX, ...), as
 * opposed to one holding numbers (sizes, family, topology). */
struct cpuid_feature_word {
    uint32_t leaf, subleaf;
    enum cpuid_reg reg;
    const char *names[32]; /* as /proc/cpuinfo spells them where it does; NULL: unnamed */
};
extern const struct cpuid_feature_word cpuid_feature_words[];
extern const size_t cpuid_feature_word_count;

/* The feature word for leaf/subleaf/reg, or NULL. */
const struct cpuid_feature_word *cpuid_feature_word_of(uint32_t leaf, uint32_t subleaf,
                                                       enum cpuid_reg reg);
/* The word and bit of a feature by name ("avx2"); -ENOENT if no word names it. */
int cpuid_feature_by_name(const char *name, const struct cpuid_feature_word **word, unsigned *bit);

#endif
