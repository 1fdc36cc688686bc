/* Unit tests for kiln's ACPI tables as the guest sees them in RAM: checksums, lengths, links,
 * MADT/FADT fields at their spec offsets, config errors, and `iasl -d` disassembly when found. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/acpi/acpi.h"
#include "kiln/vm/guest_mem.h"
#include "kiln/vm/platform.h"

#define MiB (1ULL << 20)

/* Helpers -------------------------------------------------------------------------------- */

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint8_t sum(const uint8_t *p, size_t len)
{
    uint8_t s = 0;
    for (size_t i = 0; i < len; i++)
        s = (uint8_t)(s + p[i]);
    return s;
}

struct vm_tables {
    struct guest_mem mem;
    struct acpi_layout layout;
};

static struct acpi_virtio_device virtio_slot(unsigned i)
{
    struct acpi_virtio_device d = {
        .base = PLATFORM_VIRTIO_MMIO_BASE + i * PLATFORM_VIRTIO_MMIO_SLOT_SIZE,
        .size = PLATFORM_VIRTIO_MMIO_SLOT_SIZE,
        .gsi = PLATFORM_VIRTIO_GSI_BASE + i,
    };
    return d;
}

static void build_vm(struct vm_tables *t, unsigned ncpus, size_t nvirtio)
{
    struct acpi_virtio_device virtio[PLATFORM_VIRTIO_MMIO_MAX];
    for (unsigned i = 0; i < PLATFORM_VIRTIO_MMIO_MAX; i++)
        virtio[i] = virtio_slot(i);
    struct acpi_config cfg = {
        .ncpus = ncpus, .virtio = virtio, .nvirtio = nvirtio, .vmgenid = true};
    struct error err = {{0}};
    assert_int_equal(guest_mem_init(&t->mem, 2 * MiB, NULL), 0);
    int r = acpi_build_layout(&t->mem, &cfg, &t->layout, &err);
    if (r != 0)
        print_message("acpi_build_layout: %s\n", err.msg);
    assert_int_equal(r, 0);
}

/* The whole table at gpa, after checking its header length is sane and inside RAM. */
static const uint8_t *table_at(const struct vm_tables *t, uint64_t gpa, const char *signature)
{
    const uint8_t *hdr = guest_mem_ptr(&t->mem, gpa, ACPI_TABLE_HEADER_LEN);
    assert_non_null(hdr);
    if (memcmp(hdr, signature, 4) != 0)
        print_message("table at 0x%llx is \"%.4s\", expected \"%s\"\n", (unsigned long long)gpa,
                      (const char *)hdr, signature);
    assert_memory_equal(hdr, signature, 4);
    uint32_t len = (uint32_t)le(hdr + 4, 4);
    assert_true(len >= ACPI_TABLE_HEADER_LEN);
    const uint8_t *table = guest_mem_ptr(&t->mem, gpa, len);
    assert_non_null(table);
    assert_true(gpa + len <= PLATFORM_ACPI_END);
    return table;
}

static uint32_t table_len(const uint8_t *table)
{
    return (uint32_t)le(table + 4, 4);
}

/* Follows RSDP -> XSDT -> FADT -> DSDT and XSDT -> MADT the way an OS does. */
struct found {
    const uint8_t *rsdp, *xsdt, *fadt, *madt, *dsdt;
};

static struct found walk(const struct vm_tables *t)
{
    struct found f;
    f.rsdp = guest_mem_ptr(&t->mem, PLATFORM_ACPI_START, ACPI_RSDP_LEN);
    assert_non_null(f.rsdp);
    assert_memory_equal(f.rsdp, "RSD PTR ", 8);
    f.xsdt = table_at(t, le(f.rsdp + 24, 8), "XSDT");
    assert_int_equal(table_len(f.xsdt), ACPI_TABLE_HEADER_LEN + 2 * 8);
    f.fadt = table_at(t, le(f.xsdt + 36, 8), "FACP");
    f.madt = table_at(t, le(f.xsdt + 44, 8), "APIC");
    f.dsdt = table_at(t, le(f.fadt + 140, 8), "DSDT");
    return f;
}

/* Layout, RSDP, checksums ------------------------------------------------------------------- */

static void test_layout_and_rsdp(void **state)
{
    struct vm_tables t;
    build_vm(&t, 1, 0);
    uint64_t rsdp_gpa = 0;
    struct acpi_config cfg = {.ncpus = 1};
    assert_int_equal(acpi_build(&t.mem, &cfg, &rsdp_gpa, NULL), 0);
    assert_int_equal(rsdp_gpa, PLATFORM_ACPI_START);

    /* Fixed-size tables first, so only the DSDT's place depends on the vCPU count. */
    assert_int_equal(t.layout.rsdp, 0xe0000);
    assert_int_equal(t.layout.xsdt, 0xe0030);
    assert_int_equal(t.layout.fadt, 0xe0070);
    assert_int_equal(t.layout.madt, 0xe0190);
    assert_int_equal(t.layout.dsdt % ACPI_TABLE_ALIGN, 0);

    struct found f = walk(&t);
    const uint8_t *r = f.rsdp;
    assert_int_equal(sum(r, ACPI_RSDP_V1_LEN), 0); /* ACPI 1.0 checksum: first 20 bytes */
    assert_int_equal(sum(r, ACPI_RSDP_LEN), 0);    /* extended checksum: all 36 */
    assert_memory_equal(r + 9, PLATFORM_ACPI_OEM_ID, 6);
    assert_int_equal(r[15], 2);               /* revision */
    assert_int_equal(le(r + 16, 4), 0);       /* no RSDT */
    assert_int_equal(le(r + 20, 4), 36);      /* length */
    assert_int_equal(le(r + 24, 8), 0xe0030); /* XSDT */
    assert_int_equal(le(r + 33, 3), 0);       /* reserved */
    guest_mem_destroy(&t.mem);
}

