/* Live migration (docs/migration.md): sending a running VM to a `kiln receive` (pre-copy rounds
 * over KVM's dirty log, then a short stop for the rest and the state), and receiving one. */
#ifndef KILN_VM_MIGRATE_H
#define KILN_VM_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>

#include "kiln/migrate/mig_addr.h"
#include "kiln/migrate/mig_link.h"
#include "kiln/util/error.h"

struct vm;
struct vm_config;

#define VM_MIGRATE_DEFAULT_DOWNTIME_MS 300
#define VM_MIGRATE_DEFAULT_TIMEOUT_S   600

struct vm_migrate_request {
    struct mig_addr to; /* numeric: the VM's threads resolve no names */
    bool has_psk;       /* an encrypted, authenticated stream keyed with psk */
    uint8_t psk[MIG_PSK_SIZE];
    uint32_t downtime_ms;   /* the longest stop allowed at the switch-over (1 to 60000) */
    uint32_t timeout_s;     /* give up (and run on here) if not converged by then */
    uint32_t bandwidth_mib; /* MiB/s on the wire, 0: as fast as it goes */
    bool auto_converge;     /* throttle the vCPUs while the copy does not converge */
};

/* What GET /vm shows while (and after) a migration runs; any thread. */
struct vm_migrate_progress {
    const char *state; /* "connecting", "copying", "switching", "completed", "failed",
                          "cancelled" */
    uint32_t round;
    uint64_t pages_left;        /* dirty pages still to send in this round */
    uint64_t dirty_pages_per_s; /* measured in the last round */
    uint64_t expected_downtime_ms;
    uint64_t bytes_sent;
    uint64_t mib_per_s;        /* the stream's rate in the last round */
    uint32_t throttle_percent; /* auto-converge: how much of each 100 ms the vCPUs are held */
};

struct vm_migrate_result {
    int r; /* 0: the VM runs on the destination now and this one stops with status 0 */
    char message[640];
    uint64_t total_ms;
    uint64_t downtime_us; /* the vCPUs' stop, to the destination's RUNNING */
    uint32_t rounds;
    uint64_t pages_sent, zero_pages, bytes_sent;
    /* The link failed past GO and no disk's lock tells whether the destination took over: this
     * VM stays paused (the API's pause) rather than maybe run twice. */
    bool left_paused;
};

typedef void vm_migrate_done_fn(void *opaque, const struct vm_migrate_result *result);

/* Starts the sender's thread (vm_run, with the control API, before the loop's filter). */
int vm_migrate_thread_start(struct vm *vm, struct error *err);
/* Loop thread at the VM's stop: cancels a migration under way and joins the thread. */
void vm_migrate_thread_stop(struct vm *vm);
void vm_migrate_free(struct vm *vm);

/* Loop thread: starts sending the VM. done runs on the loop at the end; on success the VM
 * then stops with status 0 (VM_STOP_MIGRATED). -EBUSY while a migration or snapshot runs. */
int vm_migrate_start(struct vm *vm, const struct vm_migrate_request *request,
                     vm_migrate_done_fn *done, void *opaque, struct error *err);
/* Loop thread: gives up the migration under way; the VM runs on here as before. -ENOENT if
 * none runs; too late (-EALREADY) once the destination was told to take over. */
int vm_migrate_cancel(struct vm *vm, struct error *err);
/* Whether a migration has run in this VM's life; its progress then. */
bool vm_migrate_progress(struct vm *vm, struct vm_migrate_progress *out);
/* Whether a migration is under way (snapshots wait their turn). Loop thread. */
bool vm_migrate_busy(const struct vm *vm);

/* kiln receive: builds vm from config (its disks opened, not locked), reads the memory rounds
 * into its RAM and then its state, and takes the disks over. 0: the VM is ready for vm_run
 * (*start_paused if it was paused at the source). Every failure is told to the sender in an
 * ERROR record, so the source runs on; the VM is then destroyed. */
int vm_receive(struct vm *vm, const struct vm_config *config, struct mig_link *link,
               bool *start_paused, struct error *err);

#endif
