/* Opening /dev/kvm and checking that it is a KVM we can use, with an error line for each
 * way it is not: missing, no permission, not KVM, wrong API, missing capability. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kiln/vm/kvm.h"

struct required_cap {
    int cap;
    const char *name;
    const char *why;
};

static const struct required_cap required_caps[] = {
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM"},
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "the in-kernel interrupt controllers"},
    {KVM_CAP_PIT2, "KVM_CAP_PIT2", "the in-kernel timer"},
    {KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING", "wiring the timer's IRQ 0 to IOAPIC pin 2"},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "the TSS area"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "CPUID setup"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "stopping vCPUs cleanly"},
    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD", "device doorbells"},
    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD", "device interrupts"},
};

static int open_error(const char *path, int e, struct error *err)
{
    if (e == ENOENT)
        return error_fmt(err, -e,
                         "%s: no such device (KVM is not available here: load the kvm module, or "
                         "set KILN_KVM_DEVICE to the KVM device path)",
                         path);
    if (e == EACCES || e == EPERM)
        return error_fmt(err, -e,
                         "%s: permission denied (expected read/write access: add the user to the "
                         "'kvm' group or run as root)",
                         path);
    return error_fmt(err, -e, "%s: cannot open: %s", path, strerror(e));
}

int kvm_host_open(struct kvm_host *kvm, const char *path, struct error *err)
{
    memset(kvm, 0, sizeof(*kvm));
    kvm->fd = -1;
    if (!path)
        path = getenv("KILN_KVM_DEVICE");
    if (!path || !*path)
        path = KVM_DEFAULT_DEVICE;
    kvm->path = path;

    kvm->fd = open(path, O_RDWR | O_CLOEXEC);
    if (kvm->fd < 0)
        return open_error(path, errno, err);

    int version = ioctl(kvm->fd, KVM_GET_API_VERSION, 0);
    if (version < 0) {
        int e = errno;
        kvm_host_close(kvm);
        return error_fmt(err, -ENODEV, "%s: not a KVM device (KVM_GET_API_VERSION failed: %s)",
                         path, strerror(e));
    }
    if (version != KVM_API_VERSION) {
        kvm_host_close(kvm);
        return error_fmt(err, -ENODEV, "%s: KVM API version %d (expected %d)", path, version,
                         KVM_API_VERSION);
    }
    for (size_t i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++) {
        if (ioctl(kvm->fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
            kvm_host_close(kvm);
            return error_fmt(err, -ENOTSUP, "%s: KVM lacks %s (needed for %s)", path,
                             required_caps[i].name, required_caps[i].why);
        }
    }
    kvm->vcpu_mmap_size = ioctl(kvm->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (kvm->vcpu_mmap_size <= 0) {
        kvm_host_close(kvm);
        return error_fmt(err, -ENODEV, "%s: KVM_GET_VCPU_MMAP_SIZE failed", path);
    }
    kvm->max_vcpus = ioctl(kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    if (kvm->max_vcpus <= 0)
        kvm->max_vcpus = ioctl(kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
    if (kvm->max_vcpus <= 0)
        kvm->max_vcpus = 4; /* the API's documented floor when neither cap answers */
    return 0;
}

void kvm_host_close(struct kvm_host *kvm)
{
    if (kvm->fd >= 0)
        close(kvm->fd);
    kvm->fd = -1;
}

int kvm_host_create_vm(struct kvm_host *kvm, struct error *err)
{
    int fd;
    do {
        fd = ioctl(kvm->fd, KVM_CREATE_VM, 0);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return error_fmt(err, -errno, "%s: KVM_CREATE_VM failed: %s", kvm->path, strerror(errno));
    return fd;
}