static void check_header(const uint8_t *table, uint8_t revision)
{
    assert_int_equal(sum(table, table_len(table)), 0);
    assert_int_equal(table[8], revision);
    assert_memory_equal(table + 10, PLATFORM_ACPI_OEM_ID, 6);
    assert_memory_equal(table + 16, PLATFORM_ACPI_OEM_TABLE_ID, 8);
    assert_memory_equal(table + 28, PLATFORM_ACPI_CREATOR_ID, 4);
}

static void test_every_table_checksums_and_links(void **state)
{
    for (unsigned nvirtio = 0; nvirtio <= PLATFORM_VIRTIO_MMIO_MAX; nvirtio += 4) {
        struct vm_tables t;
        build_vm(&t, 2, nvirtio);
        struct found f = walk(&t);
        check_header(f.xsdt, 1);
        check_header(f.fadt, 6);
        check_header(f.madt, 6);
        check_header(f.dsdt, 2);
        assert_int_equal(table_len(f.fadt), ACPI_FADT_LEN);
        assert_int_equal(le(f.fadt + 40, 4), t.layout.dsdt); /* 32-bit DSDT = X_DSDT */
        assert_int_equal(le(f.xsdt + 36, 8), t.layout.fadt);
        assert_int_equal(le(f.xsdt + 44, 8), t.layout.madt);
        assert_int_equal(t.layout.end, t.layout.dsdt + table_len(f.dsdt));
        assert_true(t.layout.end <= PLATFORM_ACPI_END);
        guest_mem_destroy(&t.mem);
    }
}

/* FADT --------------------------------------------------------------------------------------- */

static void check_gas_io8(const uint8_t *gas, uint64_t port)
{
    assert_int_equal(gas[0], 1); /* SystemIO */
    assert_int_equal(gas[1], 8); /* bit width */
    assert_int_equal(gas[2], 0); /* bit offset */
    assert_int_equal(gas[3], 1); /* byte access */
    assert_int_equal(le(gas + 4, 8), port);
}

static void test_fadt_fields(void **state)
{
    struct vm_tables t;
    build_vm(&t, 1, 0);
    const uint8_t *f = walk(&t).fadt;
    /* Offsets from ACPI 6.5 §5.2.9 table 5.9. */
    assert_int_equal(le(f + 36, 4), 0); /* FIRMWARE_CTRL: no FACS */
    assert_int_equal(f[45], 0);         /* Preferred_PM_Profile: unspecified */
    assert_int_equal(le(f + 46, 2), 0); /* SCI_INT: none in hardware-reduced mode */
    assert_int_equal(le(f + 56, 4), 0); /* PM1a_EVT_BLK: none */
    assert_int_equal(f[108], 0x32);     /* CENTURY: CMOS index of the RTC's century */
    uint16_t boot = (uint16_t)le(f + 109, 2);
    assert_int_equal(boot & (1u << 1), 0);         /* no 8042 */
    assert_int_equal(boot & (1u << 5), 0);         /* CMOS RTC present */
    assert_int_equal(boot, (1u << 2) | (1u << 3)); /* VGA not present, MSI not supported */
    uint32_t flags = (uint32_t)le(f + 112, 4);
    assert_int_equal(flags, (1u << 20) | (1u << 10) | (1u << 4) | (1u << 5));
    check_gas_io8(f + 116, PLATFORM_PM_RESET);
    assert_int_equal(f[128], PLATFORM_PM_RESET_VALUE);
    assert_int_equal(f[131], 5);         /* FADT minor version: ACPI 6.5 */
    assert_int_equal(le(f + 132, 8), 0); /* X_FIRMWARE_CTRL */
    assert_int_equal(le(f + 140, 8), t.layout.dsdt);
    for (unsigned off = 148; off < 244; off++)
        assert_int_equal(f[off], 0); /* X_PM1a_EVT_BLK .. X_GPE1_BLK: all absent */
    check_gas_io8(f + 244, PLATFORM_PM_SLEEP_CONTROL);
    check_gas_io8(f + 256, PLATFORM_PM_SLEEP_STATUS);
    assert_memory_equal(f + 268, "KILN\0\0\0\0", 8);
    guest_mem_destroy(&t.mem);
}

/* MADT --------------------------------------------------------------------------------------- */

