/* CPU templates applied to KVM's supported CPUID table, and the checks that this host's KVM can
 * give every feature bit a template sets or a saved VM had (kiln/vcpu/cpu_template.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kiln/vcpu/cpu_template.h"

/* KVM's signature ("KVMKVMKVM"): the guest's kernel finds KVM's paravirtual features by it. */
#define CPUID_LEAF_KVM_SIGNATURE 0x40000000u

void cpu_template_make_one_line(char *text)
{
    for (unsigned char *p = (unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
}

void cpu_template_init(struct cpu_template *t, const char *name)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    cpu_template_make_one_line(t->name); /* it starts every message */
}

void cpu_template_free(struct cpu_template *t)
{
    free(t->changes);
    t->changes = NULL;
    t->count = t->cap = 0;
    free(t->msrs);
    t->msrs = NULL;
    t->nmsrs = t->msrs_cap = 0;
}

int cpu_template_add_msr(struct cpu_template *t, const struct cpu_template_msr *msr,
                         struct error *err)
{
    if (t->nmsrs == t->msrs_cap) {
        size_t cap = t->msrs_cap ? t->msrs_cap * 2 : 8;
        struct cpu_template_msr *grown = realloc(t->msrs, cap * sizeof(*grown));
        if (!grown)
            return error_fmt(err, -ENOMEM, "%s: out of memory", t->name);
        t->msrs = grown;
        t->msrs_cap = cap;
    }
    t->msrs[t->nmsrs++] = *msr;
    return 0;
}

int cpu_template_set_msrs(const struct cpu_template *t, int vcpu_fd, unsigned index,
                          struct error *err)
{
    for (size_t i = 0; i < t->nmsrs; i++) {
        const struct cpu_template_msr *m = &t->msrs[i];
        struct {
            struct kvm_msrs head;
            struct kvm_msr_entry entry;
        } one = {.head = {.nmsrs = 1}, .entry = {.index = m->index, .data = m->value}};
        /* KVM_SET_MSRS returns how many it set: 0 when it refuses the one. */
        int set = ioctl(vcpu_fd, KVM_SET_MSRS, &one);
        if (set != 1)
            return error_fmt(err, set < 0 ? -errno : -EINVAL,
                             "%s:%u: KVM refused MSR 0x%x = 0x%llx on vCPU %u (expected an MSR "
                             "this host's KVM lets a guest have, and a value it takes)",
                             t->name, m->line, m->index, (unsigned long long)m->value, index);
    }
    return 0;
}

int cpu_template_add(struct cpu_template *t, const struct cpu_template_change *change,
                     struct error *err)
{
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct cpu_template_change *grown = realloc(t->changes, cap * sizeof(*grown));
        if (!grown)
            return error_fmt(err, -ENOMEM, "%s: out of memory", t->name);
        t->changes = grown;
        t->cap = cap;
    }
    t->changes[t->count++] = *change;
    return 0;
}

int cpu_template_load(struct cpu_template *t, const char *what, struct error *err)
{
    if (strcmp(what, "host") == 0) {
        cpu_template_init(t, "host");
        return 0;
    }
    if (strcmp(what, "minimal") == 0)
        return cpu_template_minimal(t, err);
    return cpu_template_load_file(t, what, err);
}

struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid2 *cpuid, uint32_t leaf, uint32_t subleaf)
{
    for (unsigned i = 0; i < cpuid->nent; i++) {
        struct kvm_cpuid_entry2 *e = (struct kvm_cpuid_entry2 *)&cpuid->entries[i];
        if (e->function != leaf)
            continue;
        if (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == subleaf)
            return e;
    }
    return NULL;
}

uint32_t *cpuid_reg_of(struct kvm_cpuid_entry2 *entry, enum cpuid_reg reg)
{
    switch (reg) {
    case CPUID_EAX:
        return &entry->eax;
    case CPUID_EBX:
        return &entry->ebx;
    case CPUID_ECX:
        return &entry->ecx;
    case CPUID_EDX:
        break;
    }
    return &entry->edx;
}

static unsigned lowest_bit(uint32_t bits)
{
    return (unsigned)__builtin_ctz(bits);
}

static unsigned bit_count(uint32_t bits)
{
    return (unsigned)__builtin_popcount(bits);
}

/* "CPUID leaf 0x7 subleaf 0 EBX bit 5 (avx2)" into buf. */
static const char *describe_bit(uint32_t leaf, uint32_t subleaf, enum cpuid_reg reg, unsigned bit,
                                char *buf, size_t size)
{
    const struct cpuid_feature_word *word = cpuid_feature_word_of(leaf, subleaf, reg);
    const char *name = word ? word->names[bit] : NULL;
    snprintf(buf, size, "CPUID leaf 0x%x subleaf %u %s bit %u%s%s%s", leaf, subleaf,
             cpuid_reg_name(reg), bit, name ? " (" : "", name ? name : "", name ? ")" : "");
    return buf;
}

