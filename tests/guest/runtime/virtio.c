/* Guest kit virtio-mmio driver: command-line discovery, the init sequence of virtio 1.2
 * §3.1.1 over the version 2 register window, and a polled split queue. */
#include "virtio.h"

#define REG_MAGIC            0x000
#define REG_VERSION          0x004
#define REG_DEVICE_ID        0x008
#define REG_DEVICE_FEATURES  0x010
#define REG_DEVICE_FEAT_SEL  0x014
#define REG_DRIVER_FEATURES  0x020
#define REG_DRIVER_FEAT_SEL  0x024
#define REG_QUEUE_SEL        0x030
#define REG_QUEUE_NUM_MAX    0x034
#define REG_QUEUE_NUM        0x038
#define REG_QUEUE_READY      0x044
#define REG_QUEUE_NOTIFY     0x050
#define REG_INTERRUPT_STATUS 0x060
#define REG_INTERRUPT_ACK    0x064
#define REG_STATUS           0x070
#define REG_QUEUE_DESC       0x080
#define REG_QUEUE_DRIVER     0x090
#define REG_QUEUE_DEVICE     0x0a0
#define REG_CONFIG           0x100

#define S_ACKNOWLEDGE 1
#define S_DRIVER      2
#define S_DRIVER_OK   4
#define S_FEATURES_OK 8
#define F_VERSION_1   (1ULL << 32)

#define barrier() __asm__ volatile("" ::: "memory")

static uint32_t rd(struct virtio_dev *d, uint32_t reg)
{
    return mmio_read32(d->base + reg);
}
static void wr(struct virtio_dev *d, uint32_t reg, uint32_t v)
{
    mmio_write32(d->base + reg, v);
}

/* Parses "SIZE@ADDR:IRQ" (SIZE with an optional K; numbers decimal or 0x-hex). */
static const char *parse_number(const char *p, uint64_t *out)
{
    uint64_t v = 0;
    unsigned base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    for (;; p++) {
        unsigned d;
        if (*p >= '0' && *p <= '9')
            d = (unsigned)(*p - '0');
        else if (base == 16 && *p >= 'a' && *p <= 'f')
            d = (unsigned)(*p - 'a' + 10);
        else if (base == 16 && *p >= 'A' && *p <= 'F')
            d = (unsigned)(*p - 'A' + 10);
        else
            break;
        v = v * base + d;
    }
    *out = v;
    return p;
}

static int parse_entry(const char *p, uint64_t *base, uint32_t *irq)
{
    uint64_t size, addr, line;
    p = parse_number(p, &size);
    if (*p == 'K' || *p == 'k')
        p++;
    if (*p++ != '@')
        return -1;
    p = parse_number(p, &addr);
    if (*p++ != ':')
        return -1;
    parse_number(p, &line);
    *base = addr;
    *irq = (uint32_t)line;
    return 0;
}

static const char *find(const char *haystack, const char *needle)
{
    size_t n = strlen(needle);
    for (; *haystack; haystack++)
        if (strncmp(haystack, needle, n) == 0)
            return haystack;
    return NULL;
}

int virtio_find(uint32_t device_id, unsigned index, struct virtio_dev *dev)
{
    static const char key[] = "virtio_mmio.device=";
    const char *p = cmdline_all();
    while ((p = find(p, key)) != NULL) {
        p += sizeof(key) - 1;
        struct virtio_dev d = {0};
        if (parse_entry(p, &d.base, &d.irq) < 0)
            continue;
        if (rd(&d, REG_MAGIC) != 0x74726976)
            continue;
        d.device_id = rd(&d, REG_DEVICE_ID);
        if (d.device_id != device_id)
            continue;
        if (rd(&d, REG_VERSION) != 2) {
            printf("virtio: device at 0x%lx is a legacy (version %u) device\n",
                   (unsigned long)d.base, rd(&d, REG_VERSION));
            continue;
        }
        if (index-- == 0) {
            *dev = d;
            printf("virtio: device %u at 0x%lx, irq %u\n", device_id, (unsigned long)d.base, d.irq);
            return 0;
        }
    }
    return -1;
}

int virtio_setup(struct virtio_dev *dev, uint64_t wanted, struct virtq *vq)
{
    if (virtio_negotiate(dev, wanted) < 0)
        return -1;
    return virtio_setup_queue(dev, 0, vq);
}