static void check_madt(unsigned ncpus)
{
    struct vm_tables t;
    build_vm(&t, ncpus, 0);
    const uint8_t *m = walk(&t).madt;
    uint32_t len = table_len(m);
    assert_int_equal(len, 44 + 8 * ncpus + 12 + 10 + 6);
    assert_int_equal(le(m + 36, 4), PLATFORM_LAPIC_ADDR);
    assert_int_equal(le(m + 40, 4), 1); /* PCAT_COMPAT */

    unsigned lapics = 0, ioapics = 0, overrides = 0, nmis = 0;
    for (uint32_t off = 44; off < len;) {
        const uint8_t *e = m + off;
        assert_true(e[1] >= 2 && off + e[1] <= len);
        switch (e[0]) {
        case 0: /* Processor Local APIC */
            assert_int_equal(e[1], 8);
            assert_int_equal(e[2], lapics);    /* ACPI processor UID */
            assert_int_equal(e[3], lapics);    /* APIC ID */
            assert_int_equal(le(e + 4, 4), 1); /* enabled */
            lapics++;
            break;
        case 1: /* I/O APIC */
            assert_int_equal(e[1], 12);
            assert_int_equal(e[2], PLATFORM_IOAPIC_ID);
            assert_int_equal(le(e + 4, 4), PLATFORM_IOAPIC_ADDR);
            assert_int_equal(le(e + 8, 4), 0); /* GSI base */
            ioapics++;
            break;
        case 2: /* Interrupt Source Override */
            assert_int_equal(e[1], 10);
            assert_int_equal(e[2], 0);         /* ISA */
            assert_int_equal(e[3], 0);         /* IRQ 0 */
            assert_int_equal(le(e + 4, 4), 2); /* -> GSI 2 */
            assert_int_equal(le(e + 8, 2), 0); /* conforms to the bus */
            overrides++;
            break;
        case 4: /* Local APIC NMI */
            assert_int_equal(e[1], 6);
            assert_int_equal(e[2], 0xff);        /* all processors */
            assert_int_equal(le(e + 3, 2), 0x5); /* edge, active high */
            assert_int_equal(e[5], 1);           /* LINT1 */
            nmis++;
            break;
        default:
            fail_msg("unexpected MADT entry type %u", e[0]);
        }
        off += e[1];
    }
    assert_int_equal(lapics, ncpus);
    assert_int_equal(ioapics, 1);
    assert_int_equal(overrides, 1);
    assert_int_equal(nmis, 1);
    guest_mem_destroy(&t.mem);
}

static void test_madt_1_2_8_cpus(void **state)
{
    check_madt(1);
    check_madt(2);
    check_madt(8);
}

/* DSDT (byte-level; the iasl test below reads it back as ASL) -------------------------------- */

static size_t count(const uint8_t *p, size_t len, const void *needle, size_t nlen)
{
    size_t n = 0;
    for (size_t i = 0; i + nlen <= len; i++)
        n += memcmp(p + i, needle, nlen) == 0;
    return n;
}

static void test_dsdt_contents(void **state)
{
    struct vm_tables t;
    build_vm(&t, 2, 3);
    const uint8_t *d = walk(&t).dsdt;
    size_t len = table_len(d);
    const uint8_t s5[] = {0x08, '_', 'S', '5', '_', 0x12, 0x05, 0x02, 0x0a, 0x05, 0x00};
    assert_int_equal(count(d, len, s5, sizeof(s5)), 1);
    assert_int_equal(count(d, len, "LNRO0005", 8), 3);
    assert_int_equal(count(d, len, "ACPI0013", 8), 1);
    const uint8_t pnp0501[] = {0x0c, 0x41, 0xd0, 0x05, 0x01};
    assert_int_equal(count(d, len, pnp0501, sizeof(pnp0501)), 1);
    assert_int_equal(count(d, len, "VR00", 4), 1);
    assert_int_equal(count(d, len, "VR02", 4), 1);
    assert_int_equal(count(d, len, "VR03", 4), 0);
    /* Memory32Fixed(ReadWrite, slot 2, 4 KiB) */
    const uint8_t mem2[] = {0x86, 0x09, 0x00, 0x01, 0x00, 0x20, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00};
    assert_int_equal(count(d, len, mem2, sizeof(mem2)), 1);

    /* The VM generation ID device, with ADDR returning {PLATFORM_VMGENID_ADDR low, high}. */
    assert_int_equal(PLATFORM_VMGENID_ADDR, 0xef000);
    assert_int_equal(count(d, len, "VGEN", 4), 2); /* the device, and the GED's Notify */
    const uint8_t cid[] = "\x08_CID\x0dVM_Gen_Counter";
    assert_int_equal(count(d, len, cid, sizeof(cid)), 1); /* with its NUL */
    const uint8_t addr[] = {0x14, 0x10, 'A',  'D',  'D',  'R',  0x00, 0xa4, 0x12,
                            0x08, 0x02, 0x0c, 0x00, 0xf0, 0x0e, 0x00, 0x00};
    assert_int_equal(count(d, len, addr, sizeof(addr)), 1);
    /* The GED: one Interrupt descriptor per GSI (Linux takes only a descriptor's first),
     * and _EVT notifies the device whose GSI fired. */
    const uint8_t ged_9[] = {0x89, 0x06, 0x00, 0x03, 0x01, 0x09, 0x00, 0x00, 0x00};
    const uint8_t ged_10[] = {0x89, 0x06, 0x00, 0x03, 0x01, 0x0a, 0x00, 0x00, 0x00};
    assert_int_equal(count(d, len, ged_9, sizeof(ged_9)), 1);
    assert_int_equal(count(d, len, ged_10, sizeof(ged_10)), 1);
    const uint8_t if_9[] = {0xa0, 0x12, 0x93, 0x68, 0x0a, 0x09, 0x86, 0x5c, 0x2e, '_',
                            'S',  'B',  '_',  'P',  'W',  'R',  'B',  0x0a, 0x80};
    const uint8_t if_10[] = {0xa0, 0x12, 0x93, 0x68, 0x0a, 0x0a, 0x86, 0x5c, 0x2e, '_',
                             'S',  'B',  '_',  'V',  'G',  'E',  'N',  0x0a, 0x80};
    assert_int_equal(count(d, len, if_9, sizeof(if_9)), 1);
    assert_int_equal(count(d, len, if_10, sizeof(if_10)), 1);
    guest_mem_destroy(&t.mem);
}

