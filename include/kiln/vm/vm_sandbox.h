/* The seccomp filters of a VM process's own threads, libuv's I/O pool and the event loop, put
 * in by vm_run once set-up is done and before the guest runs (vCPU threads do their own). */
#ifndef KILN_VM_SANDBOX_H
#define KILN_VM_SANDBOX_H

#include "kiln/util/error.h"

struct vm;

/* Builds the filters of the threads vm_run starts (vCPUs; the I/O pool with disks; the
 * snapshot writer and migration sender with an API), on the calling thread, before any of
 * them starts: each thread then only loads its kind's. Freed by vm_sandbox_free. */
int vm_sandbox_build(struct vm *vm, struct error *err);
void vm_sandbox_free(struct vm *vm);

/* Starts libuv's thread pool if the VM has disks, with the stop signals blocked in its
 * threads, and filters each of them (with seccomp on). Before vm_sandbox_loop: a pool
 * started under the loop's filter would inherit it. */
int vm_sandbox_io_pool(struct vm *vm, struct error *err);

/* Filters the calling (loop) thread. After the vCPU threads have started (they would
 * inherit it), before the loop first runs. */
int vm_sandbox_loop(struct vm *vm, struct error *err);

#endif
