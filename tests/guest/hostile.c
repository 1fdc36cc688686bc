/* hostile.elf: a driver that attacks its VMM's virtio devices, one hostile.attack=NAME per run
 * (or "all"), and after each checks that the VMM still answers; prints one result line each.
 *
 * reoffer:   one virtio-blk head offered 16 times (the queue size) with one doorbell.
 * reset:     5 reads of 64 KiB (15 of the 16 descriptors), then a device reset while they are in
 * flight; the new queue must work and no stale completion may land in it. discard:   discard and
 * write-zeroes of the whole disk plus some, and of 2^32-1 sectors. loop:      a two-descriptor
 * loop, and a cycle through the whole table (longer than the queue). ring-top:  a descriptor table
 * ending at the last byte of RAM, a used ring ending 2 bytes before it, then each straddling the
 * end of RAM (the VMM must refuse those). console:   16 MiB on hvc0 and 16 KiB on ttyS0. Result
 * lines read "hostile: ATTACK: REACTION; then: AFTER". Then the guest exits through the exit port,
 * 0 when the VMM still answered after every attack, 1 when it did not; or, with hostile.then=spin,
 * says so and spins (ignoring the power button), so a test can check that the VMM still stops on a
 * signal. */
#include "runtime/guest.h"
#include "runtime/virtio.h"

#define ID_BLOCK        2
#define ID_CONSOLE      3
#define T_IN            0
#define T_DISCARD       11
#define T_WRITE_ZEROES  13
#define S_OK            0
#define S_IOERR         1
#define S_UNSUPP        2
#define F_DISCARD       (1ULL << 13)
#define F_WRITE_ZEROES  (1ULL << 14)
#define NEEDS_RESET     0x40
#define PATIENCE_TSC    3000000000ULL /* about a second at a few GHz */
#define BIG             (64 * 1024)
#define REQUESTS        (VQ_SIZE / 3) /* header, data, status: three descriptors each */
#define USED_RING_BYTES (6 + 8 * VQ_SIZE)
#define DESC_BYTES      (16 * VQ_SIZE)

struct blk_header {
    uint32_t type, reserved;
    uint64_t sector;
};

struct blk_segment {
    uint64_t sector;
    uint32_t num_sectors, flags;
};

static struct virtq vq;
static struct virtio_dev blk;
static struct blk_header header[REQUESTS] __attribute__((aligned(16)));
static struct blk_segment segment __attribute__((aligned(16)));
static uint8_t big[REQUESTS][BIG] __attribute__((aligned(4096)));
static volatile uint8_t status[REQUESTS];

static const char *reaction_of(uint32_t device_status)
{
    return device_status & NEEDS_RESET ? "NEEDS_RESET" : "no reset asked";
}

/* Chain for request r at descriptors 3r..3r+2: header, data (len bytes), status. */
static uint16_t build_request(struct vq_desc *table, unsigned r, uint32_t type, uint64_t sector,
                              void *data, uint32_t len)
{
    uint16_t d = (uint16_t)(3 * r);
    header[r] = (struct blk_header){type, 0, sector};
    status[r] = 0xee;
    uint16_t data_flags = type == T_IN ? VQ_DESC_WRITE : 0;
    table[d] =
        (struct vq_desc){(uint64_t)(uintptr_t)&header[r], 16, VQ_DESC_NEXT, (uint16_t)(d + 1)};
    table[d + 1] = (struct vq_desc){(uint64_t)(uintptr_t)data, len,
                                    (uint16_t)(data_flags | VQ_DESC_NEXT), (uint16_t)(d + 2)};
    table[d + 2] = (struct vq_desc){(uint64_t)(uintptr_t)&status[r], 1, VQ_DESC_WRITE, 0};
    return d;
}

/* Polls for one used entry for about a second: 1 with *len set, 0 if none came. */
static int wait_used(uint32_t *len)
{
    uint64_t start = rdtsc();
    uint32_t id;
    while (!virtio_poll_used(&blk, &vq, &id, len))
        if (rdtsc() - start > PATIENCE_TSC)
            return 0;
    return 1;
}

