/* Unit tests for per-vCPU state kiln computes without KVM: CPUID normalisation (APIC IDs,
 * topology, hypervisor bit) and the boot-protocol GDT, page tables and segment registers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/boot/layout.h"
#include "kiln/vcpu/vcpu.h"

static struct kvm_cpuid2 *make_cpuid(void)
{
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 5 * sizeof(struct kvm_cpuid_entry2));
    c->nent = 5;
    c->entries[0] = (struct kvm_cpuid_entry2){.function = 1, .ebx = 0xff0f0800, .edx = 1U << 28};
    c->entries[1] = (struct kvm_cpuid_entry2){.function = 4, .index = 0, .eax = 0xfc004121};
    c->entries[2] = (struct kvm_cpuid_entry2){.function = 0xb, .index = 0};
    c->entries[3] = (struct kvm_cpuid_entry2){.function = 0xb, .index = 1};
    c->entries[4] = (struct kvm_cpuid_entry2){.function = 0xb, .index = 2};
    return c;
}

static void test_cpuid_apic_id_and_topology(void **state)
{
    struct kvm_cpuid2 *c = make_cpuid();
    cpuid_normalise(c, 3, 4);
    assert_int_equal(c->entries[0].ebx >> 24, 3);
    assert_int_equal((c->entries[0].ebx >> 16) & 0xff, 4);
    assert_int_equal(c->entries[0].ebx & 0xffff, 0x0800); /* CLFLUSH size kept */
    assert_true(c->entries[0].ecx & (1U << 31));          /* hypervisor present */
    assert_true(c->entries[0].edx & (1U << 28));          /* HTT: more than one CPU */
    assert_int_equal(c->entries[1].eax >> 26, 3);         /* cores per package - 1 */
    assert_int_equal(c->entries[1].eax & 0x03ffffff, 0x00004121);
    assert_int_equal(c->entries[2].edx, 3); /* x2APIC ID */
    assert_int_equal(c->entries[2].ebx, 1); /* one thread per core */
    assert_int_equal(c->entries[2].ecx, 0x100);
    assert_int_equal(c->entries[3].eax, 2); /* 4 cores: 2 bits of APIC ID */
    assert_int_equal(c->entries[3].ebx, 4);
    assert_int_equal(c->entries[3].ecx, 0x201);
    assert_int_equal(c->entries[4].ecx, 2); /* terminating level */
    free(c);
}

static void test_cpuid_single_cpu_clears_htt(void **state)
{
    struct kvm_cpuid2 *c = make_cpuid();
    cpuid_normalise(c, 0, 1);
    assert_false(c->entries[0].edx & (1U << 28));
    assert_int_equal(c->entries[0].ebx >> 16, 0x0001);
    assert_int_equal(c->entries[3].eax, 0);
    free(c);
}

static void test_long_mode_tables(void **state)
{
    struct guest_mem mem;
    assert_int_equal(guest_mem_init(&mem, 8 << 20, NULL), 0);
    assert_int_equal(boot_state_write_tables(&mem, BOOT_ENTRY_LINUX64), 0);
    uint64_t *gdt = guest_mem_ptr(&mem, LAYOUT_GDT, 32);
    assert_int_equal(gdt[0], 0);
    assert_int_equal(gdt[2], 0x00af9b000000ffffULL);
    assert_int_equal(gdt[3], 0x00cf93000000ffffULL);
    uint64_t *pml4 = guest_mem_ptr(&mem, LAYOUT_PML4, 8);
    assert_int_equal(*pml4, LAYOUT_PDPT | 3);
    uint64_t *pdpt = guest_mem_ptr(&mem, LAYOUT_PDPT, 32);
    assert_int_equal(pdpt[3], (LAYOUT_PD + 3 * 4096) | 3);
    uint64_t *pd = guest_mem_ptr(&mem, LAYOUT_PD, 4 * 4096);
    assert_int_equal(pd[0], 0x83);
    assert_int_equal(pd[2047], (2047ULL << 21) | 0x83); /* last 2 MiB page below 4 GiB */

    struct kvm_sregs sregs;
    memset(&sregs, 0, sizeof(sregs));
    boot_state_sregs(&sregs, BOOT_ENTRY_LINUX64);
    assert_int_equal(sregs.cs.selector, LAYOUT_SEL_CODE);
    assert_int_equal(sregs.cs.l, 1);
    assert_int_equal(sregs.cs.db, 0);
    assert_int_equal(sregs.ss.selector, LAYOUT_SEL_DATA);
    assert_int_equal(sregs.cr3, LAYOUT_PML4);
    assert_true(sregs.cr0 & 0x80000001);
    assert_int_equal(sregs.efer, 0x500);
    guest_mem_destroy(&mem);
}

static void test_pvh_state(void **state)
{
    struct guest_mem mem;
    assert_int_equal(guest_mem_init(&mem, 4 << 20, NULL), 0);
    uint64_t *pml4 = guest_mem_ptr(&mem, LAYOUT_PML4, 8);
    assert_int_equal(boot_state_write_tables(&mem, BOOT_ENTRY_PVH32), 0);
    assert_int_equal(*pml4, 0); /* PVH enters with paging off: no tables written */
    uint64_t *gdt = guest_mem_ptr(&mem, LAYOUT_GDT, 32);
    assert_int_equal(gdt[2], 0x00cf9b000000ffffULL);

    struct kvm_sregs sregs;
    memset(&sregs, 0, sizeof(sregs));
    boot_state_sregs(&sregs, BOOT_ENTRY_PVH32);
    assert_int_equal(sregs.cs.db, 1);
    assert_int_equal(sregs.cs.l, 0);
    assert_int_equal(sregs.cs.limit, 0xffffffff);
    assert_int_equal(sregs.cr0 & 0x80000001, 1); /* PE on, PG off */
    assert_int_equal(sregs.efer, 0);
    assert_int_equal(sregs.cr4, 0);
    guest_mem_destroy(&mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpuid_apic_id_and_topology),
        cmocka_unit_test(test_cpuid_single_cpu_clears_htt),
        cmocka_unit_test(test_long_mode_tables),
        cmocka_unit_test(test_pvh_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
