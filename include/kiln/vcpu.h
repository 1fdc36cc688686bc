/* One virtual CPU: its KVM fd and shared kvm_run page, its pthread and the KVM_RUN loop that
 * sends port I/O and MMIO exits to the buses and turns every other exit into a VM stop. */
#ifndef KILN_VCPU_H
#define KILN_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kiln/boot.h"
#include "kiln/error.h"

struct vm;

struct vcpu {
    struct vm *vm;
    unsigned index; /* also its APIC ID */
    int fd;
    struct kvm_run *run;
    size_t run_size;
    pthread_t thread;
    bool thread_started;
};

int vcpu_create(struct vcpu *vcpu, struct vm *vm, unsigned index, struct error *err);
void vcpu_destroy(struct vcpu *vcpu);

/* BSP only: registers for the boot protocol's entry state. APs wait for INIT/SIPI in-kernel. */
int vcpu_set_boot_registers(struct vcpu *vcpu, const struct boot_entry *entry, struct error *err);

int vcpu_start(struct vcpu *vcpu, struct error *err);
/* Makes KVM_RUN return (or not enter) so the thread sees the VM is stopping. Any thread. */
void vcpu_kick(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);

/* The real-time signal used to kick vCPU threads out of KVM_RUN. */
int vcpu_kick_signal(void);
/* Installs the (empty) kick-signal handler; once per process before vCPU threads start. */
int vcpu_install_kick_handler(struct error *err);

/* CPUID: what KVM supports, then per-vCPU normalisation (APIC IDs, topology, hypervisor). */
int cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **cpuid, struct error *err);
void cpuid_normalise(struct kvm_cpuid2 *cpuid, unsigned apic_id, unsigned ncpus);

int vcpu_set_boot_msrs(int vcpu_fd, struct error *err);

/* GDT and (for 64-bit entry) identity-mapped page tables in guest RAM, per layout.h. */
int boot_state_write_tables(const struct guest_mem *mem, enum boot_entry_mode mode);
/* Segment, control and EFER state for the entry mode, applied on top of KVM's reset state. */
void boot_state_sregs(struct kvm_sregs *sregs, enum boot_entry_mode mode);
uint64_t boot_state_gdt_entry(enum boot_entry_mode mode, unsigned index);
/* FPU control words and local-APIC virtual-wire wiring, for every vCPU. */
int boot_state_vcpu_defaults(int vcpu_fd, struct error *err);

#endif
