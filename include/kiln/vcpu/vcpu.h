/* One virtual CPU: its KVM fd and shared kvm_run page, its pthread and the KVM_RUN loop that
 * sends port I/O and MMIO exits to the buses and turns every other exit into a VM stop. */
#ifndef KILN_VCPU_H
#define KILN_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kiln/boot/boot.h"
#include "kiln/vm/bus.h"
#include "kiln/util/error.h"
#include "kiln/vm/guest_mem.h"
#include "kiln/hostcompat/hostcompat.h"
#include "kiln/util/log.h"
#include "kiln/sandbox/sandbox.h"
#include "kiln/vm/stop.h"
#include "kiln/vcpu/cpu_template.h"

/* Everything a vCPU needs from the machine around it, and no more: where its port I/O and
 * MMIO go, guest RAM (for diagnostics), the CPUID table it starts from, the host-compat
 * emulator, and whom to tell when the guest stops the VM. Owned by the VM; outlives vCPUs. */
struct vcpu_env {
    int vm_fd;
    size_t run_size; /* KVM_GET_VCPU_MMAP_SIZE */
    unsigned ncpus;  /* for the CPUID topology */
    struct bus *pio_bus;
    struct bus *mmio_bus;
    const struct guest_mem *mem;
    const struct log *log;
    const struct cpu_template *cpu_template; /* its MSRs for a booting VM's vCPUs; NULL: none */
    const struct kvm_cpuid2 *cpuid;          /* the VM's table (KVM's, its CPU template applied);
                                              * normalised per vCPU */
    struct hostcompat *hostcompat;
    struct stop_notifier stop;
    const struct sandbox_filter *sandbox_filter; /* each vCPU thread loads it (--seccomp);
                                                  * NULL or off: none */
    const unsigned *pin_cpus; /* vCPU i runs only on host CPU pin_cpus[i % npin_cpus] */
    unsigned npin_cpus;       /* 0: not pinned */
};

/* Why KVM_RUN returned, counted per vCPU (vcpu_read_exit_counters). `intr` is a KVM_RUN cut
 * short by a kick or a signal; `emulated` an internal-error exit that host-compat handled, so
 * `internal_error` counts only the ones that stopped the VM. With the in-kernel LAPIC that
 * kiln always creates, KVM handles HLT itself: `hlt` stays 0 in a kiln VM. */
enum vcpu_exit_counter {
    VCPU_EXITS_IO,
    VCPU_EXITS_MMIO,
    VCPU_EXITS_HLT,
    VCPU_EXITS_SHUTDOWN,
    VCPU_EXITS_SYSTEM_EVENT,
    VCPU_EXITS_INTR,
    VCPU_EXITS_INTERNAL_ERROR,
    VCPU_EXITS_EMULATED,
    VCPU_EXITS_OTHER,
    VCPU_EXITS_COUNT
};

/* What the controlling thread asks of a vCPU thread (vcpu_pause/resume/stop). */
enum vcpu_request { VCPU_REQUEST_RUN = 0, VCPU_REQUEST_PAUSE, VCPU_REQUEST_STOP };

struct vcpu {
    const struct vcpu_env *env;
    unsigned index; /* also its APIC ID */
    int fd;
    struct kvm_run *run;
    size_t run_size;
    pthread_t thread;
    bool thread_started;

    /* Pause/resume/stop hand-shake with the vCPU thread. request is also read without the
     * lock on every KVM_RUN round; parked and exited only change under it. */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int request;  /* enum vcpu_request */
    bool parked;  /* the thread waits outside KVM_RUN, its state complete (paused) */
    bool exited;  /* the thread left its loop */
    bool sync_ok; /* lock and changed initialised */

    /* Written by the vCPU thread only, read by any (kiln/util/counter.h). */
    uint64_t exits[VCPU_EXITS_COUNT];
};

int vcpu_create(struct vcpu *vcpu, const struct vcpu_env *env, unsigned index, struct error *err);
void vcpu_destroy(struct vcpu *vcpu);

/* BSP only: registers for the boot protocol's entry state. APs wait for INIT/SIPI in-kernel. */
int vcpu_set_boot_registers(struct vcpu *vcpu, const struct boot_entry *entry, struct error *err);

int vcpu_start(struct vcpu *vcpu, struct error *err);

/* Parks the vCPU outside KVM_RUN and returns once it is there, with any port I/O or MMIO it
 * was in the middle of completed, so its registers can be read and its memory is still. A
 * vCPU that has already stopped counts as paused. Any thread but the vCPU's own. */
void vcpu_pause(struct vcpu *vcpu);
/* vcpu_pause in two halves, to pause several vCPUs in parallel: ask, then wait until parked
 * (or stopped). */
void vcpu_pause_request(struct vcpu *vcpu);
void vcpu_wait_paused(struct vcpu *vcpu);
/* Lets a paused vCPU run on. */
void vcpu_resume(struct vcpu *vcpu);
bool vcpu_is_paused(struct vcpu *vcpu);

/* "io", "mmio", ...: the name a user reads next to the count. */
const char *vcpu_exit_counter_name(enum vcpu_exit_counter counter);
/* Every exit counter of the vCPU so far; any thread, while the vCPU runs. */
void vcpu_read_exit_counters(const struct vcpu *vcpu, uint64_t out[VCPU_EXITS_COUNT]);

/* Makes the vCPU thread leave its loop (paused or running); vcpu_join waits for it. */
void vcpu_stop(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);

/* The real-time signal used to kick vCPU threads out of KVM_RUN. */
int vcpu_kick_signal(void);
/* Installs the (empty) kick-signal handler; once per process before vCPU threads start. */
int vcpu_install_kick_handler(struct error *err);

/* CPUID: what KVM supports, then per-vCPU normalisation (APIC IDs, topology, hypervisor). */
int cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **cpuid, struct error *err);
void cpuid_normalise(struct kvm_cpuid2 *cpuid, unsigned apic_id, unsigned ncpus);

/* Gives the vCPU table (a VM's CPUID) with this vCPU's APIC ID and topology written in. Also
 * before a restored vCPU first runs, to give it the saved VM's CPUID. */
int vcpu_set_cpuid(struct vcpu *vcpu, const struct kvm_cpuid2 *table, struct error *err);

int vcpu_set_boot_msrs(int vcpu_fd, struct error *err);

/* GDT and (for 64-bit entry) identity-mapped page tables in guest RAM, per layout.h. */
int boot_state_write_tables(const struct guest_mem *mem, enum boot_entry_mode mode);
/* Segment, control and EFER state for the entry mode, applied on top of KVM's reset state. */
void boot_state_sregs(struct kvm_sregs *sregs, enum boot_entry_mode mode);
uint64_t boot_state_gdt_entry(enum boot_entry_mode mode, unsigned index);
/* FPU control words and local-APIC virtual-wire wiring, for every vCPU. */
int boot_state_vcpu_defaults(int vcpu_fd, struct error *err);

#endif