/* Resets the device and sets it up again with the kit's queue. 0 or -1. */
static int blk_setup(uint64_t features)
{
    if (virtio_setup(&blk, features, &vq) < 0)
        return -1;
    virtio_driver_ok(&blk);
    return 0;
}

/* After an attack: reset, set up again, one 512-byte read of sector 0 must come back OK. */
static int fresh_request_works(void)
{
    if (blk_setup(0) < 0)
        return 0;
    uint32_t len;
    virtio_submit(&blk, &vq, build_request(vq.desc, 0, T_IN, 0, big[0], 512));
    return wait_used(&len) && status[0] == S_OK && len == 513;
}

static int report(const char *attack, const char *reaction, int still_answers)
{
    printf("hostile: %s: %s; then: %s\n", attack, reaction,
           still_answers ? "a fresh request after reset works" : "NO ANSWER after reset");
    return still_answers ? 0 : 1;
}

static int attack_reoffer(void)
{
    if (blk_setup(0) < 0)
        return report("reoffer", "set-up failed", 0);
    /* A whole ring of the same head, with one doorbell: the device takes the first offer,
     * starts the read, and meets the head again while that read is still in flight. */
    uint16_t head = build_request(vq.desc, 0, T_IN, 0, big[0], BIG);
    for (unsigned i = 0; i < vq.size; i++)
        vq.avail.ring[i] = head;
    __asm__ volatile("" ::: "memory");
    *(volatile uint16_t *)&vq.avail.idx = (uint16_t)(vq.size - 1);
    virtio_submit(&blk, &vq, head); /* the last offer, and the doorbell */
    uint64_t start = rdtsc();
    while (!(virtio_status(&blk) & NEEDS_RESET) && rdtsc() - start < PATIENCE_TSC)
        ;
    uint32_t device_status = virtio_status(&blk);
    unsigned completions = (uint16_t)(*(volatile uint16_t *)&vq.used.idx);
    printf("hostile: reoffer: device status 0x%x (%s), %u completions for %u offers\n",
           device_status, reaction_of(device_status), completions, vq.size);
    const char *reaction = device_status & NEEDS_RESET ? "NEEDS_RESET"
                           : completions == vq.size    ? "no reset asked, every offer served"
                                                       : "no reset asked";
    return report("reoffer", reaction, fresh_request_works());
}

static int attack_reset(void)
{
    if (blk_setup(0) < 0)
        return report("reset", "set-up failed", 0);
    for (unsigned r = 0; r < REQUESTS; r++)
        virtio_submit(&blk, &vq, build_request(vq.desc, r, T_IN, r * (BIG / 512), big[r], BIG));
    virtio_reset(&blk); /* with the reads in flight */
    /* The new queue's used ring is zeroed by virtio_setup; a completion of an old read would
     * show up there as a used entry nobody offered. */
    if (blk_setup(0) < 0)
        return report("reset", "set-up after the reset failed", 0);
    tsc_delay(PATIENCE_TSC / 2);
    unsigned stale = *(volatile uint16_t *)&vq.used.idx;
    uint32_t len;
    virtio_submit(&blk, &vq, build_request(vq.desc, 0, T_IN, 0, big[0], 512));
    int answered = wait_used(&len) && status[0] == S_OK && len == 513;
    tsc_delay(PATIENCE_TSC / 2);
    unsigned total = *(volatile uint16_t *)&vq.used.idx;
    printf(
        "hostile: reset: %u stale completion(s) in the new ring, %u used entries for 1 request\n",
        stale, total);
    const char *reaction = stale == 0 && total == 1 ? "no stale completion" : "STALE COMPLETION";
    printf("hostile: reset: %s; then: %s\n", reaction,
           answered ? "the new queue answers a fresh request" : "NO ANSWER on the new queue");
    return answered ? 0 : 1;
}

/* One discard or write-zeroes request of one segment; the status byte, or -1 if no answer. */
static int zero_request(uint32_t type, uint64_t sector, uint32_t sectors)
{
    segment = (struct blk_segment){sector, sectors, 0};
    uint32_t len;
    virtio_submit(&blk, &vq, build_request(vq.desc, 0, type, 0, &segment, sizeof(segment)));
    if (!wait_used(&len))
        return -1;
    return status[0];
}

