/* CPL3 for the guest kit: a 64-bit TSS for the ring-0 stack, the user segments of entry.S's
 * GDT, an iretq into user mode, and the way back — fn returns into a `hlt`, which faults to
 * ring 0, where the saved ring-0 context is restored. */
#include "guest.h"
#include "user.h"

#define SEL_USER_DATA 0x18
#define SEL_USER_CODE 0x20
#define SEL_TSS       0x28
#define GP_VECTOR     13

struct tss64 {
    uint32_t reserved0;
    uint64_t rsp0, rsp1, rsp2;
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
} __attribute__((packed));

extern uint64_t guest_gdt[];
extern void (*runtime_user_fault)(uint64_t vector, uint64_t rip);
/* user_switch.S */
void user_enter(void (*fn)(void *), void *arg, uint64_t user_rsp, uint64_t *saved);
__attribute__((noreturn)) void user_resume(uint64_t *saved);
extern char user_return_hlt[];

static struct tss64 tss __attribute__((aligned(16)));
static uint8_t ring0_stack[8192] __attribute__((aligned(16)));
static uint8_t user_stack[16384] __attribute__((aligned(16)));
static uint64_t saved_context[8];
static int tss_loaded;

static void load_tss(void)
{
    uint64_t base = (uint64_t)(uintptr_t)&tss, limit = sizeof(tss) - 1;
    tss.rsp0 = (uint64_t)(uintptr_t)(ring0_stack + sizeof(ring0_stack));
    tss.iomap_base = sizeof(tss); /* no I/O permission bitmap */
    guest_gdt[SEL_TSS / 8] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
                             (0x89ULL << 40) /* present, 64-bit TSS */ |
                             ((base >> 24) & 0xff) << 56;
    guest_gdt[SEL_TSS / 8 + 1] = base >> 32;
    __asm__ volatile("ltr %w0" : : "r"(SEL_TSS));
    tss_loaded = 1;
}

static void on_user_fault(uint64_t vector, uint64_t rip)
{
    runtime_user_fault = 0;
    if (vector == GP_VECTOR && rip == (uint64_t)(uintptr_t)user_return_hlt)
        user_resume(saved_context);
    printf("guest-kit: CPU exception %lu at rip=%lx in user mode\n", vector, rip);
    guest_exit(GUEST_EXIT_FAULT);
}

void user_run(void (*fn)(void *), void *arg)
{
    if (!tss_loaded)
        load_tss();
    runtime_user_fault = on_user_fault;
    user_enter(fn, arg, (uint64_t)(uintptr_t)(user_stack + sizeof(user_stack)), saved_context);
}