/* "TEMPLATE" or "TEMPLATE:LINE": where a change comes from. */
static const char *where(const struct cpu_template *t, const struct cpu_template_change *c,
                         char *buf, size_t size)
{
    if (c->line)
        snprintf(buf, size, "%s:%u", t->name, c->line);
    else
        snprintf(buf, size, "cpu template %s", t->name);
    return buf;
}

/* offered is KVM's table as it was before any change: a bit an earlier change cleared may be
 * set again by a later one (base: minimal, then features: set:). */
static int apply_change(const struct cpu_template *t, const struct cpu_template_change *c,
                        const struct kvm_cpuid2 *offered, struct kvm_cpuid2 *cpuid,
                        struct error *err)
{
    char at[300], bit[128];
    if (c->leaf == CPUID_LEAF_KVM_SIGNATURE)
        return error_fmt(err, -EINVAL,
                         "%s: CPUID leaf 0x40000000 is KVM's signature, which kiln keeps "
                         "(expected another leaf)",
                         where(t, c, at, sizeof(at)));
    struct kvm_cpuid_entry2 *entry = cpuid_find(cpuid, c->leaf, c->subleaf);
    if (!entry) {
        if (c->set == 0) /* nothing to clear in a leaf the guest does not see */
            return 0;
        return error_fmt(err, -ENODEV,
                         "%s: sets bits of CPUID leaf 0x%x subleaf %u, which this host's KVM "
                         "does not offer",
                         where(t, c, at, sizeof(at)), c->leaf, c->subleaf);
    }
    uint32_t *reg = cpuid_reg_of(entry, c->reg);
    /* A leaf without subleaves answers any: its feature word is subleaf 0's. */
    uint32_t subleaf = entry->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX ? c->subleaf : 0;
    if (cpuid_feature_word_of(c->leaf, subleaf, c->reg)) {
        uint32_t lacking = c->set & ~*cpuid_reg_of(cpuid_find(offered, c->leaf, subleaf), c->reg);
        if (lacking) {
            char more[48] = "";
            if (bit_count(lacking) > 1)
                snprintf(more, sizeof(more), " (and %u more)", bit_count(lacking) - 1);
            return error_fmt(
                err, -ENODEV, "%s: needs %s, which this host's KVM does not offer%s",
                where(t, c, at, sizeof(at)),
                describe_bit(c->leaf, subleaf, c->reg, lowest_bit(lacking), bit, sizeof(bit)),
                more);
        }
    }
    *reg = (*reg & c->keep) | c->set;
    return 0;
}

int cpu_template_apply(const struct cpu_template *t, struct kvm_cpuid2 *cpuid, struct error *err)
{
    size_t size = sizeof(*cpuid) + cpuid->nent * sizeof(cpuid->entries[0]);
    struct kvm_cpuid2 *offered = malloc(size);
    if (!offered)
        return error_fmt(err, -ENOMEM, "cpu template %s: out of memory", t->name);
    memcpy(offered, cpuid, size);
    int r = 0;
    for (size_t i = 0; r == 0 && i < t->count; i++)
        r = apply_change(t, &t->changes[i], offered, cpuid, err);
    free(offered);
    return r;
}

int cpuid_table_check(const void *bytes, uint32_t size, const char *label, struct error *err)
{
    struct kvm_cpuid2 head;
    if (size >= sizeof(head))
        memcpy(&head, bytes, sizeof(head));
    if (size < sizeof(head) || head.nent == 0 || head.nent > CPUID_TABLE_MAX_ENTRIES ||
        size != sizeof(head) + (size_t)head.nent * sizeof(struct kvm_cpuid_entry2))
        return error_fmt(err, -EINVAL,
                         "%s: a CPUID table of %u bytes (expected 8 + 40 per entry, 1 to %u "
                         "entries)",
                         label, size, CPUID_TABLE_MAX_ENTRIES);
    return 0;
}

static uint32_t word_value(const struct kvm_cpuid2 *cpuid, const struct cpuid_feature_word *w)
{
    struct kvm_cpuid_entry2 *entry = cpuid_find(cpuid, w->leaf, w->subleaf);
    return entry ? *cpuid_reg_of(entry, w->reg) : 0;
}

int cpuid_check_offered(const struct kvm_cpuid2 *wanted, const struct kvm_cpuid2 *supported,
                        const char *label, struct error *err)
{
    const struct cpuid_feature_word *first = NULL;
    unsigned first_bit = 0, missing = 0;
    for (size_t i = 0; i < cpuid_feature_word_count; i++) {
        const struct cpuid_feature_word *w = &cpuid_feature_words[i];
        uint32_t lacking = word_value(wanted, w) & ~word_value(supported, w);
        if (lacking && !first) {
            first = w;
            first_bit = lowest_bit(lacking);
        }
        missing += bit_count(lacking);
    }
    if (!first)
        return 0;
    char bit[128], more[48] = "";
    if (missing > 1)
        snprintf(more, sizeof(more), " (and %u more)", missing - 1);
    return error_fmt(
        err, -ENODEV, "%s: needs %s, which this host's KVM does not offer%s", label,
        describe_bit(first->leaf, first->subleaf, first->reg, first_bit, bit, sizeof(bit)), more);
}
