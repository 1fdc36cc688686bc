/* balloon.elf: a virtio-balloon driver, by balloon.mode= on the command line.
 *
 * obey (the default): fills `touch=` MiB of its page pool (RAM from 16 MiB up) with nonzero
 * data, then idles with hlt and follows the device's num_pages: it inflates pages from the
 * pool's start and deflates the last ones inflated, writes `actual`, and prints
 * "balloon: actual N pages" each time it reaches the target. Deflated pages are written and
 * read back ("re-touched N pages OK"). With the statistics queue it answers each request with
 * total/free/available memory. It runs until the host stops it: an idle VM that obeys.
 *
 * hostile: hands the device PFNs outside RAM (past its end, the MMIO hole), repeated PFNs, a
 * buffer with more PFNs than the VM has pages, a PFN list of odd length, deflates of pages
 * never inflated and free page reports outside RAM; then checks that every buffer came back,
 * the device did not ask for a reset, its own data is intact and a normal inflate and
 * deflate still work. Exits 0 ("balloon: hostile: PASS") or 1. */
#include "runtime/acpi.h"
#include "runtime/apic.h"
#include "runtime/guest.h"
#include "runtime/user.h"
#include "runtime/virtio.h"

#define F_STATS_VQ         (1ULL << 1)
#define F_DEFLATE_ON_OOM   (1ULL << 2)
#define F_REPORTING        (1ULL << 5)
#define CONFIG_NUM_PAGES   0
#define CONFIG_ACTUAL      4
#define STATUS_NEEDS_RESET 0x40

#define PAGE_SIZE       4096ULL
#define MIB             0x100000ULL
#define POOL_BASE       0x1000000ULL   /* 16 MiB: above the kit's image and the VMM's boot data */
#define LOW_MAPPED      0x100000000ULL /* the kit's page tables map only the low 4 GiB */
#define PFNS_PER_CHAIN  4096
#define BALLOON_VECTOR  0x41
#define SPURIOUS_VECTOR 0xff

#define TAG_MINFLT  3
#define TAG_MEMFREE 4
#define TAG_MEMTOT  5
#define TAG_AVAIL   6

struct interrupt_frame;

struct stat_entry {
    uint16_t tag;
    uint64_t value;
} __attribute__((packed));

/* One entry of the PVH memory map (Xen's hvm_memmap_table_entry). */
struct memmap_entry {
    uint64_t addr, size;
    uint32_t type, reserved;
};

static struct virtio_dev dev;
static struct virtq inflate_q, deflate_q, stats_q, report_q;
static uint32_t pfns[PFNS_PER_CHAIN];
static struct stat_entry stats[4];
static volatile unsigned interrupts;
static uint64_t ram_bytes, ram_end; /* all RAM; the end of the highest RAM entry */
static uint64_t pool_pages;         /* pages from POOL_BASE to the end of its RAM entry */
static uint32_t actual;

__attribute__((interrupt)) static void balloon_interrupt(struct interrupt_frame *frame)
{
    (void)frame;
    interrupts++;
    /* InterruptStatus is acknowledged where the rings are looked at; the edge is the news. */
    lapic_eoi();
}

__attribute__((interrupt)) static void spurious_interrupt(struct interrupt_frame *frame)
{
    (void)frame;
}

static void read_memory_map(void)
{
    const struct hvm_start_info *info = guest_start_info();
    const struct memmap_entry *map = (const void *)(uintptr_t)info->memmap_paddr;
    for (uint32_t i = 0; info->memmap_paddr && i < info->memmap_entries; i++) {
        if (map[i].type != 1)
            continue;
        ram_bytes += map[i].size;
        if (map[i].addr + map[i].size > ram_end)
            ram_end = map[i].addr + map[i].size;
        if (map[i].addr <= POOL_BASE && POOL_BASE < map[i].addr + map[i].size) {
            uint64_t end = map[i].addr + map[i].size;
            pool_pages = ((end < LOW_MAPPED ? end : LOW_MAPPED) - POOL_BASE) / PAGE_SIZE;
        }
    }
}

static uint64_t pool_page(uint64_t i)
{
    return POOL_BASE + i * PAGE_SIZE;
}

