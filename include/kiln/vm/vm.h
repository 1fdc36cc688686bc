/* struct vm: everything one virtual machine owns — KVM fds, guest RAM, buses, devices, vCPUs
 * and the libuv loop — so all VM state is reachable from one place (save/restore later). */
#ifndef KILN_VM_H
#define KILN_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <uv.h>

#include "kiln/acpi/acpi.h"
#include "kiln/boot/boot.h"
#include "kiln/vm/bus.h"
#include "kiln/config/config.h"
#include "kiln/host/console.h"
#include "kiln/vm/guest_mem.h"
#include "kiln/hostcompat/hostcompat.h"
#include "kiln/vm/kvm.h"
#include "kiln/util/log.h"
#include "kiln/vm/platform.h"
#include "kiln/vm/stop.h"
#include "kiln/vcpu/vcpu.h"
#include "kiln/vcpu/vcpu_state.h"
#include "kiln/virtio/virtio_slot.h"
#include "kiln/vm/vm_device.h"

/* Platform devices (serial, i8042, test-exit, POST code, RTC, PM) and every virtio slot. */
#define VM_MAX_DEVICES (8 + PLATFORM_VIRTIO_MMIO_MAX)

struct api_server;  /* api/api_server.h */
struct vm_snapshot; /* vm_snapshot.c */

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
    struct kvm_cpuid2 *guest_cpuid;   /* what the guest sees: the supported table with the CPU
                                       * template applied, or a restored VM's saved table */
    struct cpu_template cpu_template; /* --cpu-template as read (its MSRs go to each vCPU); for
                                       * a restore, empty */
    struct hostcompat hostcompat;     /* decided before the kernel loads; see hostcompat.h */
    struct boot_entry entry;
    uint64_t rsdp_gpa; /* ACPI tables, built before the kernel is loaded */

    struct bus pio_bus;
    struct bus mmio_bus;
    struct console console;     /* ttyS0's, or hvc0's with --console virtio */
    struct console hvc_console; /* --vconsole: hvc0's, beside ttyS0 */

    /* Every device, in the order vm_devices_create builds them (vm_devices.c); virtio ones
     * sit in slot i at PLATFORM_VIRTIO_MMIO_BASE + i * 4 KiB. */
    struct vm_device devices[VM_MAX_DEVICES];
    unsigned ndevices;
    struct virtio_slot virtio[PLATFORM_VIRTIO_MMIO_MAX];
    unsigned nvirtio;

    struct vcpu_env vcpu_env;         /* what the vCPUs see of this VM */
    struct vcpu_state_caps vcpu_caps; /* what this KVM saves of a vCPU (snapshots) */
    bool vcpu_caps_ok;
    char vcpu_caps_error[sizeof(((struct error *)0)->msg)]; /* why not, when !vcpu_caps_ok */
    struct vcpu *vcpus;
    unsigned nvcpus;
    /* The filters vm_run builds for the threads it starts, by kind (vm_sandbox.c); the
     * loop's is built when the loop enters it. */
    struct sandbox_filter thread_filters[SANDBOX_THREAD_KINDS];

    uv_loop_t loop;
    bool loop_initialized; /* from vm_create on: devices deliver I/O completions to it */
    bool loop_ready;       /* vm_run set up its handles: stop requests can wake it */
    uv_async_t stop_async;
    uv_signal_t sigint;
    uv_signal_t sigterm;
    uv_signal_t sigwinch;   /* terminal size -> virtio-console (only with one) */
    uv_timer_t grace_timer; /* hard stop after the power button, unless the guest powers off */
    int stop_signal;        /* the first SIGINT/SIGTERM received, 0 before */
    char stop_source[48];   /* who asked for that stop: "SIGTERM", "the API" */

    /* The control API (vm_api.c, docs/api.md), served on the loop when main hands over a
     * listening socket; state only the loop thread touches. */
    int api_fd; /* the listening socket, owned by main; -1: no API */
    struct api_server *api;
    bool paused;                  /* by PUT /vm/pause */
    uint64_t run_started_ns;      /* uv_hrtime() when vm_run started: the uptime's origin */
    struct vm_snapshot *snapshot; /* the snapshot writer (vm_snapshot.c), with the API */
    struct vm_migrate *migrate;   /* the migration sender (vm_migrate.c), with the API */
    bool receiving;     /* built by kiln receive: disks are locked only at the switch-over */
    bool state_follows; /* built for a restore or kiln receive: the saved state (its CPUID too)
                         * replaces what the config would boot */

    pthread_mutex_t stop_lock;
    int stopping; /* read atomically by vCPU threads */
    struct vm_result result;
    unsigned boot_index; /* 0, or how many guest resets this process has rebuilt the VM for */
};

