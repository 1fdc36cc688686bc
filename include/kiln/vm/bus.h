/* Address -> device lookup for port I/O and MMIO exits: a sorted array of non-overlapping
 * ranges, filled while the VM is built and read-only once vCPUs run (so lookups take no lock). */
#ifndef KILN_BUS_H
#define KILN_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/util/error.h"
#include "kiln/util/log.h"

/* Device callbacks. offset is relative to the range base; size is 1, 2, 4 or 8. A read must
 * fill all size bytes of data (little-endian). Called on vCPU threads. */
struct bus_ops {
    void (*read)(void *opaque, uint64_t offset, uint8_t *data, unsigned size);
    void (*write)(void *opaque, uint64_t offset, const uint8_t *data, unsigned size);
};

struct bus_range {
    uint64_t base;
    uint64_t len;
    const char *name;
    const struct bus_ops *ops;
    void *opaque;
};

struct bus {
    const char *name; /* "port I/O" or "MMIO", for messages */
    struct bus_range *ranges;
    size_t count;
    size_t capacity;
    const struct log *log;
    uint64_t unknown_accesses; /* updated atomically from vCPU threads */
    int unknown_logged;        /* atomically: the first unknown access is logged once */
};

void bus_init(struct bus *bus, const char *name, const struct log *log);
void bus_destroy(struct bus *bus);

/* Adds a range; fails with -EEXIST (and a message) if it overlaps an existing one. */
int bus_register(struct bus *bus, const struct bus_range *range, struct error *err);

const struct bus_range *bus_find(const struct bus *bus, uint64_t addr);

/* Dispatch one access. Accesses no device claims read as all-ones and writes are dropped;
 * they are counted, and the first is logged. Accesses straddling a range end likewise. */
void bus_read(struct bus *bus, uint64_t addr, uint8_t *data, unsigned size);
void bus_write(struct bus *bus, uint64_t addr, const uint8_t *data, unsigned size);

uint64_t bus_unknown_accesses(const struct bus *bus);

#endif