static const char *status_name(int s)
{
    return s == S_OK ? "OK" : s == S_IOERR ? "IOERR" : s == S_UNSUPP ? "UNSUPP" : "no answer";
}

static int attack_discard(void)
{
    if (blk_setup(F_DISCARD | F_WRITE_ZEROES) < 0)
        return report("discard", "set-up failed", 0);
    uint64_t capacity = virtio_config_read32(&blk, 0) | (uint64_t)virtio_config_read32(&blk, 4)
                                                            << 32;
    int results[4] = {-2, -2, -2, -2};
    if (blk.features & F_DISCARD) {
        results[0] = zero_request(T_DISCARD, 0, (uint32_t)capacity + 8);
        results[1] = zero_request(T_DISCARD, 0, 0xffffffffU);
    }
    if (blk.features & F_WRITE_ZEROES) {
        results[2] = zero_request(T_WRITE_ZEROES, 0, (uint32_t)capacity + 8);
        results[3] = zero_request(T_WRITE_ZEROES, 0, 0xffffffffU);
    }
    int all_ioerr = 1;
    for (int i = 0; i < 4; i++)
        all_ioerr &= results[i] == S_IOERR;
    printf("hostile: discard: capacity %lu sectors; discard whole+8 %s, discard 2^32-1 %s, "
           "write-zeroes whole+8 %s, write-zeroes 2^32-1 %s\n",
           (unsigned long)capacity, results[0] == -2 ? "not offered" : status_name(results[0]),
           results[1] == -2 ? "not offered" : status_name(results[1]),
           results[2] == -2 ? "not offered" : status_name(results[2]),
           results[3] == -2 ? "not offered" : status_name(results[3]));
    return report("discard", all_ioerr ? "IOERR for all four" : "not all IOERR",
                  fresh_request_works());
}

/* Offers the chain at head 0 on a fresh queue and says what came back: 1 if the device
 * answered with used length 0, 2 if it asked for a reset (the two refusals the spec allows),
 * 0 if it did neither. */
static int offer_bad_chain(const char *what)
{
    uint32_t len;
    virtio_submit(&blk, &vq, 0);
    int answered = wait_used(&len);
    uint32_t device_status = virtio_status(&blk);
    if (answered)
        printf("hostile: loop: %s: used length %u, device status 0x%x (%s)\n", what, len,
               device_status, reaction_of(device_status));
    else
        printf("hostile: loop: %s: no used entry, device status 0x%x (%s)\n", what, device_status,
               reaction_of(device_status));
    if (device_status & NEEDS_RESET)
        return 2;
    return answered && len == 0 ? 1 : 0;
}

static int attack_loop(void)
{
    if (blk_setup(0) < 0)
        return report("loop", "set-up failed", 0);
    /* Header, then a buffer whose next points back at the header (both device-readable, so
     * only the loop is wrong). */
    build_request(vq.desc, 0, T_IN, 0, big[0], 512);
    vq.desc[1].flags = VQ_DESC_NEXT;
    vq.desc[1].next = 0;
    int two = offer_bad_chain("two descriptors in a loop");
    if (blk_setup(0) < 0)
        return report("loop", "set-up failed", 0);
    /* Every descriptor chained to the next, the last back to the first: a chain that never
     * ends, longer than the queue. */
    for (uint16_t d = 0; d < vq.size; d++)
        vq.desc[d] = (struct vq_desc){(uint64_t)(uintptr_t)big[0], 512, VQ_DESC_NEXT,
                                      (uint16_t)((d + 1) % vq.size)};
    vq.desc[0].addr = (uint64_t)(uintptr_t)&header[0];
    vq.desc[0].len = 16;
    header[0] = (struct blk_header){T_IN, 0, 0};
    int cycle = offer_bad_chain("a cycle through all descriptors");
    const char *reaction = two == 1 && cycle == 1   ? "used length 0 for both"
                           : two == 2 && cycle == 2 ? "NEEDS_RESET for both"
                           : two && cycle           ? "refused (used length 0 or NEEDS_RESET)"
                                                    : "NOT REFUSED";
    return report("loop", reaction, fresh_request_works());
}