static void write_actual(uint32_t pages)
{
    mmio_write32(dev.base + 0x100 + CONFIG_ACTUAL, pages);
}

/* Hands one buffer of n PFNs to queue vq and waits for it; the used length, or -1. */
static int64_t send_buffer(struct virtq *vq, const void *buffer, uint32_t bytes)
{
    vq->desc[0] = (struct vq_desc){(uint64_t)(uintptr_t)buffer, bytes, 0, 0};
    return virtio_submit_and_wait(&dev, vq, 0);
}

struct fill {
    uint64_t first, count;
};

/* At CPL3 (fast on hosts that emulate ring 0): the PFNs of pool pages first..first+count. */
static void fill_pfns(void *arg)
{
    const struct fill *f = arg;
    for (uint64_t i = 0; i < f->count; i++)
        pfns[i] = (uint32_t)(pool_page(f->first + i) / PAGE_SIZE);
}

/* Moves pool pages [from, to) in or out of the balloon, PFNS_PER_CHAIN a buffer. */
static int move_pages(struct virtq *vq, uint64_t from, uint64_t to)
{
    while (from < to) {
        struct fill f = {from, to - from < PFNS_PER_CHAIN ? to - from : PFNS_PER_CHAIN};
        user_run(fill_pfns, &f);
        if (send_buffer(vq, pfns, (uint32_t)(f.count * 4)) < 0)
            return -1;
        from += f.count;
    }
    return 0;
}

struct span {
    uint64_t start, end, salt;
    uint64_t bad; /* out: words that did not read back */
};

static uint64_t pattern(uint64_t addr, uint64_t salt)
{
    return (addr * 0x9e3779b97f4a7c15ULL) ^ salt ^ 1;
}

static void write_span(void *arg)
{
    const struct span *s = arg;
    for (uint64_t addr = s->start; addr < s->end; addr += 8)
        *(volatile uint64_t *)(uintptr_t)addr = pattern(addr, s->salt);
}

static void check_span(void *arg)
{
    struct span *s = arg;
    for (uint64_t addr = s->start; addr < s->end; addr += 8)
        s->bad += *(volatile uint64_t *)(uintptr_t)addr != pattern(addr, s->salt);
}

/* Writes the pages and reads them back: 0 when every word held. */
static uint64_t touch_and_check(uint64_t start, uint64_t end, uint64_t salt)
{
    struct span s = {start, end, salt, 0};
    user_run(write_span, &s);
    user_run(check_span, &s);
    return s.bad;
}

static void fill_stats(void)
{
    static uint64_t answers;
    uint64_t free = (pool_pages - actual) * PAGE_SIZE;
    stats[0] = (struct stat_entry){TAG_MEMTOT, ram_bytes};
    stats[1] = (struct stat_entry){TAG_MEMFREE, free};
    stats[2] = (struct stat_entry){TAG_AVAIL, free};
    stats[3] = (struct stat_entry){TAG_MINFLT, ++answers};
}

static void offer_stats(void)
{
    fill_stats();
    stats_q.desc[0] = (struct vq_desc){(uint64_t)(uintptr_t)stats, sizeof(stats), 0, 0};
    virtio_submit(&dev, &stats_q, 0);
}

/* Queues in the order Linux numbers them: inflate, deflate, then statistics and reporting
 * if negotiated. */
static int set_up(uint64_t wanted)
{
    if (virtio_find(5, 0, &dev) < 0) {
        puts("balloon: FAIL: no virtio-balloon device (virtio_mmio.device= on the command line)");
        return -1;
    }
    if (virtio_negotiate(&dev, wanted) < 0 || virtio_setup_queue(&dev, 0, &inflate_q) < 0 ||
        virtio_setup_queue(&dev, 1, &deflate_q) < 0)
        return -1;
    unsigned next = 2;
    if ((dev.features & F_STATS_VQ) && virtio_setup_queue(&dev, next++, &stats_q) < 0)
        return -1;
    if ((dev.features & F_REPORTING) && virtio_setup_queue(&dev, next, &report_q) < 0)
        return -1;
    virtio_driver_ok(&dev);
    printf("balloon: features%s%s%s, %lu MiB of RAM, pool %lu MiB\n",
           dev.features & F_STATS_VQ ? " stats" : "",
           dev.features & F_DEFLATE_ON_OOM ? " deflate-on-oom" : "",
           dev.features & F_REPORTING ? " reporting" : "", (unsigned long)(ram_bytes / MIB),
           (unsigned long)(pool_pages * PAGE_SIZE / MIB));
    return 0;
}

