/* Unit tests for CPU templates (kiln/vcpu/cpu_template.h) on a fake supported CPUID table, no
 * KVM: minimal's exact words, template files' bits, names and base, every bad file input in
 * one line at its line, and the "this host's KVM does not offer" errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/vcpu/cpu_template.h"

#define BIT(n) (1u << (n))

/* A recent Intel-like host: SSE3 to AVX2, AVX-512F, XSAVE of x87/SSE/AVX, KVM's PV leaves. */
static const struct kvm_cpuid_entry2 host_entries[] = {
    {.function = 0, .eax = 0xd, .ebx = 0x756e6547, .ecx = 0x6c65746e, .edx = 0x49656e69},
    {.function = 1, .eax = 0x906ea, .ebx = 0x800, .ecx = 0xf7fa3223, .edx = 0x178bfbff},
    {.function = 7,
     .index = 0,
     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
     .eax = 1,
     .ebx = 0x219d07ab,
     .ecx = 0x00000604,
     .edx = 0xac000410},
    {.function = 7, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 0x10},
    {.function = 0xd,
     .index = 0,
     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
     .eax = 7,
     .ebx = 0x340,
     .ecx = 0x340},
    {.function = 0xd, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 0xf},
    {.function = 0xd,
     .index = 2,
     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
     .eax = 0x100,
     .ebx = 0x240},
    {.function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b, .ecx = 0x564b4d56, .edx = 0x4d},
    {.function = 0x40000001, .eax = 0x01007efb},
    {.function = 0x80000001, .ecx = 0x00000121, .edx = 0x2c100800},
};
#define HOST_ENTRY_COUNT (sizeof(host_entries) / sizeof(host_entries[0]))

/* A fresh copy of the fake host's table (free it). */
static struct kvm_cpuid2 *host_table(void)
{
    struct kvm_cpuid2 *t = calloc(1, sizeof(*t) + sizeof(host_entries));
    assert_non_null(t);
    t->nent = HOST_ENTRY_COUNT;
    memcpy(t->entries, host_entries, sizeof(host_entries));
    return t;
}

static uint32_t reg(const struct kvm_cpuid2 *t, uint32_t leaf, uint32_t subleaf, enum cpuid_reg r)
{
    struct kvm_cpuid_entry2 *e = cpuid_find(t, leaf, subleaf);
    assert_non_null(e);
    return *cpuid_reg_of(e, r);
}

static void set_reg(struct kvm_cpuid2 *t, uint32_t leaf, uint32_t subleaf, enum cpuid_reg r,
                    uint32_t value)
{
    *cpuid_reg_of(cpuid_find(t, leaf, subleaf), r) = value;
}

static void test_minimal_words(void **state)
{
    (void)state;
    struct cpu_template t;
    struct error err = {{0}};
    assert_int_equal(cpu_template_load(&t, "minimal", &err), 0);
    struct kvm_cpuid2 *cpuid = host_table();
    assert_int_equal(cpu_template_apply(&t, cpuid, &err), 0);
    /* cx16; x2apic, the TSC deadline timer and hypervisor kept; SSE3..SSE4.2, POPCNT, AES, XSAVE,
     * AVX, F16C gone */
    assert_int_equal(reg(cpuid, 1, 0, CPUID_ECX), BIT(13) | BIT(21) | BIT(24) | BIT(31));
    assert_int_equal(reg(cpuid, 1, 0, CPUID_EDX), 0x178bfbff); /* the baseline and HTT */
    for (uint32_t sub = 0; sub <= 1; sub++)
        for (enum cpuid_reg r = CPUID_EAX; r <= CPUID_EDX; r++)
            assert_int_equal(reg(cpuid, 7, sub, r), 0);
    for (uint32_t sub = 0; sub <= 2; sub++)
        for (enum cpuid_reg r = CPUID_EAX; r <= CPUID_EDX; r++)
            assert_int_equal(reg(cpuid, 0xd, sub, r), 0);
    assert_int_equal(reg(cpuid, 0x80000001, 0, CPUID_ECX), 1);
    assert_int_equal(reg(cpuid, 0x80000001, 0, CPUID_EDX), 0x20100800);
    /* The vendor, KVM's signature and PV features stay the host's. */
    assert_memory_equal(cpuid_find(cpuid, 0, 0), &host_entries[0], sizeof(host_entries[0]));
    assert_int_equal(reg(cpuid, 0x40000000, 0, CPUID_EBX), 0x4b4d564b);
    assert_int_equal(reg(cpuid, 0x40000001, 0, CPUID_EAX), 0x01007efb);
    free(cpuid);
    cpu_template_free(&t);
}