/* The end of the highest RAM entry below 4 GiB in the PVH memory map (type 1 is RAM). */
static uint64_t ram_end(void)
{
    const struct hvm_start_info *info = guest_start_info();
    const struct {
        uint64_t addr, size;
        uint32_t type, reserved;
    } *map = (const void *)(uintptr_t)info->memmap_paddr;
    uint64_t end = 0;
    for (uint32_t i = 0; i < info->memmap_entries; i++) {
        uint64_t e = map[i].addr + map[i].size;
        if (map[i].type == 1 && e <= (1ULL << 32) && e > end)
            end = e;
    }
    return end;
}

/* Queue 0 with its descriptor table at desc and used ring at used (the avail ring stays in
 * the kit's queue); if the device accepts it, one read of sector 0 through it. Prints and
 * returns what happened: 1 answered, 0 refused (NEEDS_RESET), -1 neither. */
static int ring_at(const char *what, uint64_t desc, uint64_t used)
{
    if (virtio_negotiate(&blk, 0) < 0)
        return -1;
    memset(&vq, 0, sizeof(vq));
    vq.size = VQ_SIZE;
    virtio_setup_queue_at(&blk, 0, VQ_SIZE, desc, (uint64_t)(uintptr_t)&vq.avail, used);
    virtio_driver_ok(&blk);
    uint32_t device_status = virtio_status(&blk);
    if (device_status & NEEDS_RESET) {
        printf("hostile: ring-top: %s: refused, device status 0x%x (NEEDS_RESET)\n", what,
               device_status);
        return 0;
    }
    /* Only write to RAM: a straddling table's first descriptors are below the end. */
    struct vq_desc *table = (struct vq_desc *)(uintptr_t)desc;
    virtio_submit(&blk, &vq, build_request(table, 0, T_IN, 0, big[0], 512));
    volatile uint16_t *used_idx = (volatile uint16_t *)(uintptr_t)(used + 2);
    uint64_t start = rdtsc();
    int answered = 0;
    while (!(answered = *used_idx != 0) && rdtsc() - start < PATIENCE_TSC)
        ;
    device_status = virtio_status(&blk);
    printf("hostile: ring-top: %s: %s, status byte 0x%x, device status 0x%x (%s)\n", what,
           answered ? "answered" : "no answer", status[0], device_status,
           reaction_of(device_status));
    if (device_status & NEEDS_RESET)
        return 0;
    return answered && status[0] == S_OK ? 1 : -1;
}

static int attack_ring_top(void)
{
    uint64_t end = ram_end();
    if (end < (1u << 20))
        return report("ring-top", "no RAM entry in the PVH memory map", 0);
    printf("hostile: ring-top: RAM ends at 0x%lx\n", (unsigned long)end);
    uint64_t kit_desc = (uint64_t)(uintptr_t)vq.desc, kit_used = (uint64_t)(uintptr_t)&vq.used;
    int top_desc = ring_at("descriptor table ending at the end of RAM", end - DESC_BYTES, kit_used);
    /* The used ring must be 4-byte aligned: ending 2 bytes short is as high as it goes. */
    int top_used = ring_at("used ring ending 2 bytes below the end of RAM", kit_desc,
                           end - USED_RING_BYTES - 2);
    int straddle_desc = ring_at("descriptor table straddling the end of RAM by 128 bytes",
                                end - DESC_BYTES / 2, kit_used);
    int straddle_used = ring_at("used ring straddling the end of RAM by 2 bytes", kit_desc,
                                end - USED_RING_BYTES + 2);
    static const char *const outcome[] = {"no answer", "refused (NEEDS_RESET)", "answered"};
    int still_answers = fresh_request_works();
    printf("hostile: ring-top: top table %s, top used ring %s, straddling table %s, straddling "
           "used ring %s; then: %s\n",
           outcome[top_desc + 1], outcome[top_used + 1], outcome[straddle_desc + 1],
           outcome[straddle_used + 1],
           still_answers ? "a fresh request after reset works" : "NO ANSWER after reset");
    return still_answers ? 0 : 1;
}

