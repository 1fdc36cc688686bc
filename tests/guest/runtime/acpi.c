/* Guest kit ACPI reader: RSDP → XSDT → table lookup with checksums, MADT decoding and GAS
 * register writes, checked against bounds a hostile or buggy VMM could get wrong. */
#include "acpi.h"
#include "guest.h"

/* Where a legacy OS looks for the RSDP when nobody tells it (ACPI 6.5 §5.2.5.1). */
#define RSDP_SCAN_START 0xe0000UL
#define RSDP_SCAN_END   0x100000UL
#define RSDP_V1_LEN     20
#define RSDP_V2_LEN     36

#define TABLE_HEADER_LEN 36
#define TABLE_MAX_LEN    0x10000      /* far above any table the kit reads; bounds a bad length */
#define ADDR_LIMIT       (1ULL << 32) /* the kit maps only the low 4 GiB */

#define MADT_ENTRIES_OFFSET 44 /* header, Local Interrupt Controller Address, Flags */
#define MADT_LOCAL_APIC     0
#define MADT_IO_APIC        1
#define MADT_LAPIC_ENABLED  0x1

struct rsdp {
    char signature[8];
    uint8_t checksum;
    char oem_id[6];
    uint8_t revision;
    uint32_t rsdt_address;
    /* ACPI 2.0+ (revision >= 2) */
    uint32_t length;
    uint64_t xsdt_address;
    uint8_t ext_checksum;
    uint8_t reserved[3];
} __attribute__((packed));

static uint64_t rsdp_cache;

static uint8_t checksum(const void *p, uint32_t len)
{
    const uint8_t *b = p;
    uint8_t sum = 0;
    while (len--)
        sum = (uint8_t)(sum + *b++);
    return sum;
}

static int rsdp_valid(const struct rsdp *r)
{
    if (memcmp(r->signature, "RSD PTR ", 8) != 0 || checksum(r, RSDP_V1_LEN) != 0)
        return 0;
    return r->revision < 2 || checksum(r, RSDP_V2_LEN) == 0;
}

/* A 64-bit compare per 16-byte step: the scan is 8192 steps of emulated code, so it is kept
 * to a handful of instructions each. */
static uint64_t scan_for_rsdp(void)
{
    uint64_t want;
    memcpy(&want, "RSD PTR ", 8);
    for (uintptr_t a = RSDP_SCAN_START; a < RSDP_SCAN_END; a += 16) {
        if (*(const volatile uint64_t *)a == want && rsdp_valid((const struct rsdp *)a))
            return a;
    }
    return 0;
}

uint64_t acpi_rsdp(void)
{
    if (rsdp_cache)
        return rsdp_cache;
    uint64_t addr = guest_start_info()->rsdp_paddr;
    if (addr == 0) {
        addr = scan_for_rsdp();
        if (addr == 0) {
            puts("acpi: no RSDP (start info rsdp_paddr is 0 and none in 0xe0000-0xfffff)");
            return 0;
        }
    } else if (addr + RSDP_V2_LEN > ADDR_LIMIT) {
        printf("acpi: RSDP at 0x%lx is above 4 GiB\n", addr);
        return 0;
    } else if (!rsdp_valid((const struct rsdp *)(uintptr_t)addr)) {
        printf("acpi: start info rsdp_paddr 0x%lx holds no valid RSDP (signature/checksum)\n",
               addr);
        return 0;
    }
    rsdp_cache = addr;
    return addr;
}

/* A table's header is readable and its length and checksum are plausible. */
static const struct acpi_header *checked_table(uint64_t addr, const char *what)
{
    if (addr == 0 || addr + TABLE_HEADER_LEN > ADDR_LIMIT) {
        printf("acpi: %s at 0x%lx is not below 4 GiB\n", what, addr);
        return NULL;
    }
    const struct acpi_header *t = (const struct acpi_header *)(uintptr_t)addr;
    if (t->length < TABLE_HEADER_LEN || t->length > TABLE_MAX_LEN ||
        addr + t->length > ADDR_LIMIT) {
        printf("acpi: %s at 0x%lx has a bad length %u\n", what, addr, t->length);
        return NULL;
    }
    if (checksum(t, t->length) != 0) {
        printf("acpi: %s at 0x%lx fails its checksum\n", what, addr);
        return NULL;
    }
    return t;
}

const struct acpi_header *acpi_find_table(const char *signature)
{
    uint64_t rsdp_addr = acpi_rsdp();
    if (rsdp_addr == 0)
        return NULL;
    const struct rsdp *r = (const struct rsdp *)(uintptr_t)rsdp_addr;
    /* The XSDT when the RSDP has one (ACPI 2.0+), else the RSDT of 32-bit pointers. */
    int wide = r->revision >= 2 && r->xsdt_address != 0;
    const struct acpi_header *root =
        checked_table(wide ? r->xsdt_address : r->rsdt_address, wide ? "XSDT" : "RSDT");
    if (!root)
        return NULL;
    if (memcmp(root->signature, wide ? "XSDT" : "RSDT", 4) != 0) {
        printf("acpi: the RSDP's %s pointer leads to a table signed '%c%c%c%c'\n",
               wide ? "XSDT" : "RSDT", root->signature[0], root->signature[1], root->signature[2],
               root->signature[3]);
        return NULL;
    }
    unsigned entry_size = wide ? 8 : 4;
    unsigned n = (root->length - TABLE_HEADER_LEN) / entry_size;
    const uint8_t *entries = (const uint8_t *)root + TABLE_HEADER_LEN;
    for (unsigned i = 0; i < n; i++) {
        uint64_t addr = 0;
        memcpy(&addr, entries + i * entry_size, entry_size); /* little-endian, unaligned */
        if (addr == 0 || addr + TABLE_HEADER_LEN > ADDR_LIMIT)
            continue;
        const struct acpi_header *t = (const struct acpi_header *)(uintptr_t)addr;
        if (memcmp(t->signature, signature, 4) == 0)
            return checked_table(addr, signature);
    }
    printf("acpi: no %s table in the %s\n", signature, wide ? "XSDT" : "RSDT");
    return NULL;
}