static void test_host_changes_nothing(void **state)
{
    (void)state;
    struct cpu_template t;
    struct error err = {{0}};
    assert_int_equal(cpu_template_load(&t, "host", &err), 0);
    struct kvm_cpuid2 *cpuid = host_table();
    assert_int_equal(cpu_template_apply(&t, cpuid, &err), 0);
    assert_memory_equal(cpuid->entries, host_entries, sizeof(host_entries));
    free(cpuid);
    cpu_template_free(&t);
}

static void test_minimal_on_a_host_lacking_its_features(void **state)
{
    (void)state;
    struct cpu_template t;
    struct error err = {{0}};
    assert_int_equal(cpu_template_minimal(&t, &err), 0);
    struct kvm_cpuid2 *cpuid = host_table();
    set_reg(cpuid, 1, 0, CPUID_ECX, reg(cpuid, 1, 0, CPUID_ECX) & ~BIT(13));
    assert_int_equal(cpu_template_apply(&t, cpuid, &err), -ENODEV);
    assert_string_equal(err.msg, "cpu template minimal: needs CPUID leaf 0x1 subleaf 0 ECX bit 13 "
                                 "(cx16), which this host's KVM does not offer");
    free(cpuid);
    cpuid = host_table();
    set_reg(cpuid, 0x80000001, 0, CPUID_EDX, 0);
    assert_int_equal(cpu_template_apply(&t, cpuid, &err), -ENODEV);
    assert_string_equal(err.msg, "cpu template minimal: needs CPUID leaf 0x80000001 subleaf 0 EDX "
                                 "bit 11 (syscall), which this host's KVM does not offer (and 2 "
                                 "more)");
    free(cpuid);
    cpu_template_free(&t);
}