/* 16 MiB through the first virtio-console's transmit queue (4 KiB chains), then 16 KiB on
 * COM1 polled on THRE; the kit's own printf still has to get through afterwards. */
#define HVC_CHUNK  4096
#define HVC_TOTAL  (16u << 20)
#define TTYS_TOTAL (16u << 10) /* each byte is an exit: about 8 KiB/s here */
static struct virtq hvc_rxq, hvc_txq;
static struct virtio_dev hvc;
static uint8_t hvc_buf[HVC_CHUNK] __attribute__((aligned(4096)));

static int attack_console(void)
{
    for (unsigned i = 0; i < HVC_CHUNK; i++)
        hvc_buf[i] = (i % 64 == 63) ? '\n' : (uint8_t)('a' + i % 26);
    unsigned long hvc_bytes = 0, ttys_bytes = 0;
    if (virtio_find(ID_CONSOLE, 0, &hvc) == 0 && virtio_setup(&hvc, 0, &hvc_rxq) == 0 &&
        virtio_setup_queue(&hvc, 1, &hvc_txq) == 0) {
        virtio_driver_ok(&hvc);
        /* Every descriptor sends the same buffer; they are only read. */
        unsigned outstanding = 0;
        uint64_t progress = rdtsc();
        for (uint16_t d = 0; d < hvc_txq.size; d++)
            hvc_txq.desc[d] = (struct vq_desc){(uint64_t)(uintptr_t)hvc_buf, HVC_CHUNK, 0, 0};
        while (hvc_bytes < HVC_TOTAL && rdtsc() - progress < 4 * PATIENCE_TSC) {
            uint32_t id, len;
            if (outstanding < hvc_txq.size) {
                virtio_submit(&hvc, &hvc_txq, (uint16_t)(hvc_txq.avail.idx % hvc_txq.size));
                outstanding++;
            } else if (virtio_poll_used(&hvc, &hvc_txq, &id, &len)) {
                outstanding--;
                hvc_bytes += HVC_CHUNK;
                progress = rdtsc();
            }
        }
    } else {
        puts("hostile: console: no virtio-console, only ttyS0");
    }
    for (; ttys_bytes < TTYS_TOTAL; ttys_bytes++)
        serial_putc(ttys_bytes % 64 == 63 ? '\n' : (char)('A' + ttys_bytes % 26));
    printf("hostile: console: %lu bytes taken on hvc0, %lu on ttyS0\n", hvc_bytes, ttys_bytes);
    printf("hostile: console: %s; then: the serial console still prints\n",
           hvc_bytes >= HVC_TOTAL ? "all taken" : "hvc0 stopped taking output");
    return 0;
}

struct attack {
    const char *name;
    int (*run)(void);
};

static const struct attack attacks[] = {
    {"reoffer", attack_reoffer}, {"reset", attack_reset},       {"discard", attack_discard},
    {"loop", attack_loop},       {"ring-top", attack_ring_top}, {"console", attack_console},
};

int guest_main(void)
{
    const char *which = cmdline_get("hostile.attack");
    if (!which) {
        puts("hostile: give hostile.attack=reoffer|reset|discard|loop|ring-top|console|all");
        return GUEST_EXIT_FAIL;
    }
    int all = cmdline_value_is(which, "all"), ran = 0, failed = 0;
    for (unsigned i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
        if (!all && !cmdline_value_is(which, attacks[i].name))
            continue;
        if (attacks[i].run != attack_console && virtio_find(ID_BLOCK, 0, &blk) < 0) {
            printf("hostile: %s: no virtio-blk device on the command line\n", attacks[i].name);
            return GUEST_EXIT_FAIL;
        }
        failed |= attacks[i].run();
        ran++;
    }
    if (!ran) {
        puts("hostile: unknown hostile.attack");
        return GUEST_EXIT_FAIL;
    }
    puts(failed ? "hostile: the VMM stopped answering" : "hostile: the VMM still answers");
    const char *then = cmdline_get("hostile.then");
    if (then && cmdline_value_is(then, "spin"))
        for (;;)
            __asm__ volatile("pause");
    return failed ? GUEST_EXIT_FAIL : GUEST_EXIT_PASS;
}
