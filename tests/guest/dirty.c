/* dirty.elf: dirties guest memory at a set rate for live-migration tests and benchmarks, checks
 * that every page it overwrites still holds what it last wrote there (no page lost or stale),
 * and measures with kvmclock the longest time it was stopped (a migration's downtime).
 *
 * Write number n fills page n mod npages of the span with words derived from n, and first
 * checks that the page still holds all 512 words of write n - npages (the same page's previous
 * generation). Every `tick=` ms it prints "dirty: tick T written N sum HEX gap_us G maxgap_us M";
 * sum is folded from the pages it verified, so it depends only on N, and N is the pages the rate
 * allowed before tick T was due, so runs that print the same T print the same N and sum. */
#include "runtime/guest.h"
#include "runtime/pvclock.h"
#include "runtime/user.h"

#define SPAN_BASE      0x1000000ULL /* 16 MiB: above the kit's image and the VMM's boot data */
#define MIB            0x100000ULL
#define PAGE_SIZE      4096ULL
#define PAGE_WORDS     512
#define PAGES_PER_MIB  (MIB / PAGE_SIZE)
#define LOW_MAPPED     0x100000000ULL /* the kit's page tables map only the low 4 GiB */
#define NS_PER_SEC     1000000000ULL
#define NS_PER_MS      1000000ULL
#define NS_PER_US      1000ULL
#define MAX_RATE_MIB_S 1048576U /* 1 TiB/s: keeps the pacing arithmetic inside 64 bits */
#define SUM_SEED       0x9e3779b97f4a7c15ULL

/* Why one user_run() came back to ring 0. */
enum stop_reason {
    STOP_DUE, /* a tick or the end is due, or the pages before it are written */
    STOP_BAD, /* a page did not hold what was last written to it */
};

/* What the ring-0 part prints about a page that failed its check. */
struct bad_page {
    uint64_t page, generation, word, holds, expected;
};

/* Everything the CPL3 writer reads and updates; ring 0 reads it between runs to print. */
struct dirty_run {
    /* set once at start */
    const volatile struct pvclock_time_info *clock;
    uint64_t npages;
    uint64_t pages_per_second; /* 0: write nothing */
    uint64_t tick_ns;
    uint64_t end_ns; /* 0: run until killed */
    uint64_t start_ns;
    /* progress */
    uint64_t written; /* pages written so far: the next write number */
    uint64_t sum;
    uint64_t last_iteration_ns;
    uint64_t gap_ns;     /* longest gap between loop iterations since the last tick line */
    uint64_t max_gap_ns; /* ... since start */
    uint64_t ticks;      /* the last tick printed (or skipped: one line for many after a stop) */
    uint64_t next_tick_ns;
    uint64_t catch_up_to_ns; /* for catch_up(): write every page allowed before this time */
    /* outcome of the last run */
    enum stop_reason stop;
    struct bad_page bad;
};

/* The kvmclock record of the only vCPU; KVM writes it, so it stays put for the whole run. */
static struct pvclock_time_info clock_record;

