/* Which guest pages changed since the last snapshot, for diff snapshots (docs/snapshots.md):
 * KVM's dirty log of each memory slot plus the pages kiln's devices wrote, in one bitmap laid
 * out as the snapshot's memory file is. */
#ifndef KILN_VM_DIRTY_H
#define KILN_VM_DIRTY_H

#include <stdbool.h>
#include <stdint.h>

#include "kiln/util/error.h"

struct vm;

/* Turns on KVM_MEM_LOG_DIRTY_PAGES on every RAM slot (KVM then logs each page the guest
 * writes from now on); done once, at a VM's first snapshot. */
int vm_dirty_start(struct vm *vm, struct error *err);

/* ORs into bitmap (page_bitmap_words(RAM pages) words) every page written since the last
 * call: each slot's KVM_GET_DIRTY_LOG, which also clears it, at the slot's place in the RAM
 * file, and the pages kiln's devices wrote (guest_mem_take_written). Only after
 * vm_dirty_start; the vCPUs should be paused. */
int vm_dirty_collect(struct vm *vm, uint64_t *bitmap, struct error *err);

#endif
