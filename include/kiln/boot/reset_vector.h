/* The code kiln places at the x86 reset vector (PLATFORM_RESET_VECTOR): a guest that jumps to
 * the firmware's entry to restart itself resets the VM instead of running zeros. */
#ifndef KILN_RESET_VECTOR_H
#define KILN_RESET_VECTOR_H

#include "kiln/util/error.h"
#include "kiln/vm/guest_mem.h"

/* Writes the stub into guest RAM; -EFAULT with err set when RAM does not cover it. */
int reset_vector_write(const struct guest_mem *mem, struct error *err);

#endif
