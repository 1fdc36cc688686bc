/* Private to guest_mem*.c: making fresh RAM's mapping for one backing (guest_mem_backing.c),
 * which guest_mem.c then lays out around the MMIO hole. */
#ifndef KILN_VM_GUEST_MEM_BACKING_H
#define KILN_VM_GUEST_MEM_BACKING_H

#include <stdint.h>

#include "kiln/vm/guest_mem.h"

/* Maps size bytes as opts asks, advised and preallocated: *map, and *fd (the memfd, or -1 for
 * anonymous memory). 0, or a negative errno with one line in err; nothing is left mapped. */
int guest_mem_map_fresh(uint64_t size, const struct guest_mem_options *opts, void **map, int *fd,
                        struct error *err);

#endif
