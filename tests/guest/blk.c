/* blk.elf: drives the first virtio-blk device (virtio_mmio.device= on the command line) with
 * the kit's polling driver: capacity, writes and reads incl. the last sector and a
 * multi-segment request, FLUSH, GET_ID, an out-of-range read, or (blk.expect=readonly) that a
 * read-only disk refuses writes; blk.mode=durable writes, flushes, says so, then waits;
 * blk.mode=reoffer is hostile: it offers one read again and again without waiting for it;
 * blk.mode=reader reads the disk into pages only the device writes, for snapshot tests. */
#include "runtime/guest.h"
#include "runtime/virtio.h"

#define T_IN        0
#define T_OUT       1
#define T_FLUSH     4
#define T_GET_ID    8
#define S_OK        0
#define S_IOERR     1
#define F_RO        (1ULL << 5)
#define F_FLUSH     (1ULL << 9)
#define F_EVENT_IDX (1ULL << 29)

static struct virtq vq;
static struct virtio_dev dev;
static struct {
    uint32_t type, reserved;
    uint64_t sector;
} header __attribute__((aligned(16)));
static uint8_t data[2][512] __attribute__((aligned(512)));
static volatile uint8_t status;

static void fill(uint8_t *buf, uint64_t sector)
{
    for (unsigned i = 0; i < 512; i++)
        buf[i] = (uint8_t)(sector * 31 + i);
}

/* header -> up to two data buffers (writable for IN and GET_ID) -> status. Returns the status
 * byte, or -1 if the device did not answer; *used gets the used length. */
static int request(uint32_t type, uint64_t sector, unsigned nbufs, uint32_t len, int64_t *used)
{
    header.type = type;
    header.sector = sector;
    status = 0xee;
    uint16_t data_flags = (type == T_IN || type == T_GET_ID) ? VQ_DESC_WRITE : 0;
    vq.desc[0] = (struct vq_desc){(uint64_t)(uintptr_t)&header, 16, VQ_DESC_NEXT, 1};
    for (unsigned i = 0; i < nbufs; i++)
        vq.desc[1 + i] = (struct vq_desc){(uint64_t)(uintptr_t)data[i], len,
                                          (uint16_t)(data_flags | VQ_DESC_NEXT), (uint16_t)(2 + i)};
    vq.desc[1 + nbufs] = (struct vq_desc){(uint64_t)(uintptr_t)&status, 1, VQ_DESC_WRITE, 0};
    if (nbufs == 0)
        vq.desc[0].next = 1;
    int64_t n = virtio_submit_and_wait(&dev, &vq, 0);
    if (used)
        *used = n;
    return n < 0 ? -1 : status;
}

static int fail(const char *what)
{
    printf("blk: FAIL: %s\n", what);
    return GUEST_EXIT_FAIL;
}

static int write_and_check(uint64_t sector)
{
    fill(data[0], sector);
    if (request(T_OUT, sector, 1, 512, NULL) != S_OK)
        return fail("write");
    memset(data[0], 0, 512);
    int64_t used;
    if (request(T_IN, sector, 1, 512, &used) != S_OK || used != 513)
        return fail("read back");
    uint8_t expected[512];
    fill(expected, sector);
    if (memcmp(data[0], expected, 512) != 0)
        return fail("data read back differs from data written");
    return 0;
}

static int check_serial(void)
{
    const char *want = cmdline_get("blk.serial");
    int64_t used;
    memset(data[0], 0xff, 512);
    if (request(T_GET_ID, 0, 1, 20, &used) != S_OK)
        return fail("GET_ID");
    size_t len = want ? cmdline_value_len(want) : 0;
    if ((len && memcmp(data[0], want, len) != 0) || (len < 20 && data[0][len] != 0))
        return fail("GET_ID returned another serial");
    printf("blk: serial '%s'\n", len ? (const char *)data[0] : "");
    return 0;
}

static int readonly_checks(void)
{
    if (!(dev.features & F_RO))
        return fail("a read-only disk must offer VIRTIO_BLK_F_RO");
    fill(data[0], 0);
    if (request(T_OUT, 0, 1, 512, NULL) != S_IOERR)
        return fail("a write to a read-only disk must fail with IOERR");
    if (request(T_IN, 0, 1, 512, NULL) != S_OK)
        return fail("a read from a read-only disk must work");
    puts("blk: read-only disk refuses writes");
    return 0;
}

/* Sectors 1..8 get their pattern, then FLUSH: after "flushed" the data must be on the host's
 * disk even if the VMM is killed at once. */
static int durable(void)
{
    for (uint64_t s = 1; s <= 8; s++) {
        fill(data[0], s);
        if (request(T_OUT, s, 1, 512, NULL) != S_OK)
            return fail("write");
    }
    if (request(T_FLUSH, 0, 0, 0, NULL) != S_OK)
        return fail("flush");
    puts("blk: flushed");
    for (;;)
        __asm__ volatile("pause");
}

/* Keeps the ring full of one request: the 64 KiB read at head 0, offered again whenever the
 * device has taken an offer off the ring (avail_event, with EVENT_IDX, says how far it got),
 * never waiting for a completion. A device without a bound starts request after request for
 * the same buffers. Once the device stops taking them (it should have set
 * DEVICE_NEEDS_RESET), says so and spins, ignoring the power button. */
static uint8_t big[64 * 1024] __attribute__((aligned(4096)));