/* The console hvc0 feeds: the VM's only one with --console virtio, else --vconsole's. */
static inline struct console *vm_hvc_console(struct vm *vm)
{
    return vm->config->vconsole ? &vm->hvc_console : &vm->console;
}

/* Builds the machine from a validated config: KVM, RAM, interrupt controllers, devices and
 * vCPUs, but no kernel. On failure everything built so far is released (vm_destroy). */
int vm_build(struct vm *vm, const struct vm_config *config, struct error *err);
/* vm_build with guest RAM mapped from a snapshot's memory file (guest_mem_init_from), for a
 * restore: the CPU template is not read, the snapshot's CPUID replaces it (vm_cpuid.h). */
int vm_build_from(struct vm *vm, const struct vm_config *config, int memory_fd, struct error *err);
/* The same for kiln receive when receiving is true: the disk images are opened but not locked
 * (the source VM holds them until the switch-over; vm_devices_hand_over locks them). */
int vm_build_as(struct vm *vm, const struct vm_config *config, int memory_fd, bool receiving,
                struct error *err);

/* Boots the config's kernel on a built VM: firmware tables (ACPI, MP table, reset vector), the
 * kernel and initrd in RAM, the boot vCPU's registers. A restore loads state instead. */
int vm_boot(struct vm *vm, struct error *err);

/* vm_build + vm_boot, then the console sinks (boot_index > 0: a restart after a guest reset,
 * which keeps the console file's contents). On failure everything is released. */
int vm_create(struct vm *vm, const struct vm_config *config, unsigned boot_index,
              struct error *err);

/* Builds the VM a snapshot in dir holds (docs/snapshots.md), from config (the snapshot's,
 * loaded by the caller): RAM mapped from its memory file (lazily; copy_memory reads it all
 * in), every piece of state loaded, the consoles opened. Instead of vm_create. */
int vm_restore(struct vm *vm, const struct vm_config *config, const char *dir, bool copy_memory,
               struct error *err);
/* Starts a worker thread of the VM's (the snapshot writer, the migration sender) with the
 * loop's signals blocked in it. 0 or an errno value, as pthread_create. */
int vm_start_worker(pthread_t *thread, void *(*run)(void *), void *arg);
/* Blocks the loop's signals on the calling thread, the old mask in *old: threads started
 * meanwhile (libuv's pool) inherit the block. */
void vm_block_loop_signals(sigset_t *old);

/* The console sinks of a VM built by vm_build_from (vm_create and vm_restore do it themselves):
 * for kiln receive. */
int vm_open_consoles(struct vm *vm, struct error *err);

/* Runs until the guest or the host stops it; the outcome is in vm->result. */
int vm_run(struct vm *vm, struct error *err);

void vm_destroy(struct vm *vm);

/* Thread-safe; the first request wins. Usable as a struct stop_notifier callback. */
void vm_request_stop(void *vm, enum vm_stop_reason reason, int exit_status, const char *message);
bool vm_is_stopping(struct vm *vm);
bool vm_stop_requested(void *vm); /* vm_is_stopping for struct stop_notifier */

/* For devices: drive a GSI's level (KVM_IRQ_LINE), and Ctrl-A x on a console. */
void vm_set_irq_level(void *vm, unsigned gsi, int level);
void vm_console_quit(void *vm);

/* The virtio slots as the firmware describes them (ACPI or the kernel command line). */
size_t vm_virtio_describe(const struct vm *vm, struct acpi_virtio_device *out);
/* The host terminal changed size: tells a virtio console (F_SIZE). */
void vm_devices_terminal_resized(struct vm *vm, uint16_t cols, uint16_t rows);

/* Parks every vCPU outside KVM_RUN (vcpu_pause) and returns when all are; devices keep
 * running on the loop. vm_resume lets them run on. Any thread but a vCPU's. */
void vm_pause(struct vm *vm);
void vm_resume(struct vm *vm);

/* The VM generation ID (docs/acpi.md): a debug log line with the ID, and the GED's
 * interrupt that tells the guest it changed (after a restore wrote a new one). */
void vm_log_generation(struct vm *vm, const uint8_t id[ACPI_VMGENID_SIZE], const char *what);
void vm_notify_generation(struct vm *vm);

/* One press of the ACPI power button (the GED interrupt): an ACPI guest shuts down. */
void vm_press_power_button(struct vm *vm);

/* What SIGTERM does (loop thread): the first request presses the power button and stops the
 * VM with status 128 + signum if the guest has not powered off after --shutdown-grace; a
 * second one, or a grace of 0, stops it at once. source names the asker in messages. */
void vm_graceful_stop(struct vm *vm, int signum, const char *source);

#endif