int virtio_negotiate(struct virtio_dev *dev, uint64_t wanted)
{
    wr(dev, REG_STATUS, 0);
    wr(dev, REG_STATUS, S_ACKNOWLEDGE);
    wr(dev, REG_STATUS, S_ACKNOWLEDGE | S_DRIVER);
    wr(dev, REG_DEVICE_FEAT_SEL, 0);
    uint64_t offered = rd(dev, REG_DEVICE_FEATURES);
    wr(dev, REG_DEVICE_FEAT_SEL, 1);
    offered |= (uint64_t)rd(dev, REG_DEVICE_FEATURES) << 32;
    if (!(offered & F_VERSION_1)) {
        puts("virtio: device does not offer VERSION_1");
        return -1;
    }
    dev->features = (wanted & offered) | F_VERSION_1;
    wr(dev, REG_DRIVER_FEAT_SEL, 0);
    wr(dev, REG_DRIVER_FEATURES, (uint32_t)dev->features);
    wr(dev, REG_DRIVER_FEAT_SEL, 1);
    wr(dev, REG_DRIVER_FEATURES, (uint32_t)(dev->features >> 32));
    wr(dev, REG_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
    if (!(rd(dev, REG_STATUS) & S_FEATURES_OK)) {
        puts("virtio: device refused our features");
        return -1;
    }
    return 0;
}

int virtio_setup_queue(struct virtio_dev *dev, unsigned index, struct virtq *vq)
{
    wr(dev, REG_QUEUE_SEL, index);
    uint32_t max = rd(dev, REG_QUEUE_NUM_MAX);
    if (max == 0 || rd(dev, REG_QUEUE_READY) != 0) {
        printf("virtio: queue %u unavailable\n", index);
        return -1;
    }
    memset(vq, 0, sizeof(*vq));
    vq->index = (uint16_t)index;
    vq->size = max < VQ_SIZE ? (uint16_t)max : VQ_SIZE;
    virtio_setup_queue_at(dev, index, vq->size, (uint64_t)(uintptr_t)vq->desc,
                          (uint64_t)(uintptr_t)&vq->avail, (uint64_t)(uintptr_t)&vq->used);
    return 0;
}

void virtio_setup_queue_at(struct virtio_dev *dev, unsigned index, uint16_t size, uint64_t desc,
                           uint64_t avail, uint64_t used)
{
    wr(dev, REG_QUEUE_SEL, index);
    wr(dev, REG_QUEUE_NUM, size);
    wr(dev, REG_QUEUE_DESC, (uint32_t)desc);
    wr(dev, REG_QUEUE_DESC + 4, (uint32_t)(desc >> 32));
    wr(dev, REG_QUEUE_DRIVER, (uint32_t)avail);
    wr(dev, REG_QUEUE_DRIVER + 4, (uint32_t)(avail >> 32));
    wr(dev, REG_QUEUE_DEVICE, (uint32_t)used);
    wr(dev, REG_QUEUE_DEVICE + 4, (uint32_t)(used >> 32));
    wr(dev, REG_QUEUE_READY, 1);
}

uint32_t virtio_status(struct virtio_dev *dev)
{
    return rd(dev, REG_STATUS);
}

void virtio_reset(struct virtio_dev *dev)
{
    wr(dev, REG_STATUS, 0);
}

void virtio_driver_ok(struct virtio_dev *dev)
{
    wr(dev, REG_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
}

uint32_t virtio_config_read32(struct virtio_dev *dev, uint32_t offset)
{
    return rd(dev, REG_CONFIG + offset);
}

uint8_t virtio_config_read8(struct virtio_dev *dev, uint32_t offset)
{
    return *(volatile uint8_t *)(uintptr_t)(dev->base + REG_CONFIG + offset);
}

void virtio_submit(struct virtio_dev *dev, struct virtq *vq, uint16_t head)
{
    vq->avail.ring[vq->avail.idx % vq->size] = head;
    barrier(); /* the entry before the index (x86 keeps stores in order) */
    *(volatile uint16_t *)&vq->avail.idx = (uint16_t)(vq->avail.idx + 1);
    barrier();
    wr(dev, REG_QUEUE_NOTIFY, vq->index);
}

int virtio_poll_used(struct virtio_dev *dev, struct virtq *vq, uint32_t *id, uint32_t *len)
{
    if (*(volatile uint16_t *)&vq->used.idx == vq->last_used)
        return 0;
    barrier();
    *id = vq->used.ring[vq->last_used % vq->size].id;
    *len = vq->used.ring[vq->last_used % vq->size].len;
    vq->last_used++;
    uint32_t isr = rd(dev, REG_INTERRUPT_STATUS);
    if (isr)
        wr(dev, REG_INTERRUPT_ACK, isr);
    return 1;
}

int64_t virtio_submit_and_wait(struct virtio_dev *dev, struct virtq *vq, uint16_t head)
{
    virtio_submit(dev, vq, head);
    uint64_t start = rdtsc();
    uint32_t id, len;
    while (!virtio_poll_used(dev, vq, &id, &len)) {
        if (rdtsc() - start > 50000000000ULL) { /* ~15 s at a few GHz */
            puts("virtio: timed out waiting for the device");
            return -1;
        }
    }
    return len;
}
