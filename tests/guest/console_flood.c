/* console-flood.elf: floods a console until the host stops taking its output (kiln's stdout is
 * a pipe nobody reads), then does what flood.then= says while the console stays stalled.
 *
 * flood.via=serial (default): COM1, byte by byte, waiting for THRE like a polled driver.
 * flood.via=hvc: the first virtio-console (virtio_mmio.device= entries), 4 KiB chains.
 * flood.then=spin (default): keep writing forever (stop it with a signal).
 * flood.then=blk: a virtio-blk write and read back of sector 1, then exit 42 if both worked.
 * flood.then=blk-backlog: keep every virtio-blk descriptor busy with reads, forever.
 * Exit statuses: 42 blk worked while stalled, 3 the console never stalled, 1 anything else.
 * Nothing is printed once the console is stalled: it could not get out. */
#include "runtime/guest.h"
#include "runtime/virtio.h"

#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_CONSOLE 3
#define EXIT_BLK_WORKED   42
#define EXIT_NEVER_STALL  3
/* Roughly half a second at a few GHz with no output taken: the host has stopped reading. */
#define STALL_TSC 1500000000ULL
/* Far more than kiln's buffers plus a pipe's: a console that takes this much is not stalled. */
#define FLOOD_LIMIT  (64u << 20)
#define HVC_CHUNK    4096
#define BLK_T_IN     0
#define BLK_T_OUT    1
#define BLK_REQUESTS (VQ_SIZE / 3) /* header, data, status: three descriptors each */

static struct virtq hvc_rxq, hvc_txq, blk_q;
static struct virtio_dev hvc, blk;
static uint8_t hvc_buf[VQ_SIZE][HVC_CHUNK];
static struct {
    uint32_t type, reserved;
    uint64_t sector;
} blk_header[BLK_REQUESTS] __attribute__((aligned(16)));
static uint8_t blk_data[BLK_REQUESTS][512] __attribute__((aligned(512)));
static volatile uint8_t blk_status[BLK_REQUESTS];

/* A line of the flood: "flood NNNNNNNN " and letters up to 64 bytes with the newline. */
static void fill_line(uint8_t *line, uint32_t number)
{
    static const char hex[] = "0123456789abcdef";
    memcpy(line, "flood ", 6);
    for (int i = 0; i < 8; i++)
        line[6 + i] = (uint8_t)hex[(number >> (28 - 4 * i)) & 0xf];
    for (int i = 14; i < 63; i++)
        line[i] = (uint8_t)('a' + (i + number) % 26);
    line[63] = '\n';
}

/* One byte to COM1: 0 once THRE let it out, -1 if THRE stayed clear for `patience` ticks. */
static int serial_put_patiently(uint8_t byte, uint64_t patience)
{
    uint64_t start = rdtsc();
    while (!(inb(0x3f8 + 5) & 0x20)) {
        if (rdtsc() - start > patience)
            return -1;
    }
    outb(0x3f8, byte);
    return 0;
}

/* Writes lines to COM1 until a byte waits longer than STALL_TSC: 0 then, 1 if it never did. */
static int flood_serial(void)
{
    uint8_t line[64];
    for (uint32_t n = 0; n < FLOOD_LIMIT / sizeof(line); n++) {
        fill_line(line, n);
        for (unsigned i = 0; i < sizeof(line); i++)
            if (serial_put_patiently(line[i], STALL_TSC) < 0)
                return 0;
    }
    return 1;
}

static void hvc_submit(uint16_t slot, uint32_t number)
{
    for (unsigned off = 0; off < HVC_CHUNK; off += 64)
        fill_line(hvc_buf[slot] + off, number * (HVC_CHUNK / 64) + off / 64);
    hvc_txq.desc[slot] = (struct vq_desc){(uint64_t)(uintptr_t)hvc_buf[slot], HVC_CHUNK, 0, 0};
    virtio_submit(&hvc, &hvc_txq, slot);
}

/* Keeps every transmit descriptor busy with 4 KiB chunks until none comes back for STALL_TSC:
 * 0 then, 1 if the console took FLOOD_LIMIT bytes, -1 if there is no usable device. */
static int flood_hvc(void)
{
    if (virtio_find(VIRTIO_ID_CONSOLE, 0, &hvc) < 0 || virtio_setup(&hvc, 0, &hvc_rxq) < 0 ||
        virtio_setup_queue(&hvc, 1, &hvc_txq) < 0) {
        puts("flood: FAIL: no usable virtio-console device");
        return -1;
    }
    virtio_driver_ok(&hvc);
    uint32_t number = 0;
    for (uint16_t slot = 0; slot < hvc_txq.size; slot++)
        hvc_submit(slot, number++);
    uint64_t last_progress = rdtsc();
    while (number < FLOOD_LIMIT / HVC_CHUNK) {
        uint32_t id, len;
        if (virtio_poll_used(&hvc, &hvc_txq, &id, &len)) {
            hvc_submit((uint16_t)(id % hvc_txq.size), number++);
            last_progress = rdtsc();
        } else if (rdtsc() - last_progress > STALL_TSC) {
            return 0;
        }
    }
    return 1;
}