/* --vmgenid off: no VGEN device, and the GED has only the power button's interrupt. */
static void test_dsdt_without_vmgenid(void **state)
{
    struct aml_buf b;
    struct error err = {{0}};
    struct acpi_config cfg = {.ncpus = 1};
    assert_int_equal(acpi_build_dsdt(&cfg, &b, &err), 0);
    assert_int_equal(count(b.data, b.len, "VGEN", 4), 0);
    assert_int_equal(count(b.data, b.len, "VM_Gen_Counter", 14), 0);
    const uint8_t ged_9[] = {0x89, 0x06, 0x00, 0x03, 0x01, 0x09, 0x00, 0x00, 0x00};
    const uint8_t ged_10[] = {0x89, 0x06, 0x00, 0x03, 0x01, 0x0a, 0x00, 0x00, 0x00};
    assert_int_equal(count(b.data, b.len, ged_9, sizeof(ged_9)), 1);
    assert_int_equal(count(b.data, b.len, ged_10, sizeof(ged_10)), 0);
    const uint8_t if_9[] = {0xa0, 0x12, 0x93, 0x68, 0x0a, 0x09, 0x86, 0x5c, 0x2e, '_',
                            'S',  'B',  '_',  'P',  'W',  'R',  'B',  0x0a, 0x80};
    assert_int_equal(count(b.data, b.len, if_9, sizeof(if_9)), 1);
    aml_buf_free(&b);
}

/* The VM generation ID's page ------------------------------------------------------------ */

static bool all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return false;
    return true;
}

static void test_vmgenid_page(void **state)
{
    struct guest_mem mem;
    struct error err = {{0}};
    assert_int_equal(guest_mem_init(&mem, 2 * MiB, NULL), 0);
    const uint8_t *page = guest_mem_ptr(&mem, PLATFORM_VMGENID_ADDR - 16, 48);
    assert_non_null(page);
    uint8_t first[ACPI_VMGENID_SIZE], second[ACPI_VMGENID_SIZE];
    assert_int_equal(acpi_vmgenid_renew(&mem, first, &err), 0);
    /* Exactly the 16 bytes at the address ADDR gives, and nothing around them. */
    assert_memory_equal(page + 16, first, ACPI_VMGENID_SIZE);
    assert_true(all_zero(page, 16));
    assert_true(all_zero(page + 32, 16));
    assert_false(all_zero(first, sizeof(first)));
    /* A restore's new ID replaces it: 128 random bits, never the same twice in practice. */
    assert_int_equal(acpi_vmgenid_renew(&mem, second, &err), 0);
    assert_memory_not_equal(first, second, ACPI_VMGENID_SIZE);
    assert_memory_equal(page + 16, second, ACPI_VMGENID_SIZE);
    guest_mem_destroy(&mem);

    /* The tables and the ID's page lie apart: the largest tables end below it. */
    assert_true(PLATFORM_ACPI_END <= PLATFORM_VMGENID_ADDR);

    const uint8_t id[ACPI_VMGENID_SIZE] = {0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
                                           0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x10};
    char text[ACPI_VMGENID_TEXT_SIZE];
    acpi_vmgenid_format(id, text);
    assert_string_equal(text, "000123456789abcdeffedcba98765410");

    assert_int_equal(guest_mem_init(&mem, 512 * 1024, NULL), 0);
    assert_int_equal(acpi_vmgenid_write(&mem, id, &err), -EFAULT);
    assert_string_equal(err.msg, "VM generation ID: guest RAM does not cover 0xef000");
    guest_mem_destroy(&mem);
}