const struct acpi_header *acpi_find_dsdt(void)
{
    const struct acpi_header *fadt = acpi_find_table("FACP");
    if (!fadt)
        return NULL;
    if (fadt->length < ACPI_FADT_X_DSDT + 8) {
        printf("acpi: the FADT (%u bytes) is too short to hold X_DSDT\n", fadt->length);
        return NULL;
    }
    uint64_t addr = 0;
    memcpy(&addr, (const uint8_t *)fadt + ACPI_FADT_X_DSDT, 8);
    if (addr == 0)
        memcpy(&addr, (const uint8_t *)fadt + ACPI_FADT_DSDT, 4);
    if (addr == 0 || addr + TABLE_HEADER_LEN > ADDR_LIMIT) {
        printf("acpi: the FADT gives no usable DSDT address (0x%lx)\n", addr);
        return NULL;
    }
    return checked_table(addr, "DSDT");
}

int acpi_read_madt(struct acpi_madt_info *info)
{
    /* Only the scalars are cleared: the arrays are filled up to ncpus, and clearing 500
     * bytes one at a time would cost more emulated instructions than the whole walk. */
    info->ncpus = 0;
    info->have_ioapic = 0;
    const struct acpi_header *madt = acpi_find_table("APIC");
    if (!madt)
        return -1;
    if (madt->length < MADT_ENTRIES_OFFSET) {
        printf("acpi: MADT is too short (%u bytes)\n", madt->length);
        return -1;
    }
    const uint8_t *base = (const uint8_t *)madt;
    memcpy(&info->lapic_addr, base + TABLE_HEADER_LEN, 4);
    memcpy(&info->flags, base + TABLE_HEADER_LEN + 4, 4);
    /* Each entry is type, length, body; a length under 2 or past the end stops the walk
     * rather than looping or reading beyond the table. */
    for (uint32_t off = MADT_ENTRIES_OFFSET; off + 2 <= madt->length;) {
        uint8_t type = base[off], len = base[off + 1];
        if (len < 2 || off + len > madt->length) {
            printf("acpi: MADT entry at offset %u has a bad length %u\n", off, len);
            return -1;
        }
        const uint8_t *e = base + off;
        if (type == MADT_LOCAL_APIC && len >= 8) {
            if (info->ncpus == ACPI_MAX_CPUS) {
                printf("acpi: MADT lists more than %d local APICs\n", ACPI_MAX_CPUS);
                return -1;
            }
            uint32_t flags;
            memcpy(&flags, e + 4, 4);
            info->apic_id[info->ncpus] = e[3];
            info->enabled[info->ncpus] = (flags & MADT_LAPIC_ENABLED) != 0;
            info->ncpus++;
        } else if (type == MADT_IO_APIC && len >= 12 && !info->have_ioapic) {
            info->have_ioapic = 1;
            info->ioapic_id = e[2];
            memcpy(&info->ioapic_addr, e + 4, 4);
            memcpy(&info->ioapic_gsi_base, e + 8, 4);
        }
        off += len;
    }
    return 0;
}

int acpi_table_gas(const struct acpi_header *table, unsigned offset, struct acpi_gas *gas)
{
    if (table->length < offset + sizeof(*gas))
        return -1;
    memcpy(gas, (const uint8_t *)table + offset, sizeof(*gas));
    return 0;
}

const char *acpi_space_name(uint8_t space_id)
{
    switch (space_id) {
    case ACPI_GAS_SYSTEM_MEMORY:
        return "SystemMemory";
    case ACPI_GAS_SYSTEM_IO:
        return "SystemIO";
    default:
        return "an unsupported address space";
    }
}

/* Access size: 1-4 = byte, word, dword, qword (§5.2.3.2); 0 = "legacy", use bit_width. */
static unsigned gas_width_bytes(const struct acpi_gas *gas)
{
    if (gas->access_size >= 1 && gas->access_size <= 4)
        return 1u << (gas->access_size - 1);
    return gas->bit_width / 8;
}

int acpi_gas_write(const struct acpi_gas *gas, uint32_t value)
{
    unsigned width = gas_width_bytes(gas);
    value <<= gas->bit_offset;
    if (gas->space_id == ACPI_GAS_SYSTEM_IO && gas->address <= 0xffff) {
        uint16_t port = (uint16_t)gas->address;
        if (width == 1)
            outb(port, (uint8_t)value);
        else if (width == 2)
            outw(port, (uint16_t)value);
        else if (width == 4)
            outl(port, value);
        else
            return -1;
        return 0;
    }
    if (gas->space_id == ACPI_GAS_SYSTEM_MEMORY && gas->address + width <= ADDR_LIMIT) {
        uintptr_t a = (uintptr_t)gas->address;
        if (width == 1)
            *(volatile uint8_t *)a = (uint8_t)value;
        else if (width == 2)
            *(volatile uint16_t *)a = (uint16_t)value;
        else if (width == 4)
            *(volatile uint32_t *)a = value;
        else
            return -1;
        return 0;
    }
    return -1;
}