/* Writes text to a temporary file; its path in path. */
static void write_template(const char *text, char *path, size_t size)
{
    snprintf(path, size, "/tmp/kiln-cpu-template-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* Loads text as a template file and applies it to the fake host: the return code, the
 * message in err (without the file's path in front), the table in *out (or freed if NULL). */
static int load_and_apply(const char *text, struct error *err, struct kvm_cpuid2 **out)
{
    char path[64];
    write_template(text, path, sizeof(path));
    struct cpu_template t;
    struct kvm_cpuid2 *cpuid = host_table();
    int r = cpu_template_load(&t, path, err);
    if (r == 0)
        r = cpu_template_apply(&t, cpuid, err);
    cpu_template_free(&t);
    unlink(path);
    if (r < 0) {
        assert_int_equal(strncmp(err->msg, path, strlen(path)), 0); /* it names the file */
        memmove(err->msg, err->msg + strlen(path), strlen(err->msg + strlen(path)) + 1);
    }
    if (out)
        *out = cpuid;
    else
        free(cpuid);
    return r;
}

static void test_file_bits_set_keep_clear(void **state)
{
    (void)state;
    struct error err = {{0}};
    struct kvm_cpuid2 *cpuid;
    /* 0xd.0 EBX is 0x340: bits 31-12 cleared, 11-8 set (0xf00), 7-0 kept (0x40). */
    assert_int_equal(load_and_apply("cpuid:\n"
                                    "  - leaf: 0xd\n"
                                    "    subleaf: 0\n"
                                    "    register: EBX\n"
                                    "    bits: 0b00000000_00000000_00001111_xxxxxxxx\n",
                                    &err, &cpuid),
                     0);
    assert_int_equal(reg(cpuid, 0xd, 0, CPUID_EBX), 0xf40);
    assert_int_equal(reg(cpuid, 0xd, 0, CPUID_ECX), 0x340); /* another register: untouched */
    free(cpuid);
}

static void test_file_features_by_name(void **state)
{
    (void)state;
    struct error err = {{0}};
    struct kvm_cpuid2 *cpuid;
    assert_int_equal(load_and_apply("features:\n"
                                    "  clear: [avx2, avx512f, kvm_steal_time]\n"
                                    "  set: [sse4_2]\n",
                                    &err, &cpuid),
                     0);
    assert_int_equal(reg(cpuid, 7, 0, CPUID_EBX), 0x219d07ab & ~(BIT(5) | BIT(16)));
    assert_int_equal(reg(cpuid, 0x40000001, 0, CPUID_EAX), 0x01007efb & ~BIT(5));
    assert_int_equal(reg(cpuid, 1, 0, CPUID_ECX), 0xf7fa3223);
    free(cpuid);
}

/* base: minimal, then the file's own changes on top, wherever base is in the file. */
static void test_file_on_minimal(void **state)
{
    (void)state;
    struct error err = {{0}};
    struct kvm_cpuid2 *cpuid;
    assert_int_equal(load_and_apply("features:\n"
                                    "  set: [sse3, ssse3, sse4_1, sse4_2, popcnt]\n"
                                    "base: minimal\n",
                                    &err, &cpuid),
                     0);
    assert_int_equal(reg(cpuid, 1, 0, CPUID_ECX), BIT(0) | BIT(9) | BIT(13) | BIT(19) | BIT(20) |
                                                      BIT(21) | BIT(23) | BIT(24) | BIT(31));
    assert_int_equal(reg(cpuid, 7, 0, CPUID_EBX), 0);
    free(cpuid);
    /* A base the host cannot give is reported at base's line. */
    char path[64];
    write_template("# x86-64-v1\nbase: minimal\n", path, sizeof(path));
    struct cpu_template t;
    assert_int_equal(cpu_template_load(&t, path, &err), 0);
    cpuid = host_table();
    set_reg(cpuid, 1, 0, CPUID_EDX, 0);
    assert_int_equal(cpu_template_apply(&t, cpuid, &err), -ENODEV);
    char expected[512];
    snprintf(expected, sizeof(expected),
             "%s:2: needs CPUID leaf 0x1 subleaf 0 EDX bit 0 (fpu), which this host's KVM does "
             "not offer (and 21 more)",
             path);
    assert_string_equal(err.msg, expected);
    free(cpuid);
    cpu_template_free(&t);
    unlink(path);
}

/* Each bad input: its file, and the message after the path. */
static const struct {
    const char *text, *message;
} bad_files[] = {
    {"cpuid: [\n", ":2: did not find expected node content (expected a YAML CPU template)"},
    {"", ": empty (expected a CPU template with base:, cpuid:, features: or msrs:)"},
    {"- 1\n", ":1: not a mapping (expected a CPU template with base:, cpuid:, features: or msrs:)"},
    {"cpus: 2\n", ":1: unknown key 'cpus' (expected base, cpuid, features or msrs)"},
    {"cpuid: 7\n", ":1: cpuid: not a list (expected a list of entries with leaf, subleaf, "
                   "register and bits)"},
    {"cpuid:\n  - 7\n", ":2: a cpuid entry is not a mapping (expected leaf, subleaf, register "
                        "and bits)"},
    {"cpuid:\n  - leaf: 1\n    reg: ecx\n", ":3: unknown key 'reg' in a cpuid entry (expected "
                                            "leaf, subleaf, register and bits)"},
    {"cpuid:\n  - leaf: 1\n    leaf: 2\n", ":3: leaf given twice in one cpuid entry"},
    {"cpuid:\n  - register: ecx\n    bits: 0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
     ":2: cpuid entry without leaf (expected leaf, subleaf, register and bits)"},
    {"cpuid:\n  - leaf: 1\n    bits: 0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
     ":2: cpuid entry without register (expected leaf, subleaf, register and bits)"},
    {"cpuid:\n  - leaf: 1\n    register: ecx\n",
     ":2: cpuid entry without bits (expected leaf, subleaf, register and bits)"},
    {"cpuid:\n  - leaf: one\n", ":2: leaf: 'one' is not a number (expected 0 to 0xffffffff, "
                                "decimal or 0x hex)"},
    {"cpuid:\n  - leaf: 0x100000000\n", ":2: leaf: '0x100000000' is not a number (expected 0 "
                                        "to 0xffffffff, decimal or 0x hex)"},
    {"cpuid:\n  - leaf: -1\n", ":2: leaf: '-1' is not a number (expected 0 to 0xffffffff, "
                               "decimal or 0x hex)"},
    {"cpuid:\n  - leaf: 1\n    subleaf: [0]\n", ":3: subleaf: '(not a scalar)' is not a number "
                                                "(expected 0 to 0xffffffff, decimal or 0x hex)"},
    {"cpuid:\n  - leaf: 1\n    register: esi\n", ":3: register: 'esi' is not a register "
                                                 "(expected eax, ebx, ecx or edx)"},
    {"cpuid:\n  - leaf: 1\n    register: ecx\n    bits: 0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx2\n",
     ":4: bits: '2' in '0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx2' (expected 32 of 0 (clear), 1 (set) "
     "or x (keep), bit 31 first, optionally after 0b and with _ between groups)"},
    {"cpuid:\n  - leaf: 1\n    register: ecx\n    bits: 0bxxxx\n",
     ":4: bits: '0bxxxx' has fewer than 32 bits (expected 32 of 0 (clear), 1 (set) or x (keep), "
     "bit 31 first, optionally after 0b and with _ between groups)"},
    {"cpuid:\n  - leaf: 1\n    register: ecx\n    bits: 0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
     ":4: bits: '0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' has more than 32 bits (expected 32 of 0 "
     "(clear), 1 (set) or x (keep), bit 31 first, optionally after 0b and with _ between "
     "groups)"},
    {"features: [avx]\n", ":1: features: not a mapping (expected set: and clear: lists)"},
    {"features:\n  remove: [avx]\n", ":2: features: unknown key 'remove' (expected set or clear)"},
    {"features:\n  clear: avx\n", ":2: features: clear: not a list (expected a list of feature "
                                  "names)"},
    {"features:\n  clear: [avx, avx3]\n", ":2: features: clear: unknown CPU feature 'avx3' "
                                          "(expected a name from docs/cpu-templates.md such as "
                                          "avx2)"},
    {"msrs: {}\n", ":1: msrs: not a list (expected a list of entries with index and value)"},
    {"msrs:\n  - 1\n", ":2: an msrs entry is not a mapping (expected index and value)"},
    {"msrs:\n  - index: 0x10\n", ":2: msrs entry without value (expected index and value)"},
    {"msrs:\n  - value: 0\n", ":2: msrs entry without index (expected index and value)"},
    {"msrs:\n  - index: 0x10\n    data: 0\n", ":3: unknown key 'data' in an msrs entry "
                                              "(expected index and value)"},
    {"msrs:\n  - index: 0x10\n    index: 0x11\n", ":3: index given twice in one msrs entry"},
    {"msrs:\n  - index: 0x10\n    value: 0x10000000000000000\n",
     ":3: value: '0x10000000000000000' is not a number (expected 0 to 0xffffffffffffffff, "
     "decimal or 0x hex)"},
    {"msrs:\n  - index: 0x 10\n", ":2: index: '0x 10' is not a number (expected 0 to "
                                  "0xffffffff, decimal or 0x hex)"},
    {"features:\n  set: [a\n\n\n  b]\n", ":2: features: set: unknown CPU feature 'a??b' (expected "
                                         "a name from docs/cpu-templates.md such as avx2)"},
    {"base: haswell\n", ":1: base: 'haswell' is not a built-in template (expected host or "
                        "minimal)"},
    {"base: host\nbase: minimal\n", ":2: base given twice"},
    {"cpuid:\n  - leaf: 0x40000000\n    register: ebx\n"
     "    bits: 0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
     ":2: CPUID leaf 0x40000000 is KVM's signature, which kiln keeps (expected another leaf)"},
    {"cpuid:\n  - leaf: 0x14\n    register: ebx\n"
     "    bits: 0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx1\n",
     ":2: sets bits of CPUID leaf 0x14 subleaf 0, which this host's KVM does not offer"},
    {"features:\n  set: [avx512f, pn]\n",
     ":2: needs CPUID leaf 0x1 subleaf 0 EDX bit 18 (pn), which this host's KVM does not offer"},
    /* leaf 0x80000001 has no subleaves: any subleaf is subleaf 0, checked as such */
    {"cpuid:\n  - leaf: 0x80000001\n    subleaf: 5\n    register: edx\n"
     "    bits: 0b1xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
     ":2: needs CPUID leaf 0x80000001 subleaf 0 EDX bit 31 (3dnow), which this host's KVM does "
     "not offer"},
    {"cpuid:\n  - leaf: 7\n    register: ebx\n    bits: 0bxxxx1xxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
     ":2: needs CPUID leaf 0x7 subleaf 0 EBX bit 27 (avx512er), which this host's KVM does not "
     "offer"},
};

static void test_bad_files(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
        struct error err = {{0}};
        int r = load_and_apply(bad_files[i].text, &err, NULL);
        if (r >= 0 || strcmp(err.msg, bad_files[i].message) != 0)
            fail_msg("file %zu:\n%s\n got %d: '%s'\nwant: '%s'", i, bad_files[i].text, r, err.msg,
                     bad_files[i].message);
    }
}

static void test_file_msrs(void **state)
{
    (void)state;
    char path[64];
    write_template("msrs:\n"
                   "  - index: 0xc0000102\n"
                   "    value: 0x123456789a\n"
                   "  - {index: 16, value: 18446744073709551615}\n",
                   path, sizeof(path));
    struct cpu_template t;
    struct error err = {{0}};
    assert_int_equal(cpu_template_load(&t, path, &err), 0);
    assert_int_equal(t.nmsrs, 2);
    assert_int_equal(t.msrs[0].index, 0xc0000102);
    assert_int_equal(t.msrs[0].value, 0x123456789aULL);
    assert_int_equal(t.msrs[0].line, 2);
    assert_int_equal(t.msrs[1].index, 16);
    assert_int_equal(t.msrs[1].value, UINT64_MAX);
    cpu_template_free(&t);
    unlink(path);
}

/* The example in configs/: x86-64-v2 on a host that has it. */
static void test_example_template(void **state)
{
    (void)state;
    struct cpu_template t;
    struct error err = {{0}};
    assert_int_equal(
        cpu_template_load(&t, TEST_SOURCE_DIR "/configs/cpu-templates/x86-64-v2.yaml", &err), 0);
    struct kvm_cpuid2 *cpuid = host_table();
    assert_int_equal(cpu_template_apply(&t, cpuid, &err), 0);
    assert_int_equal(reg(cpuid, 1, 0, CPUID_ECX), BIT(0) | BIT(9) | BIT(13) | BIT(19) | BIT(20) |
                                                      BIT(21) | BIT(23) | BIT(24) | BIT(31));
    assert_int_equal(reg(cpuid, 0x80000001, 0, CPUID_ECX), 1);
    assert_int_equal(reg(cpuid, 7, 0, CPUID_EBX), 0);
    free(cpuid);
    cpu_template_free(&t);
}

static void test_unreadable_file(void **state)
{
    (void)state;
    struct cpu_template t;
    struct error err = {{0}};
    assert_int_equal(cpu_template_load(&t, "/nonexistent/cpu.yaml", &err), -ENOENT);
    assert_string_equal(err.msg, "/nonexistent/cpu.yaml: cannot read the CPU template: No such "
                                 "file or directory");
}

/* A restore's check: every feature bit of the saved table, against this host's. */
static void test_check_offered(void **state)
{
    (void)state;
    struct error err = {{0}};
    struct kvm_cpuid2 *saved = host_table(), *here = host_table();
    assert_int_equal(cpuid_check_offered(saved, here, "snapshot S", &err), 0);
    set_reg(here, 7, 0, CPUID_EBX, reg(here, 7, 0, CPUID_EBX) & ~BIT(5));
    set_reg(here, 0x40000001, 0, CPUID_EAX, 0);
    assert_int_equal(cpuid_check_offered(saved, here, "snapshot S", &err), -ENODEV);
    assert_string_equal(err.msg, "snapshot S: needs CPUID leaf 0x7 subleaf 0 EBX bit 5 (avx2), "
                                 "which this host's KVM does not offer (and 14 more)");
    /* A saved VM with a template that hid those bits restores here. */
    set_reg(saved, 7, 0, CPUID_EBX, reg(here, 7, 0, CPUID_EBX));
    set_reg(saved, 0x40000001, 0, CPUID_EAX, 0);
    assert_int_equal(cpuid_check_offered(saved, here, "snapshot S", &err), 0);
    free(saved);
    free(here);
}

/* A state file's cpuid section: its size must match its count. */
static void test_saved_table_sizes(void **state)
{
    (void)state;
    struct error err = {{0}};
    struct kvm_cpuid2 *t = host_table();
    uint32_t size = (uint32_t)(sizeof(*t) + t->nent * sizeof(t->entries[0]));
    assert_int_equal(cpuid_table_check(t, size, "S", &err), 0);
    assert_int_equal(cpuid_table_check(t, size - 1, "S", &err), -EINVAL);
    assert_string_equal(err.msg, "S: a CPUID table of 407 bytes (expected 8 + 40 per entry, 1 to "
                                 "256 entries)");
    assert_int_equal(cpuid_table_check(t, 4, "S", &err), -EINVAL);
    t->nent = 0;
    assert_int_equal(cpuid_table_check(t, sizeof(*t), "S", &err), -EINVAL);
    t->nent = 0xffffffffu; /* a count whose size would wrap 32 bits */
    assert_int_equal(cpuid_table_check(t, size, "S", &err), -EINVAL);
    free(t);
}

/* A name picks one bit: no two feature words may share one. */
static void test_feature_names_are_unique(void **state)
{
    (void)state;
    for (size_t i = 0; i < cpuid_feature_word_count; i++) {
        for (unsigned b = 0; b < 32; b++) {
            const char *name = cpuid_feature_words[i].names[b];
            if (!name)
                continue;
            const struct cpuid_feature_word *word;
            unsigned bit;
            assert_int_equal(cpuid_feature_by_name(name, &word, &bit), 0);
            if (word != &cpuid_feature_words[i] || bit != b)
                fail_msg("'%s' names two bits", name);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_words),
        cmocka_unit_test(test_host_changes_nothing),
        cmocka_unit_test(test_minimal_on_a_host_lacking_its_features),
        cmocka_unit_test(test_file_bits_set_keep_clear),
        cmocka_unit_test(test_file_features_by_name),
        cmocka_unit_test(test_file_on_minimal),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_file_msrs),
        cmocka_unit_test(test_example_template),
        cmocka_unit_test(test_unreadable_file),
        cmocka_unit_test(test_check_offered),
        cmocka_unit_test(test_saved_table_sizes),
        cmocka_unit_test(test_feature_names_are_unique),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
