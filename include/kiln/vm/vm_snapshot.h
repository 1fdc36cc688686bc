/* Snapshots of a running VM (docs/snapshots.md): taking one (pause, drain, collect each piece
 * of state, write the files on a thread of their own) and loading one into a VM just built. */
#ifndef KILN_VM_SNAPSHOT_H
#define KILN_VM_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "kiln/util/error.h"

struct vm;
struct vm_config;
struct snap_chain;
struct snap_reader;

struct vm_snapshot_result {
    int r; /* 0, or a negative errno with message */
    char message[640];
    uint64_t memory_bytes;      /* guest RAM */
    uint64_t memory_data_bytes; /* of which written to the file (the rest are holes) */
    bool diff;                  /* a diff against a base: memory.diff and memory.dirty */
    uint64_t dirty_pages;       /* a diff: the pages written since the base */
    uint64_t paused_ms;         /* how long the vCPUs were held for it */
    uint64_t total_ms;
    bool stopped; /* the VM stops now (stop_after) */
};

typedef void vm_snapshot_done_fn(void *opaque, const struct vm_snapshot_result *result);

/* Starts the writer thread (vm_run, before the loop's filter: it installs its own). */
int vm_snapshot_writer_start(struct vm *vm, struct error *err);
/* Loop thread, when the VM stops: lets the writer finish a file it is writing, joins it and
 * closes the loop handles; safe if never started. vm_snapshot_free then frees it all. */
void vm_snapshot_writer_stop(struct vm *vm);
void vm_snapshot_free(struct vm *vm);

/* Loop thread: snapshots the VM into dir (an absolute path; made if missing, refused if it
 * holds a snapshot already). The vCPUs are paused, I/O drains, the state is collected and the
 * writer writes the files; then the vCPUs run on (unless the API paused them, or stop_after:
 * the VM then stops with status 0). done runs on the loop thread at the end. -EBUSY while a
 * snapshot is under way. base (an absolute path, or NULL for a full snapshot) makes it a diff
 * holding only the pages written since base, which must be the last snapshot this VM took:
 * if not, the result is -ESTALE with a message, and nothing is written. */
int vm_snapshot_take(struct vm *vm, const char *dir, const char *base, bool stop_after,
                     vm_snapshot_done_fn *done, void *opaque, struct error *err);

/* Live migration reads KVM's dirty log too (which clears it): what it read must also reach the
 * next diff snapshot. Not while a snapshot is being taken. */
void vm_snapshot_note_dirty(struct vm *vm, const uint64_t *bitmap);
/* Whether a snapshot is being taken (a migration waits its turn). Loop thread. */
bool vm_snapshot_busy(const struct vm *vm);

/* The checks that need no VM (the state file, the memory size, this CPU, the disks), so that
 * a refused snapshot builds nothing; for a diff, of each link of its chain of bases (the
 * bases' disks by path only: the images moved on with the VM). */
int vm_snapshot_check(const struct vm_config *config, const char *dir, struct error *err);
/* The same, handing back the chain (snap_chain_walk): dirs[0] is dir, the last the full
 * snapshot whose memory.kiln the diffs are laid over, newest last. */
int vm_snapshot_chain(const struct vm_config *config, const char *dir, struct snap_chain *chain,
                      struct error *err);

/* Loads dir's state into vm, built by vm_build_from with the snapshot's memory and config,
 * before vm_run: VM-wide state (the clock moved on by the time since the snapshot), each
 * vCPU, each device and virtio transport; then a new VM generation ID and its event (unless
 * the config has vmgenid off). Every check (format, CRC, CPU, sizes, disks) comes first, so
 * a refused snapshot leaves nothing half-loaded. */
int vm_snapshot_restore(struct vm *vm, const char *dir, struct error *err);
/* The same from a checked state in memory (a live migration's, then new_gen is false: the VM
 * goes on as the same generation), after the same checks of the memory size, CPU and disks. */
int vm_snapshot_load_state(struct vm *vm, const struct snap_reader *reader, bool new_gen,
                           struct error *err);

#endif
