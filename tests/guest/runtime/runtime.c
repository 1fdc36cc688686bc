/* Guest kit runtime core: what runs between the long-mode switch and guest_main(), the test
 * exit protocol, and the report of a CPU exception. */
#include "guest.h"

#define DEFAULT_EXIT_PORT 0xf4
#define SEL_CODE64        0x08

struct idt_gate {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;
    uint8_t type_attr;
    uint16_t offset_mid;
    uint32_t offset_high;
    uint32_t reserved;
};

extern struct idt_gate guest_idt[256];

/* Initialised, not .bss: guest_exit() must work even before runtime_main() has run its
 * first line, e.g. from an exception in serial_init(). */
static uint16_t exit_port = DEFAULT_EXIT_PORT;
static const struct hvm_start_info *start_info;
static const char *cmdline = "";

const struct hvm_start_info *guest_start_info(void)
{
    return start_info;
}

/* One entry of the PVH start info's memory map (Xen's hvm_memmap_table_entry). */
struct pvh_memmap_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};

#define E820_RAM 1

int guest_range_is_ram(uint64_t start, uint64_t end)
{
    const struct pvh_memmap_entry *map =
        (const struct pvh_memmap_entry *)(uintptr_t)start_info->memmap_paddr;
    for (uint32_t i = 0; start_info->memmap_paddr && i < start_info->memmap_entries; i++)
        if (map[i].type == E820_RAM && map[i].addr <= start && end <= map[i].addr + map[i].size)
            return 1;
    return 0;
}

const char *cmdline_all(void)
{
    return cmdline;
}

void guest_exit(uint32_t status)
{
    outl(exit_port, status);
    for (;;)
        __asm__ volatile("cli; hlt");
}

void idt_set_gate(unsigned vector, void (*handler)(void))
{
    if (vector < 32 || vector > 255)
        return;
    uint64_t addr = (uint64_t)(uintptr_t)handler;
    struct idt_gate *gate = &guest_idt[vector];
    gate->offset_low = (uint16_t)addr;
    gate->selector = SEL_CODE64;
    gate->ist = 0;
    gate->type_attr = 0x8e;
    gate->offset_mid = (uint16_t)(addr >> 16);
    gate->offset_high = (uint32_t)(addr >> 32);
    gate->reserved = 0;
}

/* Set by user.c while a function runs at CPL3: a fault from there ends that run. */
void (*runtime_user_fault)(uint64_t vector, uint64_t rip);

/* Called from the exception stubs in entry.S; never returns. */
__attribute__((noreturn)) void runtime_exception(uint64_t vector, uint64_t error, uint64_t rip,
                                                 uint64_t cr2, uint64_t cs);

void runtime_exception(uint64_t vector, uint64_t error, uint64_t rip, uint64_t cr2, uint64_t cs)
{
    if ((cs & 3) && runtime_user_fault)
        runtime_user_fault(vector, rip); /* does not return */
    printf("guest-kit: CPU exception %lu at rip=%lx error=%lx cr2=%lx\n", vector, rip, error, cr2);
    guest_exit(GUEST_EXIT_FAULT);
}

static void parse_exit_port(void)
{
    uint32_t port;
    if (cmdline_get_u32("exit_port", &port) == 0 && port <= 0xffff)
        exit_port = (uint16_t)port;
}

/* Called from entry.S in long mode with EBX from the PVH entry (zero-extended). */
__attribute__((noreturn)) void runtime_main(uint64_t start_info_paddr);

void runtime_main(uint64_t start_info_paddr)
{
    serial_init();
    const struct hvm_start_info *info = (const struct hvm_start_info *)(uintptr_t)start_info_paddr;
    if (start_info_paddr == 0 || start_info_paddr >= (1ULL << 32) ||
        info->magic != HVM_START_MAGIC_VALUE) {
        printf("guest-kit: no PVH start info at %lx\n", start_info_paddr);
        guest_exit(GUEST_EXIT_BAD_BOOT);
    }
    start_info = info;
    if (info->cmdline_paddr != 0 && info->cmdline_paddr < (1ULL << 32))
        cmdline = (const char *)(uintptr_t)info->cmdline_paddr;
    parse_exit_port();
    guest_exit((uint32_t)guest_main());
}
