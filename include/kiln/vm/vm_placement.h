/* Where a VM's memory and CPU time come from (docs/placement.md): the config's --memory options
 * as guest_mem options, the --cpus pin list checked against this process's CPUs, --nice. */
#ifndef KILN_VM_PLACEMENT_H
#define KILN_VM_PLACEMENT_H

#include "kiln/config/config.h"
#include "kiln/util/error.h"
#include "kiln/vm/guest_mem.h"

/* cfg's --memory options for guest_mem_init_with. */
struct guest_mem_options vm_placement_memory(const struct vm_config *cfg);

/* Every CPU of cfg's pin list is one this process may run on (sched_getaffinity); else one
 * line naming the first that is not and the ones that are. */
int vm_placement_check_pins(const struct vm_config *cfg, struct error *err);

/* --nice: sets the calling thread's nice value. Linux keeps one per thread and a new thread
 * starts with its creator's, so this runs before the VM makes any thread. */
int vm_placement_set_nice(const struct vm_config *cfg, struct error *err);

#endif