static int route_interrupt(void)
{
    static struct acpi_madt_info madt;
    if (acpi_read_madt(&madt) < 0 || !madt.have_ioapic || madt.ioapic_gsi_base > dev.irq) {
        puts("balloon: FAIL: no I/O APIC for the device's interrupt");
        return -1;
    }
    pic_mask_all();
    idt_set_gate(SPURIOUS_VECTOR, (void (*)(void))(uintptr_t)spurious_interrupt);
    idt_set_gate(BALLOON_VECTOR, (void (*)(void))(uintptr_t)balloon_interrupt);
    lapic_enable(SPURIOUS_VECTOR);
    ioapic_route_edge(madt.ioapic_addr, dev.irq - madt.ioapic_gsi_base, BALLOON_VECTOR, lapic_id());
    return 0;
}

static int obey(void)
{
    uint32_t touch_mib = 0;
    if (cmdline_get("touch") && cmdline_get_u32("touch", &touch_mib) < 0) {
        puts("balloon: touch= must be a number of MiB");
        return GUEST_EXIT_FAIL;
    }
    if (set_up(F_STATS_VQ | F_DEFLATE_ON_OOM | F_REPORTING) < 0 || route_interrupt() < 0)
        return GUEST_EXIT_FAIL;
    if ((uint64_t)touch_mib * MIB / PAGE_SIZE > pool_pages) {
        printf("balloon: touch=%u MiB is more than the pool\n", touch_mib);
        return GUEST_EXIT_FAIL;
    }
    if (touch_mib)
        touch_and_check(POOL_BASE, POOL_BASE + touch_mib * MIB, 0);
    printf("balloon: touched %u MiB, obeying\n", touch_mib);
    if (dev.features & F_STATS_VQ)
        offer_stats();
    for (;;) {
        uint32_t id, len;
        if ((dev.features & F_STATS_VQ) && virtio_poll_used(&dev, &stats_q, &id, &len))
            offer_stats(); /* the device asks for fresh statistics by giving the buffer back */
        uint32_t target = virtio_config_read32(&dev, CONFIG_NUM_PAGES);
        uint32_t want = target < pool_pages ? target : (uint32_t)pool_pages;
        if (want != actual) {
            int r = want > actual ? move_pages(&inflate_q, actual, want)
                                  : move_pages(&deflate_q, want, actual);
            if (r < 0)
                return GUEST_EXIT_FAIL;
            uint32_t before = actual;
            actual = want;
            write_actual(actual);
            printf("balloon: actual %u pages (target %u)\n", actual, target);
            if (want < before) {
                uint64_t bad = touch_and_check(pool_page(want), pool_page(before), 0x5a5a);
                printf("balloon: re-touched %u pages %s\n", before - want, bad ? "BAD" : "OK");
                if (bad)
                    return GUEST_EXIT_FAIL;
            }
            continue;
        }
        /* sti's shadow makes "sti; hlt" atomic: an interrupt after the checks still wakes. */
        unsigned seen = interrupts;
        while (seen == interrupts)
            __asm__ volatile("sti; hlt; cli" ::: "memory");
    }
}

/* ---- hostile ---- */

static int failures;

static void expect_back(const char *what, int64_t used)
{
    if (used < 0) {
        printf("balloon: hostile: FAIL: %s: the buffer never came back\n", what);
        failures++;
    } else {
        printf("balloon: hostile: %s: given back\n", what);
    }
}

/* A chain of one buffer at any address (a report outside RAM). */
static int64_t send_raw(struct virtq *vq, uint64_t addr, uint32_t len, uint16_t flags)
{
    vq->desc[0] = (struct vq_desc){addr, len, flags, 0};
    return virtio_submit_and_wait(&dev, vq, 0);
}

struct same {
    uint32_t *at;
    uint64_t count;
    uint32_t pfn;
};

static void fill_same(void *arg)
{
    const struct same *f = arg;
    for (uint64_t i = 0; i < f->count; i++)
        f->at[i] = f->pfn;
}

