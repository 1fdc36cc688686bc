/* struct vm: everything one virtual machine owns — KVM fds, guest RAM, buses, devices, vCPUs
 * and the libuv loop — so all VM state is reachable from one place (save/restore later). */
#ifndef KILN_VM_H
#define KILN_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <uv.h>

#include "kiln/acpi.h"
#include "kiln/boot.h"
#include "kiln/bus.h"
#include "kiln/config.h"
#include "kiln/console.h"
#include "kiln/devices/i8042.h"
#include "kiln/devices/pm.h"
#include "kiln/devices/rtc.h"
#include "kiln/devices/serial.h"
#include "kiln/devices/test_exit.h"
#include "kiln/devices/virtio_blk.h"
#include "kiln/devices/virtio_console.h"
#include "kiln/devices/virtio_net.h"
#include "kiln/devices/virtio_rng.h"
#include "kiln/guest_mem.h"
#include "kiln/hostcompat.h"
#include "kiln/kvm.h"
#include "kiln/log.h"
#include "kiln/platform.h"
#include "kiln/stop.h"
#include "kiln/vcpu.h"
#include "kiln/virtio/virtio_slot.h"

struct vm_result {
    enum vm_stop_reason reason;
    int exit_status;
    char message[512];
    int signal; /* SIGINT/SIGTERM received during the run, even if something else stopped it */
};

struct vm {
    struct log log;
    const struct vm_config *config;
    struct kvm_host kvm;
    int fd;
    struct guest_mem mem;
    struct kvm_cpuid2 *supported_cpuid;
    struct hostcompat hostcompat; /* decided before the kernel loads; see hostcompat.h */
    struct boot_entry entry;
    uint64_t rsdp_gpa; /* ACPI tables, built before the kernel is loaded */

    struct bus pio_bus;
    struct bus mmio_bus;
    struct console console;     /* ttyS0's, or hvc0's with --console virtio */
    struct console hvc_console; /* --vconsole: hvc0's, beside ttyS0 */
    struct serial serial;
    struct i8042 i8042;
    struct test_exit test_exit;
    struct rtc rtc;
    struct pm pm;

    /* virtio-mmio devices, slot i at PLATFORM_VIRTIO_MMIO_BASE + i * 4 KiB (vm_virtio.c):
     * disks, then nets, then the rng, then the virtio console */
    struct virtio_slot virtio[PLATFORM_VIRTIO_MMIO_MAX];
    unsigned nvirtio;
    struct virtio_blk *disks[PLATFORM_VIRTIO_MMIO_MAX];
    unsigned ndisks;
    struct virtio_net *nets[PLATFORM_VIRTIO_MMIO_MAX];
    unsigned nnets;
    struct virtio_rng *rng;
    struct virtio_console_dev *vconsole; /* --console virtio or --vconsole: hvc0 */

    struct vcpu_env vcpu_env; /* what the vCPUs see of this VM */
    struct vcpu *vcpus;
    unsigned nvcpus;

    uv_loop_t loop;
    bool loop_initialized; /* from vm_create on: devices deliver I/O completions to it */
    bool loop_ready;       /* vm_run set up its handles: stop requests can wake it */
    uv_async_t stop_async;
    uv_signal_t sigint;
    uv_signal_t sigterm;
    uv_signal_t sigwinch;   /* terminal size -> virtio-console (only with one) */
    uv_timer_t grace_timer; /* hard stop after the power button, unless the guest powers off */
    int stop_signal;        /* the first SIGINT/SIGTERM received, 0 before */

    pthread_mutex_t stop_lock;
    int stopping; /* read atomically by vCPU threads */
    struct vm_result result;
};

/* The console hvc0 feeds: the VM's only one with --console virtio, else --vconsole's. */
static inline struct console *vm_hvc_console(struct vm *vm)
{
    return vm->config->vconsole ? &vm->hvc_console : &vm->console;
}

/* Builds the whole VM from a validated config (boot_index > 0: a restart after a guest
 * reset, which keeps the console file's contents): KVM, RAM, platform, devices, kernel, vCPUs.
 * On failure everything built so far is released and err says what went wrong. */
int vm_create(struct vm *vm, const struct vm_config *config, unsigned boot_index,
              struct error *err);

/* Runs until the guest or the host stops it; the outcome is in vm->result. */
int vm_run(struct vm *vm, struct error *err);

void vm_destroy(struct vm *vm);

/* Thread-safe; the first request wins. Usable as a struct stop_notifier callback. */
void vm_request_stop(void *vm, enum vm_stop_reason reason, int exit_status, const char *message);
bool vm_is_stopping(struct vm *vm);

/* vm_virtio.c: the virtio devices of the config, in slot order. */
int vm_virtio_create(struct vm *vm, struct error *err);
size_t vm_virtio_describe(const struct vm *vm, struct acpi_virtio_device *out);
int vm_virtio_attach(struct vm *vm, struct error *err);
void vm_virtio_detach(struct vm *vm);
void vm_virtio_log_stats(const struct vm *vm); /* debug lines at the end of a run */
void vm_virtio_destroy(struct vm *vm);

/* Parks every vCPU outside KVM_RUN (vcpu_pause) and returns when all are; devices keep
 * running on the loop. vm_resume lets them run on. Any thread but a vCPU's. */
void vm_pause(struct vm *vm);
void vm_resume(struct vm *vm);

/* One press of the ACPI power button (the GED interrupt): an ACPI guest shuts down. */
void vm_press_power_button(struct vm *vm);

#endif
