/* exit-bench.elf: per-exit cost for bench/run: bench.n writes each to the UART scratch port, a
 * virtio-mmio register and QueueNotify (ioeventfd), phases timed by the host (start/'g'/done). */
#include "runtime/guest.h"
#include "runtime/user.h"
#include "runtime/virtio.h"

#define UART_SCRATCH     0x3ff
#define REG_QUEUE_SEL    0x030
#define REG_QUEUE_NOTIFY 0x050
#define VIRTIO_ID_RNG    4

static struct virtio_dev dev;
static struct virtq vq;

struct phase {
    const char *name;
    void (*loop)(void *);
    int user; /* run at CPL3 through user_run */
};

static uint32_t iterations;

/* The loops differ only in the one instruction: nop, out or a store to MMIO, so a loop's
 * time minus the nop loop's time at the same privilege level is the exits' cost. */
static void nop_loop(void *unused)
{
    uint32_t n = iterations;
    __asm__ volatile("1: nop\n\tdec %0\n\tjnz 1b" : "+c"(n) : : "memory");
}

static void pio_loop(void *unused)
{
    uint32_t n = iterations;
    __asm__ volatile("1: outb %%al, %%dx\n\tdec %0\n\tjnz 1b"
                     : "+c"(n)
                     : "a"(0), "d"(UART_SCRATCH)
                     : "memory");
}

static void mmio_loop(void *unused)
{
    uint32_t n = iterations;
    volatile uint32_t *reg = (volatile uint32_t *)(uintptr_t)(dev.base + REG_QUEUE_SEL);
    __asm__ volatile("1: movl %%eax, (%1)\n\tdec %0\n\tjnz 1b"
                     : "+c"(n)
                     : "r"(reg), "a"(0)
                     : "memory");
}

/* QueueNotify of the device's ready (and empty) queue 0: a doorbell both VMMs serve with an
 * ioeventfd, so KVM signals the VMM's loop and the vCPU goes on without a user-space exit. */
static void doorbell_loop(void *unused)
{
    uint32_t n = iterations;
    volatile uint32_t *reg = (volatile uint32_t *)(uintptr_t)(dev.base + REG_QUEUE_NOTIFY);
    __asm__ volatile("1: movl %%eax, (%1)\n\tdec %0\n\tjnz 1b"
                     : "+c"(n)
                     : "r"(reg), "a"(0)
                     : "memory");
}

int guest_main(void)
{
    iterations = 20000;
    cmdline_get_u32("bench.n", &iterations);
    if (iterations == 0 || virtio_find(VIRTIO_ID_RNG, 0, &dev) < 0 ||
        virtio_setup(&dev, 0, &vq) < 0) {
        puts("bench: FAIL: needs bench.n > 0 and a virtio-rng device on the command line");
        return GUEST_EXIT_FAIL;
    }
    virtio_driver_ok(&dev);
    /* Port I/O faults at CPL3 on our hosts even with IOPL 3, so PIO is measured at CPL0 only
     * (in KVM's emulator there: hence the nop0 baseline). */
    static const struct phase phases[] = {
        {"nop0", nop_loop, 0},       {"pio0", pio_loop, 0},   {"mmio0", mmio_loop, 0},
        {"nop3", nop_loop, 1},       {"mmio3", mmio_loop, 1}, {"bell0", doorbell_loop, 0},
        {"bell3", doorbell_loop, 1},
    };
    for (unsigned i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
        printf("bench: %s start\n", phases[i].name);
        while (serial_getc() != 'g')
            ;
        if (phases[i].user)
            user_run(phases[i].loop, NULL);
        else
            phases[i].loop(NULL);
        printf("bench: %s done\n", phases[i].name);
    }
    puts("bench: finished");
    return GUEST_EXIT_PASS;
}