static void test_largest_config_fits(void **state)
{
    struct vm_tables t;
    build_vm(&t, ACPI_MAX_CPUS, PLATFORM_VIRTIO_MMIO_MAX);
    struct found f = walk(&t);
    assert_int_equal(table_len(f.madt), 44 + 8 * ACPI_MAX_CPUS + 12 + 10 + 6);
    assert_true(t.layout.end <= PLATFORM_ACPI_END);
    print_message("254 vCPUs + %d virtio: tables 0x%llx-0x%llx (%llu of %llu bytes)\n",
                  PLATFORM_VIRTIO_MMIO_MAX, (unsigned long long)t.layout.rsdp,
                  (unsigned long long)t.layout.end - 1,
                  (unsigned long long)(t.layout.end - t.layout.rsdp),
                  (unsigned long long)(PLATFORM_ACPI_END - PLATFORM_ACPI_START));
    guest_mem_destroy(&t.mem);
}

/* Errors ------------------------------------------------------------------------------------- */

static void expect_config_error(const struct acpi_config *cfg, const char *msg)
{
    struct guest_mem mem;
    struct error err = {{0}};
    uint64_t rsdp = 0;
    assert_int_equal(guest_mem_init(&mem, 2 * MiB, NULL), 0);
    assert_int_equal(acpi_build(&mem, cfg, &rsdp, &err), -EINVAL);
    assert_string_equal(err.msg, msg);
    assert_int_equal(rsdp, 0);
    /* Nothing was written. */
    const uint8_t *region = guest_mem_ptr(&mem, PLATFORM_ACPI_START, 64);
    for (int i = 0; i < 64; i++)
        assert_int_equal(region[i], 0);
    guest_mem_destroy(&mem);
}

static void test_config_errors(void **state)
{
    struct acpi_virtio_device v[PLATFORM_VIRTIO_MMIO_MAX + 1];
    for (unsigned i = 0; i <= PLATFORM_VIRTIO_MMIO_MAX; i++)
        v[i] = virtio_slot(i % PLATFORM_VIRTIO_MMIO_MAX);
    struct acpi_config cfg = {.ncpus = 0};
    expect_config_error(&cfg, "ACPI: 0 vCPUs; the MADT describes 1 to 254");
    cfg.ncpus = 255;
    expect_config_error(&cfg, "ACPI: 255 vCPUs; the MADT describes 1 to 254");
    cfg.ncpus = 1;
    cfg.nvirtio = 1;
    expect_config_error(&cfg, "ACPI: 1 virtio devices but no device list");
    cfg.virtio = v;
    cfg.nvirtio = PLATFORM_VIRTIO_MMIO_MAX + 1;
    expect_config_error(&cfg, "ACPI: 9 virtio devices; the platform has 8 slots");

    cfg.nvirtio = 2;
    v[1].base = 0xfffff000;
    v[1].size = 0x2000;
    expect_config_error(
        &cfg, "ACPI: virtio device 1: MMIO window 0xfffff000+0x2000 is empty or not below 4 GiB");
    v[1] = virtio_slot(1);
    v[1].size = 0;
    expect_config_error(&cfg,
                        "ACPI: virtio device 1: MMIO window 0xd0001000+0x0 is empty or not below "
                        "4 GiB");
    v[1] = virtio_slot(1);
    v[1].gsi = 24;
    expect_config_error(&cfg, "ACPI: virtio device 1: GSI 24 is not an IOAPIC pin (0-23)");
    v[1].gsi = PLATFORM_COM1_IRQ;
    expect_config_error(&cfg, "ACPI: virtio device 1: GSI 4 is already used by COM1");
    v[1].gsi = PLATFORM_GED_GSI;
    expect_config_error(&cfg,
                        "ACPI: virtio device 1: GSI 9 is already used by the Generic Event Device");
    v[1].gsi = PLATFORM_VMGENID_GSI;
    expect_config_error(
        &cfg, "ACPI: virtio device 1: GSI 10 is already used by the Generic Event Device");
    v[1].gsi = v[0].gsi;
    expect_config_error(&cfg, "ACPI: virtio devices 0 and 1 both use GSI 16");
    v[1] = virtio_slot(1);
    v[1].base = v[0].base + 0x800;
    expect_config_error(&cfg, "ACPI: virtio devices 0 and 1 overlap in MMIO");
}

static void test_ram_too_small(void **state)
{
    struct guest_mem mem;
    struct error err = {{0}};
    uint64_t rsdp = 0;
    struct acpi_config cfg = {.ncpus = 1};
    assert_int_equal(guest_mem_init(&mem, 512 * 1024, NULL), 0);
    assert_int_equal(acpi_build(&mem, &cfg, &rsdp, &err), -EFAULT);
    assert_non_null(strstr(err.msg, "ACPI: guest RAM does not cover the tables at 0xe0000-0x"));
    guest_mem_destroy(&mem);
}