static int reoffer(void)
{
    if (!(dev.features & F_EVENT_IDX))
        return fail("reoffer needs VIRTIO_RING_F_EVENT_IDX");
    header.type = T_IN;
    header.sector = 0;
    vq.desc[0] = (struct vq_desc){(uint64_t)(uintptr_t)&header, 16, VQ_DESC_NEXT, 1};
    vq.desc[1] =
        (struct vq_desc){(uint64_t)(uintptr_t)big, sizeof(big), VQ_DESC_WRITE | VQ_DESC_NEXT, 2};
    vq.desc[2] = (struct vq_desc){(uint64_t)(uintptr_t)&status, 1, VQ_DESC_WRITE, 0};
    puts("blk: re-offering head 0");
    unsigned long offers = 0;
    uint16_t taken = vq.used.avail_event;
    uint64_t progress = rdtsc();
    for (;;) {
        uint16_t now_taken = *(volatile uint16_t *)&vq.used.avail_event;
        if (now_taken != taken) {
            taken = now_taken;
            progress = rdtsc();
        } else if (rdtsc() - progress > 3000000000ULL) { /* about a second, nothing taken */
            break;
        }
        if ((uint16_t)(vq.avail.idx - taken) < VQ_SIZE) {
            virtio_submit(&dev, &vq, 0);
            offers++;
            if (offers % 100000 == 0)
                printf("blk: %lu offers\n", offers);
        }
    }
    printf("blk: the device stopped taking head 0 after %lu offers\n", offers);
    for (;;)
        __asm__ volatile("pause");
}

/* blk.mode=reader: at every 1000th step the next sector of the disk is read into the next of
 * 64 pages that only the device writes; each step folds one word of those pages into a
 * running checksum, and every `every` steps (default 1000) it prints "reader: step N sum HEX".
 * The lines depend only on N and the disk, so a restored guest must print the original's:
 * a snapshot that lost a page the device wrote (a diff missing it) changes the sums. */
static uint8_t read_pages[64][4096] __attribute__((aligned(4096)));

static uint64_t mix(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static int read_into(uint8_t *buf, uint64_t sector)
{
    header.type = T_IN;
    header.sector = sector;
    status = 0xee;
    vq.desc[0] = (struct vq_desc){(uint64_t)(uintptr_t)&header, 16, VQ_DESC_NEXT, 1};
    vq.desc[1] = (struct vq_desc){(uint64_t)(uintptr_t)buf, 512, VQ_DESC_WRITE | VQ_DESC_NEXT, 2};
    vq.desc[2] = (struct vq_desc){(uint64_t)(uintptr_t)&status, 1, VQ_DESC_WRITE, 0};
    return virtio_submit_and_wait(&dev, &vq, 0) < 0 ? -1 : status;
}

static int reader(uint64_t capacity)
{
    uint32_t every = 1000;
    if (cmdline_get("every") && (cmdline_get_u32("every", &every) < 0 || every == 0))
        return fail("every= must be a number from 1");
    printf("reader: start, a line every %u steps\n", every);
    uint64_t sum = 0x9e3779b97f4a7c15ULL;
    for (uint64_t n = 1;; n++) {
        if (n % 1000 == 0 && read_into(read_pages[(n / 1000) % 64], (n / 1000) % capacity) != S_OK)
            return fail("read");
        const uint64_t *words = (const uint64_t *)read_pages[n % 64];
        sum = mix(sum ^ words[(n / 64) % 64] ^ n);
        if (n % every == 0)
            printf("reader: step %lu sum %016lx\n", (unsigned long)n, (unsigned long)sum);
    }
}

int guest_main(void)
{
    if (virtio_find(2, 0, &dev) < 0)
        return fail("no virtio-blk device on the command line");
    const char *mode = cmdline_get("blk.mode");
    int hostile = mode && cmdline_value_is(mode, "reoffer");
    if (virtio_setup(&dev, F_RO | F_FLUSH | (hostile ? F_EVENT_IDX : 0), &vq) < 0)
        return fail("device set-up");
    virtio_driver_ok(&dev);
    uint64_t capacity = virtio_config_read32(&dev, 0) | (uint64_t)virtio_config_read32(&dev, 4)
                                                            << 32;
    printf("blk: capacity %lu sectors\n", (unsigned long)capacity);
    if (hostile)
        return reoffer();
    if (mode && cmdline_value_is(mode, "durable"))
        return durable();
    if (mode && cmdline_value_is(mode, "reader"))
        return capacity ? reader(capacity) : fail("the disk is empty");
    const char *expect = cmdline_get("blk.expect");
    if (expect && cmdline_value_is(expect, "readonly"))
        return readonly_checks() ? GUEST_EXIT_FAIL : GUEST_EXIT_PASS;
    if (capacity < 4)
        return fail("the disk is too small for the checks");
    if (write_and_check(0) || write_and_check(capacity - 1))
        return GUEST_EXIT_FAIL;
    /* Two sectors in two buffers, then read back the same way. */
    fill(data[0], 2);
    fill(data[1], 3);
    if (request(T_OUT, 2, 2, 512, NULL) != S_OK)
        return fail("two-buffer write");
    memset(data, 0, sizeof(data));
    int64_t used;
    if (request(T_IN, 2, 2, 512, &used) != S_OK || used != 1025)
        return fail("two-buffer read");
    uint8_t expected[512];
    fill(expected, 3);
    if (memcmp(data[1], expected, 512) != 0)
        return fail("two-buffer read returned other data");
    if ((dev.features & F_FLUSH) && request(T_FLUSH, 0, 0, 0, NULL) != S_OK)
        return fail("flush");
    if (check_serial())
        return GUEST_EXIT_FAIL;
    if (request(T_IN, capacity, 1, 512, NULL) != S_IOERR)
        return fail("a read past the end must fail with IOERR");
    puts("blk: all checks passed");
    return GUEST_EXIT_PASS;
}
