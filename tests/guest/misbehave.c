/* A guest that does what a careless or hostile kernel might, chosen by mode= on its command
 * line, so tests can check kiln's reaction: resets, triple faults, unclaimed I/O, int3, and a
 * jump to the x86 reset vector (how Linux's "BIOS" reboot restarts). */
#include "runtime/guest.h"

#define RESET_VECTOR 0xffff0UL /* identity-mapped like all low memory */

/* Nothing is mapped here in kiln's MMIO hole today; reads must float high. */
#define UNCLAIMED_MMIO 0xd0000000UL
#define UNCLAIMED_PORT 0x2f8

static int mode_is(const char *value, const char *name)
{
    size_t len = cmdline_value_len(value);
    return len == strlen(name) && strncmp(value, name, len) == 0;
}

static int probe_unclaimed(void)
{
    uint8_t port = inb(UNCLAIMED_PORT);
    outb(UNCLAIMED_PORT, 0x55);
    volatile uint32_t *mmio = (volatile uint32_t *)UNCLAIMED_MMIO;
    uint32_t before = *mmio;
    *mmio = 0x12345678;
    uint32_t after = *mmio;
    printf("misbehave: port 0x%x reads 0x%x, MMIO 0x%lx reads 0x%x then 0x%x\n", UNCLAIMED_PORT,
           port, UNCLAIMED_MMIO, before, after);
    return port == 0xff && before == 0xffffffffU && after == 0xffffffffU ? GUEST_EXIT_PASS
                                                                         : GUEST_EXIT_FAIL;
}

static void triple_fault(void)
{
    /* With a zero-length IDT every exception escalates: #UD -> #DF -> shutdown. */
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } empty = {0, 0};
    __asm__ volatile("lidt %0; ud2" : : "m"(empty));
}

int guest_main(void)
{
    const char *mode = cmdline_get("mode");
    if (!mode) {
        puts("misbehave: give mode=unclaimed-io|i8042-reset|triple-fault|int3|reset-vector");
        return GUEST_EXIT_FAIL;
    }
    if (mode_is(mode, "unclaimed-io"))
        return probe_unclaimed();
    if (mode_is(mode, "i8042-reset")) {
        puts("misbehave: resetting through the i8042");
        outb(0x64, 0xfe);
    } else if (mode_is(mode, "triple-fault")) {
        puts("misbehave: triple fault");
        triple_fault();
    } else if (mode_is(mode, "reset-vector")) {
        puts("misbehave: jumping to the reset vector");
        ((void (*)(void))RESET_VECTOR)();
    } else if (mode_is(mode, "int3")) {
        puts("misbehave: int3");
        __asm__ volatile("int3");
    } else {
        puts("misbehave: unknown mode");
        return GUEST_EXIT_FAIL;
    }
    puts("misbehave: still running after the mode's action");
    return GUEST_EXIT_FAIL;
}
