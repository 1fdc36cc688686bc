/* /dev/kvm: opening and probing the host's KVM (API version, capabilities, vCPU limits).
 * The device path can be overridden with KILN_KVM_DEVICE so error paths are testable. */
#ifndef KILN_KVM_H
#define KILN_KVM_H

#include "kiln/util/error.h"

#define KVM_DEFAULT_DEVICE "/dev/kvm"

struct kvm_host {
    int fd;
    const char *path;
    int vcpu_mmap_size;
    int max_vcpus;
};

/* path NULL: $KILN_KVM_DEVICE or /dev/kvm. Checks the API version and every capability kiln
 * relies on, failing with one line that names what is missing. */
int kvm_host_open(struct kvm_host *kvm, const char *path, struct error *err);
void kvm_host_close(struct kvm_host *kvm);

/* KVM_CREATE_VM; returns the VM fd or a negative errno with a message. */
int kvm_host_create_vm(struct kvm_host *kvm, struct error *err);

#endif