static int hostile(void)
{
    if (set_up(F_REPORTING) < 0)
        return GUEST_EXIT_FAIL;
    if (!(dev.features & F_REPORTING)) {
        puts("balloon: hostile: FAIL: run with --balloon 0,free-page-reporting=on");
        return GUEST_EXIT_FAIL;
    }
    /* Our own data, which nothing the device is told may change. */
    uint64_t mine = POOL_BASE + 8 * MIB;
    touch_and_check(mine, mine + MIB, 0x77);
    uint32_t good = (uint32_t)(POOL_BASE / PAGE_SIZE);
    uint32_t ram_end_pfn = (uint32_t)(ram_end / PAGE_SIZE);

    uint32_t outside[] = {ram_end_pfn, ram_end_pfn + 5, 0xffffffff, 0xc0000, 0xfee00, good, good};
    expect_back("PFNs past RAM and in the MMIO hole, and one twice",
                send_buffer(&inflate_q, outside, sizeof(outside)));
    expect_back("a PFN inflated again", send_buffer(&inflate_q, &good, 4));
    /* More PFNs than the VM has pages: the same one, over and over, past the pool. */
    uint64_t count = ram_end / PAGE_SIZE + 100;
    uint32_t *many = (uint32_t *)(uintptr_t)(POOL_BASE + 16 * MIB);
    struct same same = {many, count, good + 1};
    user_run(fill_same, &same);
    expect_back("more PFNs than the VM has pages",
                send_buffer(&inflate_q, many, (uint32_t)(count * 4)));
    expect_back("a PFN list of 5 bytes", send_buffer(&inflate_q, outside, 5));
    uint32_t never[] = {good + 2, 0xffffffff};
    expect_back("deflating pages never inflated", send_buffer(&deflate_q, never, sizeof(never)));
    expect_back("a free page report in the MMIO hole",
                send_raw(&report_q, 0xc0000000ULL, 2 * MIB, VQ_DESC_WRITE));
    expect_back("a free page report past the end of RAM",
                send_raw(&report_q, ram_end - PAGE_SIZE, 2 * MIB, VQ_DESC_WRITE));
    expect_back("a free page report of 2 MiB in RAM",
                send_raw(&report_q, POOL_BASE + 4 * MIB, 2 * MIB, VQ_DESC_WRITE));

    uint32_t status = virtio_status(&dev);
    if (status & STATUS_NEEDS_RESET) {
        printf("balloon: hostile: FAIL: the device needs a reset (status 0x%x)\n", status);
        failures++;
    }
    struct span s = {mine, mine + MIB, 0x77, 0};
    user_run(check_span, &s);
    if (s.bad) {
        printf("balloon: hostile: FAIL: %lu words of our own data changed\n", (unsigned long)s.bad);
        failures++;
    }
    /* A well-behaved round still works: the pages inflated above come back and hold data. */
    uint32_t back[] = {good, good + 1};
    expect_back("deflating the pages inflated", send_buffer(&deflate_q, back, sizeof(back)));
    expect_back("a normal inflate", move_pages(&inflate_q, 100, 356) < 0 ? -1 : 0);
    expect_back("a normal deflate", move_pages(&deflate_q, 100, 356) < 0 ? -1 : 0);
    if (touch_and_check(pool_page(0), pool_page(356), 0x99)) {
        puts("balloon: hostile: FAIL: pages given back do not hold what we write");
        failures++;
    }
    printf("balloon: hostile: %s\n", failures ? "FAIL" : "PASS");
    return failures ? GUEST_EXIT_FAIL : GUEST_EXIT_PASS;
}

int guest_main(void)
{
    read_memory_map();
    if (pool_pages < 512) {
        puts("balloon: FAIL: needs at least 18 MiB of RAM");
        return GUEST_EXIT_FAIL;
    }
    const char *mode = cmdline_get("balloon.mode");
    if (mode && cmdline_value_is(mode, "hostile"))
        return hostile();
    if (mode && !cmdline_value_is(mode, "obey")) {
        puts("balloon: balloon.mode= must be obey or hostile");
        return GUEST_EXIT_FAIL;
    }
    return obey();
}