/* splitmix64's finaliser: every input bit reaches every output bit. */
static uint64_t mix(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Word `word` of write number `write`: distinct for every write and word, so a page that
 * kept an older generation, or another page's data, never passes for the expected one. */
static uint64_t word_value(uint64_t write, uint64_t word)
{
    return mix(write * PAGE_WORDS + word + SUM_SEED);
}

static volatile uint64_t *page_address(uint64_t page)
{
    return (volatile uint64_t *)(uintptr_t)(SPAN_BASE + page * PAGE_SIZE);
}

/* Checks that the page of write n still holds write n - npages (all 512 words: the page is
 * about to be written anyway, so reading it first costs little) and folds it into the sum;
 * the first generation has nothing to check yet and folds only n. 0, or -1 with run->bad set. */
static int verify_previous(struct dirty_run *run, uint64_t n)
{
    uint64_t page = n % run->npages, generation = n / run->npages;
    uint64_t fold = n;
    if (generation > 0) {
        volatile uint64_t *words = page_address(page);
        uint64_t previous = n - run->npages;
        for (uint64_t w = 0; w < PAGE_WORDS; w++) {
            uint64_t holds = words[w], expected = word_value(previous, w);
            if (holds != expected) {
                run->bad = (struct bad_page){page, generation, w, holds, expected};
                return -1;
            }
            fold ^= holds;
        }
    }
    run->sum = mix(run->sum ^ fold);
    return 0;
}

static void write_page(uint64_t n, uint64_t npages)
{
    volatile uint64_t *words = page_address(n % npages);
    for (uint64_t w = 0; w < PAGE_WORDS; w++)
        words[w] = word_value(n, w);
}

/* When the rate allows page number `pages` (counting from 0) to be written: start + pages /
 * rate, split into whole seconds and the rest so that nothing overflows 64 bits. */
static uint64_t allowed_at_ns(const struct dirty_run *run, uint64_t pages)
{
    uint64_t pps = run->pages_per_second;
    return run->start_ns + pages / pps * NS_PER_SEC + pages % pps * NS_PER_SEC / pps;
}

/* One loop iteration's clock reading: the gap since the previous one is how long the loop
 * did not run (a pause, a migration's downtime, the host not scheduling the vCPU). */
static uint64_t iteration_now(struct dirty_run *run)
{
    uint64_t now = pvclock_read_ns(run->clock);
    uint64_t gap = now > run->last_iteration_ns ? now - run->last_iteration_ns : 0;
    if (gap > run->gap_ns)
        run->gap_ns = gap;
    if (gap > run->max_gap_ns)
        run->max_gap_ns = gap;
    run->last_iteration_ns = now;
    return now;
}

static int stop_due(const struct dirty_run *run, uint64_t now)
{
    return now >= run->next_tick_ns || (run->end_ns && now >= run->end_ns);
}

/* Checks and writes the next page; -1 (run->stop = STOP_BAD) if it failed its check. */
static int write_next_page(struct dirty_run *run)
{
    if (verify_previous(run, run->written) < 0) {
        run->stop = STOP_BAD;
        return -1;
    }
    write_page(run->written, run->npages);
    run->written++;
    return 0;
}

/* At CPL3 (user_run), where our hosts run guest code natively: writes pages at the rate until
 * a tick or the end is due, or a page fails its check. Cannot print; ring 0 does that. */
static void write_until_due(void *arg)
{
    struct dirty_run *run = arg;
    for (;;) {
        uint64_t now = iteration_now(run);
        if (stop_due(run, now)) {
            run->stop = STOP_DUE;
            return;
        }
        if (run->pages_per_second == 0 || now < allowed_at_ns(run, run->written)) {
            __asm__ volatile("pause");
            continue;
        }
        if (write_next_page(run) < 0)
            return;
    }
}

/* At CPL3: writes every page the rate allowed before run->catch_up_to_ns (already past) that a
 * stop or a slow host left unwritten, so a tick's or the end's N depends only on its time. */
static void catch_up(void *arg)
{
    struct dirty_run *run = arg;
    run->stop = STOP_DUE;
    while (run->pages_per_second && allowed_at_ns(run, run->written) < run->catch_up_to_ns) {
        iteration_now(run);
        if (write_next_page(run) < 0)
            return;
    }
}

struct dirty_keys {
    uint32_t rate_mib_s, span_mib, tick_ms, seconds;
};

/* Reads the command line's keys into *keys (defaults for absent ones); prints one line and
 * returns -1 for a bad one. */
static int read_keys(struct dirty_keys *keys)
{
    *keys = (struct dirty_keys){.rate_mib_s = 10, .span_mib = 64, .tick_ms = 100, .seconds = 0};
    if (cmdline_get("rate") &&
        (cmdline_get_u32("rate", &keys->rate_mib_s) < 0 || keys->rate_mib_s > MAX_RATE_MIB_S)) {
        printf("dirty: rate= must be a number of MiB/s from 0 to %u\n", MAX_RATE_MIB_S);
        return -1;
    }
    if (cmdline_get("span") &&
        (cmdline_get_u32("span", &keys->span_mib) < 0 || keys->span_mib == 0)) {
        puts("dirty: span= must be a number of MiB from 1");
        return -1;
    }
    uint64_t end = SPAN_BASE + (uint64_t)keys->span_mib * MIB;
    if (end > LOW_MAPPED || !guest_range_is_ram(SPAN_BASE, end)) {
        printf("dirty: span=%u MiB does not fit: RAM from 16 MiB to 16 MiB + %u MiB is not all "
               "in one RAM range of the memory map below 4 GiB\n",
               keys->span_mib, keys->span_mib);
        return -1;
    }
    if (cmdline_get("tick") &&
        (cmdline_get_u32("tick", &keys->tick_ms) < 0 || keys->tick_ms == 0)) {
        puts("dirty: tick= must be a number of milliseconds from 1");
        return -1;
    }
    if (cmdline_get("seconds") &&
        (cmdline_get_u32("seconds", &keys->seconds) < 0 || keys->seconds == 0)) {
        puts("dirty: seconds= must be a number of seconds from 1 (leave it out to run until "
             "stopped)");
        return -1;
    }
    return 0;
}

static void print_bad(const struct bad_page *bad)
{
    printf("dirty: BAD page %lu gen %lu word %lu holds %016lx expected %016lx\n",
           (unsigned long)bad->page, (unsigned long)bad->generation, (unsigned long)bad->word,
           (unsigned long)bad->holds, (unsigned long)bad->expected);
}

/* Catches up to time `due_ns` at CPL3; prints the BAD line and returns -1 if a page failed. */
static int catch_up_to(struct dirty_run *run, uint64_t due_ns)
{
    run->catch_up_to_ns = due_ns;
    user_run(catch_up, run);
    if (run->stop != STOP_BAD)
        return 0;
    print_bad(&run->bad);
    return -1;
}

static void print_tick(const struct dirty_run *run)
{
    printf("dirty: tick %lu written %lu sum %016lx gap_us %lu maxgap_us %lu\n",
           (unsigned long)run->ticks, (unsigned long)run->written, (unsigned long)run->sum,
           (unsigned long)(run->gap_ns / NS_PER_US), (unsigned long)(run->max_gap_ns / NS_PER_US));
}

int guest_main(void)
{
    struct dirty_keys keys;
    if (read_keys(&keys) < 0)
        return GUEST_EXIT_FAIL;
    const char *clock_error = pvclock_enable(&clock_record);
    if (clock_error) {
        printf("dirty: %s\n", clock_error);
        return GUEST_EXIT_FAIL;
    }
    printf("dirty: start rate %u span %u tick %u\n", keys.rate_mib_s, keys.span_mib, keys.tick_ms);
    struct dirty_run run = {
        .clock = &clock_record,
        .npages = (uint64_t)keys.span_mib * PAGES_PER_MIB,
        .pages_per_second = (uint64_t)keys.rate_mib_s * PAGES_PER_MIB,
        .tick_ns = (uint64_t)keys.tick_ms * NS_PER_MS,
        .sum = SUM_SEED,
    };
    run.start_ns = pvclock_read_ns(run.clock);
    run.last_iteration_ns = run.start_ns;
    run.next_tick_ns = run.start_ns + run.tick_ns;
    if (keys.seconds)
        run.end_ns = run.start_ns + (uint64_t)keys.seconds * NS_PER_SEC;
    for (;;) {
        user_run(write_until_due, &run);
        if (run.stop == STOP_BAD) {
            print_bad(&run.bad);
            return GUEST_EXIT_FAIL;
        }
        /* The end stops the clock for the lines: nothing is due after it. One line however
         * many ticks passed (after a long pause, say): T counts time, not lines. */
        uint64_t now = run.last_iteration_ns;
        int ended = run.end_ns && now >= run.end_ns;
        uint64_t tick = ((ended ? run.end_ns : now) - run.start_ns) / run.tick_ns;
        if (tick > run.ticks) {
            if (catch_up_to(&run, run.start_ns + tick * run.tick_ns) < 0)
                return GUEST_EXIT_FAIL;
            run.ticks = tick;
            print_tick(&run);
            run.gap_ns = 0;
        }
        if (ended) {
            if (catch_up_to(&run, run.end_ns) < 0)
                return GUEST_EXIT_FAIL;
            printf("dirty: done written %lu sum %016lx maxgap_us %lu\n", (unsigned long)run.written,
                   (unsigned long)run.sum, (unsigned long)(run.max_gap_ns / NS_PER_US));
            return GUEST_EXIT_PASS;
        }
        run.next_tick_ns = run.start_ns + (run.ticks + 1) * run.tick_ns;
    }
}
