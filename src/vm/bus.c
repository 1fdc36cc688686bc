/* Port-I/O and MMIO bus: sorted, non-overlapping ranges with binary-search lookup.
 * Unknown addresses behave like an empty ISA/PCI bus: reads float high, writes vanish. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/vm/bus.h"

void bus_init(struct bus *bus, const char *name, const struct log *log)
{
    memset(bus, 0, sizeof(*bus));
    bus->name = name;
    bus->log = log;
}

void bus_destroy(struct bus *bus)
{
    free(bus->ranges);
    bus->ranges = NULL;
    bus->count = bus->capacity = 0;
}

static int ranges_overlap(const struct bus_range *a, const struct bus_range *b)
{
    return a->base < b->base + b->len && b->base < a->base + a->len;
}

int bus_register(struct bus *bus, const struct bus_range *range, struct error *err)
{
    if (range->len == 0 || range->base + range->len < range->base)
        return error_fmt(err, -EINVAL, "%s bus: device %s has an invalid range", bus->name,
                         range->name);
    size_t pos = 0;
    while (pos < bus->count && bus->ranges[pos].base < range->base)
        pos++;
    for (size_t i = (pos > 0 ? pos - 1 : 0); i < bus->count && i <= pos; i++) {
        if (ranges_overlap(&bus->ranges[i], range))
            return error_fmt(err, -EEXIST, "%s bus: %s at 0x%llx overlaps %s at 0x%llx", bus->name,
                             range->name, (unsigned long long)range->base, bus->ranges[i].name,
                             (unsigned long long)bus->ranges[i].base);
    }
    if (bus->count == bus->capacity) {
        size_t capacity = bus->capacity ? bus->capacity * 2 : 8;
        struct bus_range *grown = realloc(bus->ranges, capacity * sizeof(*grown));
        if (!grown)
            return error_fmt(err, -ENOMEM, "%s bus: out of memory", bus->name);
        bus->ranges = grown;
        bus->capacity = capacity;
    }
    memmove(&bus->ranges[pos + 1], &bus->ranges[pos], (bus->count - pos) * sizeof(*range));
    bus->ranges[pos] = *range;
    bus->count++;
    return 0;
}

const struct bus_range *bus_find(const struct bus *bus, uint64_t addr)
{
    size_t lo = 0, hi = bus->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct bus_range *r = &bus->ranges[mid];
        if (addr < r->base)
            hi = mid;
        else if (addr - r->base >= r->len)
            lo = mid + 1;
        else
            return r;
    }
    return NULL;
}

/* The whole access must fall inside one device: a straddling access is treated as unknown. */
static const struct bus_range *find_access(struct bus *bus, uint64_t addr, unsigned size,
                                           const char *verb)
{
    const struct bus_range *r = bus_find(bus, addr);
    if (r && size <= r->len && addr - r->base <= r->len - size)
        return r;
    __atomic_add_fetch(&bus->unknown_accesses, 1, __ATOMIC_RELAXED);
    if (__atomic_exchange_n(&bus->unknown_logged, 1, __ATOMIC_RELAXED) == 0)
        log_info(bus->log,
                 "%s bus: %u-byte %s at 0x%llx hits no device (reads return all-ones; further "
                 "unknown accesses are only counted)",
                 bus->name, size, verb, (unsigned long long)addr);
    return NULL;
}

void bus_read(struct bus *bus, uint64_t addr, uint8_t *data, unsigned size)
{
    const struct bus_range *r = find_access(bus, addr, size, "read");
    if (!r || !r->ops->read) {
        memset(data, 0xff, size);
        return;
    }
    r->ops->read(r->opaque, addr - r->base, data, size);
}

void bus_write(struct bus *bus, uint64_t addr, const uint8_t *data, unsigned size)
{
    const struct bus_range *r = find_access(bus, addr, size, "write");
    if (r && r->ops->write)
        r->ops->write(r->opaque, addr - r->base, data, size);
}

uint64_t bus_unknown_accesses(const struct bus *bus)
{
    return __atomic_load_n(&bus->unknown_accesses, __ATOMIC_RELAXED);
}
