/* A VM's CPUID: KVM's supported table with the config's CPU template applied, saved in every
 * snapshot so that a restore or a migration gives the guest the same CPUID on any host. */
#ifndef KILN_VM_VM_CPUID_H
#define KILN_VM_VM_CPUID_H

#include <stdbool.h>

#include "kiln/snapshot/snap_state.h"
#include "kiln/util/error.h"
#include "kiln/vm/vm.h"

/* The state file's section: a struct kvm_cpuid2 (nent, padding, then the entries) of the VM's
 * table before each vCPU's APIC ID and topology are written in; slot -1. */
#define VM_CPUID_SECTION "cpuid"

/* vm->supported_cpuid and vm->guest_cpuid. The template (--cpu-template) is read and applied
 * unless a saved state follows (vm->state_follows): then it is the host's table until
 * vm_cpuid_load. */
int vm_cpuid_build(struct vm *vm, struct error *err);

/* Adds the cpuid section. */
int vm_cpuid_save(const struct vm *vm, struct snap_writer *w, struct error *err);

/* Whether the state has a cpuid section (snapshots before CPU templates have none). */
bool vm_cpuid_saved(const struct snap_reader *reader);

/* Before any vCPU has run: checks the saved table (its size, and that this host's KVM offers
 * every feature bit in it) and gives it to every vCPU. Without a cpuid section, nothing. */
int vm_cpuid_load(struct vm *vm, const struct snap_reader *reader, struct error *err);

#endif