static void test_heap_builders(void **state)
{
    struct aml_buf b;
    struct error err = {{0}};
    assert_int_equal(acpi_build_fadt(0x100000000ULL, &b, &err), -EINVAL);
    assert_string_equal(err.msg, "ACPI: DSDT address 0x100000000 is not a 32-bit address");
    aml_buf_free(&b);

    assert_int_equal(acpi_build_rsdp(0x1234, &b, &err), 0);
    assert_int_equal(b.len, ACPI_RSDP_LEN);
    assert_int_equal(sum(b.data, 20), 0);
    assert_int_equal(sum(b.data, 36), 0);
    aml_buf_free(&b);

    const uint64_t entries[] = {0x1000, 0x2000, 0x3000};
    assert_int_equal(acpi_build_xsdt(entries, 3, &b, &err), 0);
    assert_int_equal(b.len, 36 + 24);
    assert_int_equal(le(b.data + 4, 4), 60);
    assert_int_equal(sum(b.data, b.len), 0);
    assert_int_equal(le(b.data + 52, 8), 0x3000);
    aml_buf_free(&b);

    struct acpi_config bad = {.ncpus = 0};
    assert_int_equal(acpi_build_madt(&bad, &b, &err), -EINVAL);
    aml_buf_free(&b);
    assert_int_equal(acpi_build_dsdt(NULL, &b, &err), -EINVAL);
    assert_string_equal(err.msg, "ACPI: no configuration");
    aml_buf_free(&b);
}

/* iasl ----------------------------------------------------------------------------------------- */

/* iasl's path, or NULL: $KILN_IASL if set (empty or not executable: none, to try the skip
 * path), else /usr/bin/iasl, else the first in $PATH. */
static const char *find_iasl(char *buf, size_t size)
{
    const char *forced = getenv("KILN_IASL");
    if (forced)
        return *forced && access(forced, X_OK) == 0 ? forced : NULL;
    if (access("/usr/bin/iasl", X_OK) == 0)
        return "/usr/bin/iasl";
    const char *path = getenv("PATH");
    while (path && *path) {
        size_t n = strcspn(path, ":");
        snprintf(buf, size, "%.*s/iasl", (int)n, path);
        if (n > 0 && access(buf, X_OK) == 0)
            return buf;
        path += n + (path[n] == ':');
    }
    return NULL;
}

struct iasl_run {
    char iasl[4096];
    char dir[4096];
    bool keep; /* KILN_ACPI_DUMP_DIR was given: leave the files for a person to read */
};

