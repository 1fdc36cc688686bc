/* The host CPU identity in a snapshot (kiln/snapshot/snap_cpu.h): probing it with cpuid, and
 * naming the first feature a restoring host lacks, so the user knows why it refused. */
#include <cpuid.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "kiln/snapshot/snap_cpu.h"
#include "snap_io.h"

void snap_cpu_id_probe(struct snap_cpu_id *out)
{
    memset(out, 0, sizeof(*out));
    unsigned a, b, c, d;
    __cpuid(0, a, b, c, d);
    unsigned max_leaf = a;
    memcpy(out->vendor + 0, &b, 4); /* the vendor string is EBX, EDX, ECX */
    memcpy(out->vendor + 4, &d, 4);
    memcpy(out->vendor + 8, &c, 4);
    if (max_leaf >= 1) {
        __cpuid(1, a, b, c, d);
        out->leaf1_ecx = c;
        out->leaf1_edx = d;
    }
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        out->leaf7_ebx = b;
        out->leaf7_ecx = c;
        out->leaf7_edx = d;
    }
    __cpuid(0x80000000, a, b, c, d);
    if (a >= 0x80000001) {
        __cpuid(0x80000001, a, b, c, d);
        out->ext1_ecx = c;
        out->ext1_edx = d;
    }
}

/* Leaf 1 ECX bit 27 (OSXSAVE) reflects the host OS's CR4, bit 31 whether the host itself is a
 * guest: neither is a capability the saved guest could depend on. */
#define LEAF1_ECX_NOT_COMPARED ((1u << 27) | (1u << 31))

struct feature_word {
    const char *where; /* "leaf 7 EBX" */
    size_t offset;     /* in struct snap_cpu_id */
    uint32_t ignored;  /* bits not compared */
};

static const struct feature_word feature_words[] = {
    {"leaf 1 ECX", offsetof(struct snap_cpu_id, leaf1_ecx), LEAF1_ECX_NOT_COMPARED},
    {"leaf 1 EDX", offsetof(struct snap_cpu_id, leaf1_edx), 0},
    {"leaf 7 EBX", offsetof(struct snap_cpu_id, leaf7_ebx), 0},
    {"leaf 7 ECX", offsetof(struct snap_cpu_id, leaf7_ecx), 0},
    {"leaf 7 EDX", offsetof(struct snap_cpu_id, leaf7_edx), 0},
    {"leaf 0x80000001 ECX", offsetof(struct snap_cpu_id, ext1_ecx), 0},
    {"leaf 0x80000001 EDX", offsetof(struct snap_cpu_id, ext1_edx), 0},
};

struct feature_name {
    unsigned word; /* index into feature_words */
    unsigned bit;
    const char *name; /* as /proc/cpuinfo spells it */
};

/* The features a guest commonly uses, for a friendlier message; others get only their bit. */
static const struct feature_name feature_names[] = {
    {0, 0, "sse3"},        {0, 1, "pclmulqdq"}, {0, 9, "ssse3"},     {0, 12, "fma"},
    {0, 13, "cx16"},       {0, 19, "sse4_1"},   {0, 20, "sse4_2"},   {0, 22, "movbe"},
    {0, 23, "popcnt"},     {0, 25, "aes"},      {0, 26, "xsave"},    {0, 28, "avx"},
    {0, 29, "f16c"},       {0, 30, "rdrand"},   {1, 0, "fpu"},       {1, 4, "tsc"},
    {1, 5, "msr"},         {1, 8, "cx8"},       {1, 15, "cmov"},     {1, 19, "clflush"},
    {1, 23, "mmx"},        {1, 24, "fxsr"},     {1, 25, "sse"},      {1, 26, "sse2"},
    {2, 0, "fsgsbase"},    {2, 3, "bmi1"},      {2, 5, "avx2"},      {2, 7, "smep"},
    {2, 8, "bmi2"},        {2, 9, "erms"},      {2, 10, "invpcid"},  {2, 16, "avx512f"},
    {2, 18, "rdseed"},     {2, 19, "adx"},      {2, 20, "smap"},     {2, 23, "clflushopt"},
    {2, 29, "sha_ni"},     {3, 2, "umip"},      {3, 3, "pku"},       {3, 9, "vaes"},
    {3, 10, "vpclmulqdq"}, {3, 22, "rdpid"},    {4, 10, "md_clear"}, {5, 0, "lahf_lm"},
    {5, 5, "abm"},         {6, 11, "syscall"},  {6, 20, "nx"},       {6, 26, "pdpe1gb"},
    {6, 27, "rdtscp"},     {6, 29, "lm"},
};

static uint32_t word_of(const struct snap_cpu_id *id, unsigned word)
{
    uint32_t value;
    memcpy(&value, (const char *)id + feature_words[word].offset, sizeof(value));
    return value;
}

static const char *feature_name(unsigned word, unsigned bit)
{
    for (size_t i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]); i++)
        if (feature_names[i].word == word && feature_names[i].bit == bit)
            return feature_names[i].name;
    return NULL;
}

int snap_cpu_vendor_check(const struct snap_cpu_id *saved, const struct snap_cpu_id *host,
                          const char *label, struct error *err)
{
    int rc =
        snap_check_text_field(saved->vendor, sizeof(saved->vendor), label, "the CPU vendor", err);
    if (rc < 0)
        return rc;
    if (saved->pad != 0)
        return error_fmt(err, -EINVAL, "%s: nonzero padding in the CPU identity", label);
    if (strncmp(saved->vendor, host->vendor, sizeof(saved->vendor)) != 0)
        return error_fmt(err, -ENODEV, "%s: snapshot was taken on a %.16s CPU, this host is %.16s",
                         label, saved->vendor, host->vendor);
    return 0;
}

int snap_cpu_id_check(const struct snap_cpu_id *saved, const struct snap_cpu_id *host,
                      const char *label, struct error *err)
{
    int rc = snap_cpu_vendor_check(saved, host, label, err);
    if (rc < 0)
        return rc;
    const char *first_where = NULL, *first_name = NULL;
    unsigned first_bit = 0, missing = 0;
    for (unsigned w = 0; w < sizeof(feature_words) / sizeof(feature_words[0]); w++) {
        uint32_t lacking = word_of(saved, w) & ~word_of(host, w) & ~feature_words[w].ignored;
        for (unsigned bit = 0; bit < 32; bit++) {
            if (!(lacking & (1u << bit)))
                continue;
            if (missing++ == 0) {
                first_where = feature_words[w].where;
                first_bit = bit;
                first_name = feature_name(w, bit);
            }
        }
    }
    if (missing == 0)
        return 0;
    char more[48] = "";
    if (missing > 1)
        snprintf(more, sizeof(more), " (and %u more missing feature bits)", missing - 1);
    return error_fmt(err, -ENODEV,
                     "%s: the snapshot's CPU had CPUID %s bit %u%s%s%s, this host lacks it%s",
                     label, first_where, first_bit, first_name ? " (" : "",
                     first_name ? first_name : "", first_name ? ")" : "", more);
}
