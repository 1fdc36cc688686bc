/* The host CPU's identity a snapshot records (vendor and CPUID feature words), and the check
 * that refuses to restore on a CPU that lacks a feature the saved guest may be using. */
#ifndef KILN_SNAPSHOT_SNAP_CPU_H
#define KILN_SNAPSHOT_SNAP_CPU_H

#include <stdint.h>

#include "kiln/util/error.h"

/* Fixed layout (48 bytes, no implicit padding): it is stored as is in the state file. */
struct snap_cpu_id {
    char vendor[16];    /* CPUID leaf 0: "GenuineIntel", NUL-terminated, zero-filled */
    uint32_t leaf1_ecx; /* CPUID leaf 1 */
    uint32_t leaf1_edx;
    uint32_t leaf7_ebx; /* CPUID leaf 7 subleaf 0 (0 where the CPU has no leaf 7) */
    uint32_t leaf7_ecx;
    uint32_t leaf7_edx;
    uint32_t ext1_ecx; /* CPUID leaf 0x80000001 */
    uint32_t ext1_edx;
    uint32_t pad; /* zero */
};
_Static_assert(sizeof(struct snap_cpu_id) == 48, "snap_cpu_id is stored as is");

/* This host's identity, read with the cpuid instruction. */
void snap_cpu_id_probe(struct snap_cpu_id *out);

/* The first half of snap_cpu_id_check: saved well-formed and its vendor this host's. A state
 * that holds its VM's own CPUID needs no more: the guest kernel picked its vendor's code paths,
 * and each feature it may use is checked against this host's KVM instead (vm_cpuid.h). */
int snap_cpu_vendor_check(const struct snap_cpu_id *saved, const struct snap_cpu_id *host,
                          const char *label, struct error *err);

/* Can a guest saved on `saved` run on `host`? 0 if the vendors are equal and the host has
 * every feature bit the saved CPU had (leaf 1 ECX's OSXSAVE and hypervisor bits are not
 * compared: they say how the CPU is run, not what it can do). Otherwise -ENODEV and one line
 * starting with label (e.g. "snapshot DIR/state.kiln"): "snapshot was taken on a GenuineIntel
 * CPU, this host is AuthenticAMD", or the first missing bit by leaf, register, bit and (for
 * common ones) name, with how many more are missing. -EINVAL if saved is malformed (vendor
 * without NUL, nonzero pad). */
int snap_cpu_id_check(const struct snap_cpu_id *saved, const struct snap_cpu_id *host,
                      const char *label, struct error *err);

#endif
