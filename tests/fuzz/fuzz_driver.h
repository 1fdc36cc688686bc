/* A hostile driver for the device fuzzers: a small guest with two queues' rings at the bottom
 * of RAM and buffer areas above, descriptor and avail-entry writes decoded from fuzz input,
 * and the check that a device step left the driver-owned rings untouched. */
#ifndef KILN_FUZZ_DRIVER_H
#define KILN_FUZZ_DRIVER_H

#include <linux/virtio_ring.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/vm/guest_mem.h"
#include "kiln/util/log.h"

#define DRV_RAM   (256u << 10)
#define DRV_QSIZE 16
/* Queue q's rings: descriptors at DRV_DESC(q), driver area DRV_AVAIL(q), device area
 * DRV_USED(q); all below DRV_BUFFERS, where descriptors point. */
#define DRV_DESC(q)  (0x1000u + (q)*0x3000u)
#define DRV_AVAIL(q) (0x2000u + (q)*0x3000u)
#define DRV_USED(q)  (0x3000u + (q)*0x3000u)
#define DRV_BUFFERS  0x8000u
#define DRV_SPLIT    0x20000u /* a second buffer area, for device-writable buffers */

struct fuzz_driver {
    struct guest_mem mem;
    uint16_t avail_idx[2];
    uint8_t rings_before[2][0x2000]; /* each queue's descriptor table and driver area */
};

static inline uint8_t *drv_ram(struct fuzz_driver *d, uint64_t gpa)
{
    return d->mem.mapping + gpa;
}

/* Descriptor addresses land in the buffer areas, at the end of RAM or past it: never on the
 * rings, so any write there is the device's fault. */
static inline uint64_t drv_steer(uint8_t selector, uint32_t raw)
{
    switch (selector % 4) {
    case 0:
        return DRV_BUFFERS + raw % (DRV_SPLIT - DRV_BUFFERS);
    case 1:
        return DRV_SPLIT + raw % (DRV_RAM - DRV_SPLIT);
    case 2:
        return DRV_RAM - (raw % 4096);
    default: {
        uint64_t addr = (uint64_t)raw << (selector >> 4);
        return addr < DRV_BUFFERS ? addr + DRV_RAM : addr;
    }
    }
}

static inline void drv_reset(struct fuzz_driver *d)
{
    if (!d->mem.mapping && guest_mem_init(&d->mem, DRV_RAM, NULL) < 0)
        abort();
    memset(d->mem.mapping, 0, DRV_RAM);
    d->avail_idx[0] = d->avail_idx[1] = 0;
}

/* One 8-byte driver op on queue q: [1] bits 4-7 descriptor index, bits 1-3 + 4-7 address
 * selector; [2..5] address; [6..7] length, [6] bits 0-2 flags, [7] next. */
static inline void drv_write_desc(struct fuzz_driver *d, unsigned q, const uint8_t *op)
{
    uint32_t raw;
    uint16_t len;
    memcpy(&raw, op + 2, 4);
    memcpy(&len, op + 6, 2);
    struct vring_desc desc = {.addr = drv_steer(op[1] >> 1, raw),
                              .len = len,
                              .flags = (uint16_t)(op[6] & 7),
                              .next = (uint16_t)(op[7] % (DRV_QSIZE + 2))};
    memcpy(drv_ram(d, DRV_DESC(q) + ((op[1] >> 4) % DRV_QSIZE) * sizeof(desc)), &desc,
           sizeof(desc));
}

/* Makes a head available on queue q (sometimes past the queue size, sometimes with the index
 * jumping far ahead: a broken ring). */
static inline void drv_make_available(struct fuzz_driver *d, unsigned q, const uint8_t *op)
{
    struct vring_avail *avail = (struct vring_avail *)drv_ram(d, DRV_AVAIL(q));
    avail->ring[d->avail_idx[q] % DRV_QSIZE] = (uint16_t)(op[2] % (DRV_QSIZE + 1));
    d->avail_idx[q] = (uint16_t)(d->avail_idx[q] + 1 + (op[6] == 0xff ? 40 : 0));
    avail->idx = d->avail_idx[q];
}

/* The start of every run: a quiet log the first time, fresh guest RAM, and the input's first
 * byte (the feature choice) taken off. False for an empty input. */
static inline bool drv_start(struct fuzz_driver *d, struct log *log, const uint8_t **data,
                             size_t *size, uint8_t *features)
{
    if (!log->out) {
        log->level = LOG_ERROR;
        log->out = fopen("/dev/null", "w");
    }
    if (*size < 1)
        return false;
    drv_reset(d);
    *features = (*data)[0];
    (*data)++;
    (*size)--;
    return true;
}

/* The ops every device fuzzer has, by code: 0 a descriptor (on queue op[1] & 1), 1 and 2 an
 * avail entry on queue 0 and 1; a device with one queue gets them all on queue 0. False if
 * code is none of these. */
static inline bool drv_ring_op(struct fuzz_driver *d, unsigned code, unsigned nqueues,
                               const uint8_t *op)
{
    if (code == 0)
        drv_write_desc(d, nqueues > 1 ? op[1] & 1 : 0, op);
    else if (code == 1 || code == 2)
        drv_make_available(d, nqueues > 1 ? code - 1 : 0, op);
    return code <= 2;
}

static inline void drv_snapshot(struct fuzz_driver *d)
{
    for (unsigned q = 0; q < 2; q++)
        memcpy(d->rings_before[q], drv_ram(d, DRV_DESC(q)), sizeof(d->rings_before[q]));
}

/* §2.7.5.1: the device writes only the used ring; descriptors and the driver area stay. */
static inline void drv_check(struct fuzz_driver *d)
{
    for (unsigned q = 0; q < 2; q++)
        if (memcmp(d->rings_before[q], drv_ram(d, DRV_DESC(q)), sizeof(d->rings_before[q])))
            abort();
}

#endif