/* Keeps writing to the stalled console, so kiln has output waiting the whole time. */
static void keep_flooding(int via_hvc)
{
    uint8_t line[64];
    fill_line(line, 0);
    for (;;) {
        if (via_hvc)
            __asm__ volatile("pause"); /* every transmit descriptor is already waiting */
        else
            serial_put_patiently(line[0], STALL_TSC);
    }
}

static int blk_setup(void)
{
    if (virtio_find(VIRTIO_ID_BLOCK, 0, &blk) < 0 || virtio_setup(&blk, 0, &blk_q) < 0)
        return -1;
    virtio_driver_ok(&blk);
    return 0;
}

/* Request r as descriptors 3r..3r+2: header, one sector, status. */
static void blk_submit(unsigned r, uint32_t type, uint64_t sector)
{
    uint16_t d = (uint16_t)(3 * r);
    blk_header[r].type = type;
    blk_header[r].sector = sector;
    blk_status[r] = 0xee;
    uint16_t data_flags = type == BLK_T_IN ? VQ_DESC_WRITE : 0;
    blk_q.desc[d] =
        (struct vq_desc){(uint64_t)(uintptr_t)&blk_header[r], 16, VQ_DESC_NEXT, (uint16_t)(d + 1)};
    blk_q.desc[d + 1] = (struct vq_desc){(uint64_t)(uintptr_t)blk_data[r], 512,
                                         (uint16_t)(data_flags | VQ_DESC_NEXT), (uint16_t)(d + 2)};
    blk_q.desc[d + 2] = (struct vq_desc){(uint64_t)(uintptr_t)&blk_status[r], 1, VQ_DESC_WRITE, 0};
    virtio_submit(&blk, &blk_q, d);
}

/* Waits (up to about 15 s) for request r; its status byte, or -1. */
static int blk_wait(unsigned r)
{
    uint64_t start = rdtsc();
    uint32_t id, len;
    while (rdtsc() - start < 50000000000ULL)
        if (virtio_poll_used(&blk, &blk_q, &id, &len))
            return id == 3 * r ? blk_status[r] : -1;
    return -1;
}

static int blk_round_trip(void)
{
    if (blk_setup() < 0)
        return GUEST_EXIT_FAIL;
    for (unsigned i = 0; i < 512; i++)
        blk_data[0][i] = (uint8_t)(i * 7 + 1);
    blk_submit(0, BLK_T_OUT, 1);
    if (blk_wait(0) != 0)
        return GUEST_EXIT_FAIL;
    memset(blk_data[0], 0, 512);
    blk_submit(0, BLK_T_IN, 1);
    if (blk_wait(0) != 0)
        return GUEST_EXIT_FAIL;
    for (unsigned i = 0; i < 512; i++)
        if (blk_data[0][i] != (uint8_t)(i * 7 + 1))
            return GUEST_EXIT_FAIL;
    return EXIT_BLK_WORKED;
}

/* Every request slot busy with a read; each one that completes goes straight back. */
static int blk_backlog(void)
{
    if (blk_setup() < 0)
        return GUEST_EXIT_FAIL;
    uint64_t sector = 0;
    for (unsigned r = 0; r < BLK_REQUESTS; r++)
        blk_submit(r, BLK_T_IN, sector++ % 2048);
    for (;;) {
        uint32_t id, len;
        if (virtio_poll_used(&blk, &blk_q, &id, &len))
            blk_submit(id / 3 % BLK_REQUESTS, BLK_T_IN, sector++ % 2048);
    }
}

int guest_main(void)
{
    const char *via = cmdline_get("flood.via");
    const char *then = cmdline_get("flood.then");
    int via_hvc = via && cmdline_value_is(via, "hvc");
    int r = via_hvc ? flood_hvc() : flood_serial();
    if (r != 0)
        return r > 0 ? EXIT_NEVER_STALL : GUEST_EXIT_FAIL;
    if (then && cmdline_value_is(then, "blk"))
        return blk_round_trip();
    if (then && cmdline_value_is(then, "blk-backlog"))
        return blk_backlog();
    keep_flooding(via_hvc);
    return GUEST_EXIT_FAIL;
}
