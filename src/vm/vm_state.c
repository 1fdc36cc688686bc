/* Saving and restoring the VM-wide KVM state: the in-kernel PIC pair and IOAPIC
 * (KVM_GET/SET_IRQCHIP), the PIT (KVM_GET/SET_PIT2) and kvmclock (KVM_GET/SET_CLOCK). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kiln/util/bytes.h"
#include "kiln/vm/vm_state.h"

#define PIT_FLAGS   (KVM_PIT_FLAGS_HPET_LEGACY | KVM_PIT_FLAGS_SPEAKER_DATA_ON)
#define CLOCK_FLAGS (KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC)

static const struct {
    int id;
    const char *name;
    size_t offset; /* in struct vm_state */
    size_t size;   /* of the union member this chip uses */
} chips[] = {
    {KVM_IRQCHIP_PIC_MASTER, "pic_master", offsetof(struct vm_state, pic_master),
     sizeof(struct kvm_pic_state)},
    {KVM_IRQCHIP_PIC_SLAVE, "pic_slave", offsetof(struct vm_state, pic_slave),
     sizeof(struct kvm_pic_state)},
    {KVM_IRQCHIP_IOAPIC, "ioapic", offsetof(struct vm_state, ioapic),
     sizeof(struct kvm_ioapic_state)},
};
#define NCHIPS (sizeof(chips) / sizeof(chips[0]))

static struct kvm_irqchip *chip_out(struct vm_state *state, size_t i)
{
    return (struct kvm_irqchip *)((uint8_t *)state + chips[i].offset);
}

static const struct kvm_irqchip *chip_in(const struct vm_state *state, size_t i)
{
    return (const struct kvm_irqchip *)((const uint8_t *)state + chips[i].offset);
}

static int vm_ioctl(int fd, unsigned long request, const void *arg, const char *name,
                    struct error *err)
{
    if (ioctl(fd, request, arg) < 0)
        return error_fmt(err, -errno, "VM state: %s failed: %s", name, strerror(errno));
    return 0;
}

int vm_state_save(int vm_fd, struct vm_state *out, struct error *err)
{
    /* KVM copies each structure back whole: zeroed first, its unused bytes stay zero. */
    memset(out, 0, sizeof(*out));
    int r = 0;
    for (size_t i = 0; r == 0 && i < NCHIPS; i++) {
        struct kvm_irqchip *chip = chip_out(out, i);
        chip->chip_id = (uint32_t)chips[i].id;
        r = vm_ioctl(vm_fd, KVM_GET_IRQCHIP, chip, "KVM_GET_IRQCHIP", err);
    }
    if (r == 0)
        r = vm_ioctl(vm_fd, KVM_GET_PIT2, &out->pit, "KVM_GET_PIT2", err);
    if (r == 0)
        r = vm_ioctl(vm_fd, KVM_GET_CLOCK, &out->clock, "KVM_GET_CLOCK", err);
    if (r < 0)
        memset(out, 0, sizeof(*out));
    return r;
}

static int check_state(const struct vm_state *in, struct error *err)
{
    for (size_t i = 0; i < NCHIPS; i++) {
        const struct kvm_irqchip *chip = chip_in(in, i);
        if (chip->chip_id != (uint32_t)chips[i].id)
            return error_fmt(err, -EINVAL, "VM state: %s.chip_id is %u (expected %d)",
                             chips[i].name, chip->chip_id, chips[i].id);
        const uint8_t *unused = (const uint8_t *)&chip->chip + chips[i].size;
        if (chip->pad != 0 || !bytes_all_zero(unused, sizeof(chip->chip) - chips[i].size))
            return error_fmt(err, -EINVAL,
                             "VM state: %s has bytes set outside its chip state (expected 0)",
                             chips[i].name);
    }
    if (in->pit.flags & ~(uint32_t)PIT_FLAGS)
        return error_fmt(err, -EINVAL, "VM state: pit.flags is 0x%x (expected only bits 0x%x)",
                         in->pit.flags, (unsigned)PIT_FLAGS);
    if (!bytes_all_zero(in->pit.reserved, sizeof(in->pit.reserved)))
        return error_fmt(err, -EINVAL, "VM state: pit.reserved is not zero");
    if (in->clock.flags & ~(uint32_t)CLOCK_FLAGS)
        return error_fmt(err, -EINVAL, "VM state: clock.flags is 0x%x (expected only bits 0x%x)",
                         in->clock.flags, (unsigned)CLOCK_FLAGS);
    if (in->clock.pad0 != 0 || !bytes_all_zero(in->clock.pad, sizeof(in->clock.pad)))
        return error_fmt(err, -EINVAL, "VM state: clock padding is not zero");
    return 0;
}

int vm_state_restore(int vm_fd, const struct vm_state *in, struct error *err)
{
    int r = check_state(in, err);
    for (size_t i = 0; r == 0 && i < NCHIPS; i++)
        r = vm_ioctl(vm_fd, KVM_SET_IRQCHIP, chip_in(in, i), "KVM_SET_IRQCHIP", err);
    if (r == 0)
        r = vm_ioctl(vm_fd, KVM_SET_PIT2, &in->pit, "KVM_SET_PIT2", err);
    /* Only the value: with KVM_CLOCK_REALTIME KVM would add the wall time since the save. */
    struct kvm_clock_data clock = {.clock = in->clock.clock};
    if (r == 0)
        r = vm_ioctl(vm_fd, KVM_SET_CLOCK, &clock, "KVM_SET_CLOCK", err);
    return r;
}
