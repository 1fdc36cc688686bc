/* counter.elf: a long-running guest whose whole state is its RAM and registers, for pause/
 * resume and snapshot tests. Each step folds a 384 KiB table into a running checksum; every
 * `every=` steps (default 1000) it prints "counter: step N sum HEX", and after `steps=` steps
 * (default: never) it exits 0. The lines depend only on N, so a paused, restored or cloned
 * guest must print exactly the lines an undisturbed one prints. `touch=MiB` first fills that
 * much RAM from 16 MiB up with nonzero data, so a snapshot has that much to save. */
#include "runtime/guest.h"
#include "runtime/user.h"

#define TABLE_PAGES 96
#define PAGE_WORDS  512

/* 384 KiB that the checksum reads back: a restore that loses or mixes up a page changes it. */
static uint64_t table[TABLE_PAGES][PAGE_WORDS];

/* Where touch= starts writing: above the kit's image (1-2 MiB) and the VMM's boot data. */
#define TOUCH_BASE 0x1000000ULL
#define MIB        0x100000ULL
#define LOW_MAPPED 0x100000000ULL /* the kit's page tables map only the low 4 GiB */

struct touch_range {
    uint64_t start;
    uint64_t end;
};

/* splitmix64's finaliser: every input bit reaches every output bit. */
static uint64_t mix(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Runs at CPL3: a loop over hundreds of MiB in KVM's ring-0 emulator would take minutes on
 * hosts that emulate it. Every word gets a nonzero value, so no page stays a zero page. */
static void fill_range(void *arg)
{
    const struct touch_range *range = arg;
    for (uint64_t addr = range->start; addr < range->end; addr += 8)
        *(volatile uint64_t *)(uintptr_t)addr = mix(addr) | 1;
}

int guest_main(void)
{
    uint32_t every = 1000, steps = 0;
    if (cmdline_get("every") && (cmdline_get_u32("every", &every) < 0 || every == 0)) {
        puts("counter: every= must be a number from 1");
        return GUEST_EXIT_FAIL;
    }
    if (cmdline_get("steps") && cmdline_get_u32("steps", &steps) < 0) {
        puts("counter: steps= must be a number");
        return GUEST_EXIT_FAIL;
    }
    uint32_t touch_mib = 0;
    if (cmdline_get("touch") && cmdline_get_u32("touch", &touch_mib) < 0) {
        puts("counter: touch= must be a number of MiB");
        return GUEST_EXIT_FAIL;
    }
    if (touch_mib) {
        struct touch_range range = {TOUCH_BASE, TOUCH_BASE + touch_mib * MIB};
        if (range.end > LOW_MAPPED || !guest_range_is_ram(range.start, range.end)) {
            printf("counter: touch=%u MiB does not fit: RAM from 16 MiB to 16 MiB + %u MiB is "
                   "not all in one RAM range of the memory map below 4 GiB\n",
                   touch_mib, touch_mib);
            return GUEST_EXIT_FAIL;
        }
        user_run(fill_range, &range);
        printf("counter: touched %u MiB from 0x%lx\n", touch_mib, (unsigned long)range.start);
    }
    printf("counter: start, a line every %u steps\n", every);
    uint64_t sum = 0x9e3779b97f4a7c15ULL;
    for (uint64_t n = 1;; n++) {
        unsigned page = (unsigned)(n % TABLE_PAGES);
        unsigned word = (unsigned)((n / TABLE_PAGES) % PAGE_WORDS);
        table[page][word] ^= sum;
        sum = mix(sum ^ table[(page * 7 + 3) % TABLE_PAGES][(word * 13 + 1) % PAGE_WORDS] ^ n);
        if (n % every == 0)
            printf("counter: step %lu sum %016lx\n", (unsigned long)n, (unsigned long)sum);
        if (steps && n == steps)
            return GUEST_EXIT_PASS;
    }
}
