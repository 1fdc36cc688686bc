/* counter.elf: a long-running guest whose whole state is its RAM and registers, for pause/
 * resume and snapshot tests. Each step folds a 384 KiB table into a running checksum; every
 * `every=` steps (default 1000) it prints "counter: step N sum HEX", and after `steps=` steps
 * (default: never) it exits 0. The lines depend only on N, so a paused, restored or cloned
 * guest must print exactly the lines an undisturbed one prints. */
#include "runtime/guest.h"

#define TABLE_PAGES 96
#define PAGE_WORDS  512

/* 384 KiB that the checksum reads back: a restore that loses or mixes up a page changes it. */
static uint64_t table[TABLE_PAGES][PAGE_WORDS];

/* splitmix64's finaliser: every input bit reaches every output bit. */
static uint64_t mix(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
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
