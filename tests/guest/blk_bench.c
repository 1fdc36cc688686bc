/* blk-bench.elf: virtio-blk throughput from CPL3, where our hosts run guest code natively:
 * sequential 1 MiB writes and reads over bench.mib MiB, then bench.ios random 4 KiB reads at
 * queue depth 1. Each phase is framed by "bench: PHASE start" / "bench: PHASE done" lines so
 * the host can time it (bench/blk); the loops themselves only touch memory and MMIO. */
#include "runtime/guest.h"
#include "runtime/user.h"
#include "runtime/virtio.h"

#define T_IN  0
#define T_OUT 1
#define MIB   (1024 * 1024)

static struct virtq vq;
static struct virtio_dev dev;
static struct {
    uint32_t type, reserved;
    uint64_t sector;
} header __attribute__((aligned(16)));
/* Past the kit's 1 MiB image limit: plain guest RAM at 16 MiB, identity-mapped. */
#define buffer ((uint8_t *)(uintptr_t)0x1000000)
static volatile uint8_t status;

struct phase {
    uint32_t type;
    uint32_t bytes;  /* per request */
    uint32_t count;  /* requests */
    uint64_t span;   /* sectors the requests may touch */
    int random;      /* random offsets (else sequential) */
    uint32_t errors; /* requests that did not end with status 0 */
};

/* Runs at CPL3: no printing, no port I/O. */
static void run_phase(void *arg)
{
    struct phase *p = arg;
    uint64_t lcg = 0x9e3779b97f4a7c15ULL, sectors = p->bytes / 512;
    for (uint32_t i = 0; i < p->count; i++) {
        uint64_t sector = (uint64_t)i * sectors;
        if (p->random) {
            lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
            sector = ((lcg >> 33) % (p->span / sectors)) * sectors;
        }
        header.type = p->type;
        header.sector = sector % p->span;
        status = 0xff;
        vq.desc[0] = (struct vq_desc){(uint64_t)(uintptr_t)&header, 16, VQ_DESC_NEXT, 1};
        vq.desc[1] =
            (struct vq_desc){(uint64_t)(uintptr_t)buffer, p->bytes,
                             (uint16_t)(VQ_DESC_NEXT | (p->type == T_IN ? VQ_DESC_WRITE : 0)), 2};
        vq.desc[2] = (struct vq_desc){(uint64_t)(uintptr_t)&status, 1, VQ_DESC_WRITE, 0};
        if (virtio_submit_and_wait(&dev, &vq, 0) < 0 || status != 0)
            p->errors++;
    }
}

static void fill_buffer(void *unused)
{
    for (unsigned i = 0; i < MIB; i++)
        buffer[i] = (uint8_t)i;
}

static int timed(const char *name, struct phase *p)
{
    printf("bench: %s start\n", name);
    user_run(run_phase, p);
    printf("bench: %s done (%u requests of %u bytes, %u errors)\n", name, p->count, p->bytes,
           p->errors);
    return p->errors ? GUEST_EXIT_FAIL : 0;
}

int guest_main(void)
{
    if (virtio_find(2, 0, &dev) < 0 || virtio_setup(&dev, 0, &vq) < 0) {
        puts("bench: FAIL: no usable virtio-blk device");
        return GUEST_EXIT_FAIL;
    }
    virtio_driver_ok(&dev);
    uint64_t capacity = virtio_config_read32(&dev, 0) | (uint64_t)virtio_config_read32(&dev, 4)
                                                            << 32;
    uint32_t mib = 64, ios = 2000;
    cmdline_get_u32("bench.mib", &mib);
    cmdline_get_u32("bench.ios", &ios);
    if (capacity < (uint64_t)mib * 2048 || mib == 0) {
        printf("bench: FAIL: the disk (%lu sectors) is smaller than bench.mib=%u MiB\n",
               (unsigned long)capacity, mib);
        return GUEST_EXIT_FAIL;
    }
    user_run(fill_buffer, NULL); /* a 1 MiB loop at emulated ring-0 speed would take seconds */
    uint64_t span = (uint64_t)mib * 2048;
    struct phase write = {T_OUT, MIB, mib, span, 0, 0};
    struct phase read = {T_IN, MIB, mib, span, 0, 0};
    struct phase rand = {T_IN, 4096, ios, span, 1, 0};
    int r = timed("seqwrite", &write);
    r |= timed("seqread", &read);
    r |= timed("randread", &rand);
    puts(r ? "bench: FAIL: some requests failed" : "bench: finished");
    return r ? GUEST_EXIT_FAIL : GUEST_EXIT_PASS;
}