static char *read_file(const char *dir, const char *name, size_t *len_out)
{
    char path[8192];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *data = malloc(cap + 1);
    assert_non_null(data);
    size_t n;
    while ((n = fread(data + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            data = realloc(data, cap + 1);
            assert_non_null(data);
        }
    }
    fclose(f);
    data[len] = '\0';
    if (len_out)
        *len_out = len;
    return data;
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[8192];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Runs iasl with args in the run's directory, its output in <log>; returns the exit status. */
static int run_iasl(const struct iasl_run *run, const char *args, const char *log)
{
    char cmd[16384];
    snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' -vs %s > '%s' 2>&1", run->dir, run->iasl, args,
             log);
    int status = system(cmd);
    assert_true(status != -1 && WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void assert_contains(const char *text, const char *what, const char *file)
{
    if (!strstr(text, what))
        fail_msg("%s does not contain \"%s\"", file, what);
}

static void assert_lacks(const char *text, const char *what, const char *file)
{
    const char *at = strstr(text, what);
    if (at)
        fail_msg("%s contains \"%s\": %.200s", file, what, at);
}

/* Disassembles name.dat to name.dsl, checks it is clean, and returns the .dsl text. */
static char *disassemble(const struct iasl_run *run, const char *name)
{
    char args[300], log[256], dsl[256], dat[256];
    snprintf(dat, sizeof(dat), "%s.dat", name);
    snprintf(args, sizeof(args), "-d %s", dat);
    snprintf(log, sizeof(log), "%s.log", name);
    snprintf(dsl, sizeof(dsl), "%s.dsl", name);
    int status = run_iasl(run, args, log);
    char *out = read_file(run->dir, log, NULL);
    assert_non_null(out);
    if (status != 0)
        fail_msg("iasl -d %s exited %d:\n%s", dat, status, out);
    assert_lacks(out, "Incorrect checksum", log);
    assert_lacks(out, "Warning", log);
    assert_lacks(out, "Error", log);
    assert_lacks(out, "error", log);
    free(out);
    char *text = read_file(run->dir, dsl, NULL);
    if (!text)
        fail_msg("iasl -d %s wrote no %s", dat, dsl);
    assert_lacks(text, "Incorrect checksum", dsl);
    assert_lacks(text, "Invalid", dsl);
    assert_lacks(text, "Unknown", dsl);
    return text;
}

static int iasl_setup(void **state)
{
    struct iasl_run *run = calloc(1, sizeof(*run));
    assert_non_null(run);
    const char *iasl = find_iasl(run->iasl, sizeof(run->iasl));
    if (iasl) {
        snprintf(run->iasl, sizeof(run->iasl), "%s", iasl);
        const char *dump = getenv("KILN_ACPI_DUMP_DIR");
        if (dump && *dump) {
            snprintf(run->dir, sizeof(run->dir), "%s", dump);
            mkdir(run->dir, 0755);
            run->keep = true;
        } else {
            const char *tmp = getenv("TMPDIR");
            snprintf(run->dir, sizeof(run->dir), "%s/kiln-acpi-XXXXXX", tmp && *tmp ? tmp : "/tmp");
            assert_non_null(mkdtemp(run->dir));
        }
        assert_null(strchr(run->dir, '\'')); /* it is single-quoted in shell commands */
    } else {
        run->iasl[0] = '\0';
    }
    *state = run;
    return 0;
}

static int iasl_teardown(void **state)
{
    struct iasl_run *run = *state;
    if (run->iasl[0] && run->dir[0]) {
        if (run->keep) {
            print_message("ACPI tables and their disassembly kept in %s\n", run->dir);
        } else {
            char cmd[8192];
            snprintf(cmd, sizeof(cmd), "rm -rf '%s'", run->dir);
            if (system(cmd) != 0)
                print_message("could not remove %s\n", run->dir);
        }
    }
    free(run);
    return 0;
}

static bool have_iasl(const struct iasl_run *run)
{
    if (run->iasl[0])
        return true;
    print_message("NOTE: iasl not found (apt-get install acpica-tools); skipping the ACPI "
                  "disassembly checks\n");
    return false;
}

/* Writes the tables exactly as the guest finds them in RAM: 2 vCPUs, 2 virtio devices. */
static void dump_guest_tables(const struct iasl_run *run, struct vm_tables *t)
{
    build_vm(t, 2, 2);
    struct found f = walk(t);
    write_file(run->dir, "rsdp.dat", f.rsdp, ACPI_RSDP_LEN);
    write_file(run->dir, "xsdt.dat", f.xsdt, table_len(f.xsdt));
    write_file(run->dir, "facp.dat", f.fadt, table_len(f.fadt));
    write_file(run->dir, "apic.dat", f.madt, table_len(f.madt));
    write_file(run->dir, "dsdt.dat", f.dsdt, table_len(f.dsdt));
}

static void test_iasl_dsdt(void **state)
{
    struct iasl_run *run = *state;
    if (!have_iasl(run))
        skip();
    struct vm_tables t;
    dump_guest_tables(run, &t);
    char *dsl = disassemble(run, "dsdt");
    const char *expected[] = {
        "DefinitionBlock (\"\", \"DSDT\", 2, \"KILN  \", \"KILNVM  \", 0x00000001)",
        "Name (_S5, Package (0x02)",
        "0x05, \n        Zero",
        "Scope (\\_SB)",
        "Device (COM1)",
        "Name (_HID, EisaId (\"PNP0501\")",
        "IO (Decode16,\n                    0x03F8,",
        "IRQNoFlags ()\n                    {4}",
        "Device (RTC)",
        "Name (_HID, EisaId (\"PNP0B00\")",
        "IRQNoFlags ()\n                    {8}",
        "Device (PWRB)",
        "Name (_HID, EisaId (\"PNP0C0C\")",
        "Device (GED0)",
        "Name (_HID, \"ACPI0013\"",
        ("Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )\n                {\n"
         "                    0x00000009,"),
        "Device (VGEN)",
        "Name (_HID, \"KILN0001\")",
        "Name (_CID, \"VM_Gen_Counter\")",
        "Name (_STA, 0x0F)",
        "Method (ADDR, 0, NotSerialized)",
        "Return (Package (0x02)\n                {\n                    0x000EF000, \n"
        "                    Zero\n                })",
        ("Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )\n                {\n"
         "                    0x0000000A,"),
        "Method (_EVT, 1, NotSerialized)",
        "If ((Arg0 == 0x09))\n                {\n                    Notify (\\_SB.PWRB, 0x80)",
        "If ((Arg0 == 0x0A))\n                {\n                    Notify (\\_SB.VGEN, 0x80)",
        "Device (VR00)",
        "Device (VR01)",
        "Name (_HID, \"LNRO0005\")",
        "Memory32Fixed (ReadWrite,\n                    0xD0001000,",
        "0x00000011,",
    };
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
        assert_contains(dsl, expected[i], "dsdt.dsl");
    free(dsl);
    guest_mem_destroy(&t.mem);
}

/*
 * Compiling the disassembly back with optimisations off (-oa) must give kiln's bytes, except
 * where iasl fills in its own values: the header checksum and compiler ID/revision, and End
 * Tag checksums (iasl writes 0, "valid"; kiln writes the real one).
 */
static void test_iasl_dsdt_round_trip(void **state)
{
    struct iasl_run *run = *state;
    if (!have_iasl(run))
        skip();
    struct vm_tables t;
    dump_guest_tables(run, &t);
    free(disassemble(run, "dsdt"));
    int status = run_iasl(run, "-oa -p recompiled dsdt.dsl", "recompile.log");
    char *log = read_file(run->dir, "recompile.log", NULL);
    assert_non_null(log);
    if (status != 0)
        fail_msg("iasl could not compile its own disassembly (%d):\n%s", status, log);
    assert_contains(log, "0 Errors, 0 Warnings, 0 Remarks", "recompile.log");
    free(log);

    size_t len = 0;
    char *aml = read_file(run->dir, "recompiled.aml", &len);
    assert_non_null(aml);
    const uint8_t *ours = walk(&t).dsdt;
    const uint8_t *theirs = (const uint8_t *)aml;
    assert_int_equal(len, table_len(ours));
    size_t end_tags = 0;
    for (size_t i = 0; i < len; i++) {
        if (ours[i] == theirs[i])
            continue;
        bool header = i == 9 || (i >= 28 && i < 36);
        bool end_tag_checksum =
            i > 0 && ours[i - 1] == 0x79 && theirs[i - 1] == 0x79 && theirs[i] == 0;
        if (!header && !end_tag_checksum)
            fail_msg("recompiled DSDT differs at offset 0x%zx: kiln 0x%02x, iasl 0x%02x", i,
                     ours[i], theirs[i]);
        end_tags += end_tag_checksum;
    }
    assert_true(end_tags <= 5); /* COM1, RTC, GED, 2 virtio */
    free(aml);
    guest_mem_destroy(&t.mem);
}

static void test_iasl_fadt(void **state)
{
    struct iasl_run *run = *state;
    if (!have_iasl(run))
        skip();
    struct vm_tables t;
    dump_guest_tables(run, &t);
    char *dsl = disassemble(run, "facp");
    const char *expected[] = {
        "Signature : \"FACP\"    [Fixed ACPI Description Table (FADT)]",
        "Revision : 06",
        "PM Profile : 00 [Unspecified]",
        "SCI Interrupt : 0000",
        "RTC Century Index : 32",
        "8042 Present on ports 60/64 (V2) : 0",
        "VGA Not Present (V4) : 1",
        "MSI Not Supported (V4) : 1",
        "CMOS RTC Not Present (V5) : 0",
        "Control Method Power Button (V1) : 1",
        "Control Method Sleep Button (V1) : 1",
        "Reset Register Supported (V2) : 1",
        "HW Reduced ACPI : 1",
        "Value to cause reset : 01",
        "FADT Minor Revision : 05",
        "Address : 0000000000000602", /* reset register */
        "Sleep Control Register : [Generic Address Structure]",
        "Address : 0000000000000600",
        "Sleep Status Register : [Generic Address Structure]",
        "Address : 0000000000000601",
        "Hypervisor ID : 000000004E4C494B", /* "KILN" as a little-endian 64-bit value */
    };
    /* iasl versions word the hardware-reduced flag differently ("HW Reduced ACPI" or
     * "Hardware Reduced (V5)"); accept either. */
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        if (strcmp(expected[i], "HW Reduced ACPI : 1") == 0 &&
            strstr(dsl, "Hardware Reduced (V5) : 1"))
            continue;
        assert_contains(dsl, expected[i], "facp.dsl");
    }
    free(dsl);
    guest_mem_destroy(&t.mem);
}

static void test_iasl_madt_and_xsdt(void **state)
{
    struct iasl_run *run = *state;
    if (!have_iasl(run))
        skip();
    struct vm_tables t;
    dump_guest_tables(run, &t);
    char *dsl = disassemble(run, "apic");
    const char *expected[] = {
        "Local Apic Address : FEE00000",
        "PC-AT Compatibility : 1",
        "Subtable Type : 00 [Processor Local APIC]",
        "Processor ID : 01",
        "Local Apic ID : 01",
        "Processor Enabled : 1",
        "Subtable Type : 01 [I/O APIC]",
        "Address : FEC00000",
        "Subtable Type : 02 [Interrupt Source Override]",
        "Interrupt : 00000002",
        "Subtable Type : 04 [Local APIC NMI]",
        "Processor ID : FF",
        "Interrupt Input LINT : 01",
    };
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
        assert_contains(dsl, expected[i], "apic.dsl");
    assert_lacks(dsl, "Local Apic ID : 02", "apic.dsl"); /* exactly 2 vCPUs */
    free(dsl);

    dsl = disassemble(run, "xsdt");
    char line[128];
    snprintf(line, sizeof(line), "ACPI Table Address   0 : %016llX",
             (unsigned long long)t.layout.fadt);
    assert_contains(dsl, line, "xsdt.dsl");
    snprintf(line, sizeof(line), "ACPI Table Address   1 : %016llX",
             (unsigned long long)t.layout.madt);
    assert_contains(dsl, line, "xsdt.dsl");
    free(dsl);
    guest_mem_destroy(&t.mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_and_rsdp),
        cmocka_unit_test(test_every_table_checksums_and_links),
        cmocka_unit_test(test_fadt_fields),
        cmocka_unit_test(test_madt_1_2_8_cpus),
        cmocka_unit_test(test_dsdt_contents),
        cmocka_unit_test(test_largest_config_fits),
        cmocka_unit_test(test_dsdt_without_vmgenid),
        cmocka_unit_test(test_vmgenid_page),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_ram_too_small),
        cmocka_unit_test(test_heap_builders),
    };
    const struct CMUnitTest iasl_tests[] = {
        cmocka_unit_test(test_iasl_dsdt),
        cmocka_unit_test(test_iasl_dsdt_round_trip),
        cmocka_unit_test(test_iasl_fadt),
        cmocka_unit_test(test_iasl_madt_and_xsdt),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("iasl", iasl_tests, iasl_setup, iasl_teardown);
    return failed;
}
