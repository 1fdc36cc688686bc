/* One VM's life: build the machine (KVM, RAM, interrupt controllers, devices, vCPUs), boot a
 * kernel on it, run the libuv loop on this thread until a stop request, tear down in order. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kiln/acpi/acpi.h"
#include "kiln/vm/irq_routing.h"
#include "kiln/boot/layout.h"
#include "kiln/boot/mptable.h"
#include "kiln/vm/platform.h"
#include "kiln/boot/reset_vector.h"
#include "kiln/virtio/virtio_cmdline.h"
#include "kiln/vm/vm.h"
#include "kiln/vm/vm_api.h"
#include "kiln/vm/vm_cpuid.h"
#include "kiln/snapshot/snap_chain.h"
#include "kiln/snapshot/snap_dir.h"
#include "kiln/snapshot/snap_mem.h"
#include "kiln/vm/vm_migrate.h"
#include "kiln/vm/vm_placement.h"
#include "kiln/vm/vm_snapshot.h"
#include "kiln/vm/vm_sandbox.h"

void vm_request_stop(void *opaque, enum vm_stop_reason reason, int exit_status, const char *message)
{
    struct vm *vm = opaque;
    pthread_mutex_lock(&vm->stop_lock);
    bool first = vm->result.reason == VM_STOP_NONE;
    if (first) {
        vm->result.reason = reason;
        vm->result.exit_status = exit_status;
        snprintf(vm->result.message, sizeof(vm->result.message), "%s", message);
        __atomic_store_n(&vm->stopping, 1, __ATOMIC_SEQ_CST);
    }
    pthread_mutex_unlock(&vm->stop_lock);
    if (first && vm->loop_ready)
        uv_async_send(&vm->stop_async);
}

bool vm_is_stopping(struct vm *vm)
{
    return __atomic_load_n(&vm->stopping, __ATOMIC_SEQ_CST) != 0;
}

bool vm_stop_requested(void *vm)
{
    return vm_is_stopping(vm);
}

static int vm_ioctl(struct vm *vm, unsigned long request, void *arg, const char *name,
                    struct error *err)
{
    if (ioctl(vm->fd, request, arg) < 0)
        return error_fmt(err, -errno, "%s failed: %s", name, strerror(errno));
    return 0;
}

/* Fresh RAM is made as --memory says; a lazy restore maps its snapshot's file instead. */
static int map_guest_ram(struct vm *vm, int memory_fd, struct error *err)
{
    struct guest_mem_options opts = vm_placement_memory(vm->config);
    int r = memory_fd >= 0 ? guest_mem_init_from(&vm->mem, vm->config->memory_bytes, memory_fd, err)
                           : guest_mem_init_with(&vm->mem, vm->config->memory_bytes, &opts, err);
    if (r < 0)
        return r;
    for (int i = 0; i < vm->mem.nregions; i++) {
        struct kvm_userspace_memory_region region = {
            .slot = (uint32_t)i,
            .guest_phys_addr = vm->mem.regions[i].gpa,
            .memory_size = vm->mem.regions[i].size,
            .userspace_addr = (uint64_t)(uintptr_t)vm->mem.regions[i].hva,
        };
        r = vm_ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION", err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* The PC wiring the MADT and the MP table promise (irq_routing.c), in place of KVM's default,
 * which puts the PIT's GSI 0 on IOAPIC pin 0. */
static int set_gsi_routing(struct vm *vm, struct error *err)
{
    struct kvm_irq_routing *routing =
        calloc(1, sizeof(*routing) + IRQ_ROUTING_ENTRIES * sizeof(routing->entries[0]));
    if (!routing)
        return error_fmt(err, -ENOMEM, "GSI routing: out of memory");
    routing->nr = IRQ_ROUTING_ENTRIES;
    irq_routing_fill(routing->entries);
    int r = vm_ioctl(vm, KVM_SET_GSI_ROUTING, routing, "KVM_SET_GSI_ROUTING", err);
    free(routing);
    return r;
}

/* In-kernel LAPIC/IOAPIC/PIC and PIT, and the addresses KVM needs for real-mode support. */
static int create_platform(struct vm *vm, struct error *err)
{
    int r =
        vm_ioctl(vm, KVM_SET_TSS_ADDR, (void *)(uintptr_t)LAYOUT_KVM_TSS, "KVM_SET_TSS_ADDR", err);
    if (r < 0)
        return r;
    uint64_t identity_map = LAYOUT_KVM_IDENTITY_MAP;
    r = vm_ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &identity_map, "KVM_SET_IDENTITY_MAP_ADDR", err);
    if (r < 0)
        return r;
    r = vm_ioctl(vm, KVM_CREATE_IRQCHIP, NULL, "KVM_CREATE_IRQCHIP", err);
    if (r < 0)
        return r;
    r = set_gsi_routing(vm, err);
    if (r < 0)
        return r;
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    return vm_ioctl(vm, KVM_CREATE_PIT2, &pit, "KVM_CREATE_PIT2", err);
}

void vm_set_irq_level(void *opaque, unsigned gsi, int level)
{
    struct vm *vm = opaque;
    struct kvm_irq_level irq = {.irq = gsi, .level = (uint32_t)level};
    if (ioctl(vm->fd, KVM_IRQ_LINE, &irq) < 0)
        log_warn(&vm->log, "KVM_IRQ_LINE for GSI %u failed: %s", gsi, strerror(errno));
}

/* Tells the user where to find a pty console: they open it to see and type. */
static void print_pty_path(const struct console *console, const char *device)
{
    const char *path = console_pty_path(console);
    if (path)
        fprintf(stderr, "kiln: %s console on %s\n", device, path);
}

static int open_consoles(struct vm *vm, bool append, struct error *err)
{
    const struct vm_config *config = vm->config;
    int r =
        console_open(&vm->console, "--console", config->console, config->console_path, append, err);
    if (r == 0 && config->vconsole)
        r = console_open(&vm->hvc_console, "--vconsole", config->vconsole_kind,
                         config->vconsole_path, append, err);
    if (r < 0)
        return r;
    print_pty_path(&vm->console,
                   config->console_device == CONSOLE_ON_VIRTIO ? "hvc0 (virtio)" : "ttyS0");
    if (config->vconsole)
        print_pty_path(&vm->hvc_console, "hvc0 (virtio)");
    return 0;
}

/* The firmware's job: describe CPUs, interrupt controllers and devices to the guest, and be
 * at the reset vector for a guest that restarts by jumping there. */
static int build_firmware_tables(struct vm *vm, struct error *err)
{
    struct acpi_virtio_device virtio[PLATFORM_VIRTIO_MMIO_MAX];
    struct acpi_config acpi = {
        .ncpus = vm->config->cpus, .virtio = virtio, .vmgenid = vm->config->vmgenid};
    if (vm->config->device_discovery == DISCOVERY_ACPI)
        acpi.nvirtio = vm_virtio_describe(vm, virtio);
    int r = acpi_build(&vm->mem, &acpi, &vm->rsdp_gpa, err);
    uint8_t generation[ACPI_VMGENID_SIZE];
    if (r == 0 && acpi.vmgenid)
        r = acpi_vmgenid_renew(&vm->mem, generation, err);
    if (r == 0 && acpi.vmgenid)
        vm_log_generation(vm, generation, "VM generation ID");
    /* The MP table too, for kernels without ACPI; one with ACPI prefers the MADT. */
    if (r == 0)
        r = mptable_write(&vm->mem, vm->config->cpus, err);
    return r < 0 ? r : reset_vector_write(&vm->mem, err);
}

/* The user's command line, plus virtio_mmio.device= entries when devices are described there
 * instead of in the DSDT. */
static int virtio_cmdline(struct vm *vm, char **out, struct error *err)
{
    struct acpi_virtio_device virtio[PLATFORM_VIRTIO_MMIO_MAX];
    size_t n = 0;
    if (vm->config->device_discovery == DISCOVERY_CMDLINE)
        n = vm_virtio_describe(vm, virtio);
    if (virtio_cmdline_append(vm->config->cmdline, virtio, n, out) < 0)
        return error_fmt(err, -ENOMEM, "kernel command line: out of memory");
    return 0;
}

static int load_kernel(struct vm *vm, struct error *err)
{
    char *user_cmdline = NULL, *cmdline = NULL;
    int r = virtio_cmdline(vm, &user_cmdline, err);
    if (r < 0)
        return r;
    r = hostcompat_boot_cmdline(&vm->hostcompat, user_cmdline, &cmdline, &vm->log, err);
    free(user_cmdline);
    if (r < 0)
        return r;
    struct boot_config boot = {
        .kernel_path = vm->config->kernel_path,
        .initrd_path = vm->config->initrd_path,
        .cmdline = cmdline,
        .rsdp_gpa = vm->rsdp_gpa,
    };
    r = boot_load(&vm->mem, &boot, &vm->entry, err);
    free(cmdline); /* boot_load copied it into guest RAM */
    if (r < 0)
        return r;
    if (boot_state_write_tables(&vm->mem, vm->entry.mode) < 0)
        return error_fmt(err, -EFAULT, "guest memory too small for the boot page tables");
    log_info(&vm->log, "kernel '%s': %s, entry 0x%llx", boot.kernel_path, vm->entry.format,
             (unsigned long long)vm->entry.rip);
    return 0;
}

static int create_vcpus(struct vm *vm, struct error *err)
{
    if (vm->config->cpus > (unsigned)vm->kvm.max_vcpus)
        return error_fmt(err, -EINVAL, "--cpus: %u is more than this host's KVM allows (%d)",
                         vm->config->cpus, vm->kvm.max_vcpus);
    int r = vm_cpuid_build(vm, err);
    if (r < 0)
        return r;
    vm->vcpus = calloc(vm->config->cpus, sizeof(*vm->vcpus));
    if (!vm->vcpus)
        return error_fmt(err, -ENOMEM, "vCPUs: out of memory");
    vm->nvcpus = vm->config->cpus;
    for (unsigned i = 0; i < vm->nvcpus; i++)
        vm->vcpus[i].fd = -1;
    vm->vcpu_env = (struct vcpu_env){
        .vm_fd = vm->fd,
        .run_size = (size_t)vm->kvm.vcpu_mmap_size,
        .ncpus = vm->nvcpus,
        .pio_bus = &vm->pio_bus,
        .mmio_bus = &vm->mmio_bus,
        .mem = &vm->mem,
        .log = &vm->log,
        .cpuid = vm->guest_cpuid,
        .cpu_template = &vm->cpu_template,
        .hostcompat = &vm->hostcompat,
        .stop = {.request = vm_request_stop, .requested = vm_stop_requested, .opaque = vm},
        .sandbox_filter = &vm->thread_filters[SANDBOX_THREAD_VCPU],
        .pin_cpus = vm->config->cpu_pin,
        .npin_cpus = vm->config->ncpu_pin,
    };
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        r = vcpu_create(&vm->vcpus[i], &vm->vcpu_env, i, err);
        if (r < 0)
            return r;
    }
    /* What a snapshot will save of each vCPU; a host that cannot only loses snapshots. */
    struct error probe_err = {{0}};
    vm->vcpu_caps_ok =
        vcpu_state_probe(vm->kvm.fd, vm->fd, vm->vcpus[0].fd, &vm->vcpu_caps, &probe_err) == 0;
    if (!vm->vcpu_caps_ok)
        snprintf(vm->vcpu_caps_error, sizeof(vm->vcpu_caps_error), "%s", probe_err.msg);
    return 0;
}

/* The loop exists before the devices because block devices deliver I/O completions to it. */
static int init_loop(struct vm *vm, struct error *err)
{
    int r = uv_loop_init(&vm->loop);
    if (r < 0)
        return error_fmt(err, r, "event loop: %s", uv_strerror(r));
    vm->loop_initialized = true;
    return 0;
}

int vm_build(struct vm *vm, const struct vm_config *config, struct error *err)
{
    return vm_build_as(vm, config, -1, false, err);
}

static int build(struct vm *vm, const struct vm_config *config, int memory_fd, bool receiving,
                 bool state_follows, struct error *err);

int vm_build_from(struct vm *vm, const struct vm_config *config, int memory_fd, struct error *err)
{
    return build(vm, config, memory_fd, false, true, err);
}

int vm_build_as(struct vm *vm, const struct vm_config *config, int memory_fd, bool receiving,
                struct error *err)
{
    return build(vm, config, memory_fd, receiving, receiving, err);
}

static int build(struct vm *vm, const struct vm_config *config, int memory_fd, bool receiving,
                 bool state_follows, struct error *err)
{
    memset(vm, 0, sizeof(*vm));
    vm->receiving = receiving;
    vm->state_follows = state_follows;
    vm->fd = -1;
    vm->api_fd = -1;
    vm->kvm.fd = -1;
    vm->config = config;
    log_init(&vm->log, config->log_level);
    pthread_mutex_init(&vm->stop_lock, NULL);
    bus_init(&vm->pio_bus, "port I/O", &vm->log);
    bus_init(&vm->mmio_bus, "MMIO", &vm->log);
    /* Placement first: a pin list the process cannot use, or a nice value it may not take,
     * fails before anything is made, and every thread the VM starts inherits the nice value. */
    int r = vm_placement_check_pins(config, err);
    if (r == 0)
        r = vm_placement_set_nice(config, err);
    if (r == 0)
        r = kvm_host_open(&vm->kvm, NULL, err);
    if (r == 0)
        r = hostcompat_init(&vm->hostcompat, config->host_compat, vm->kvm.fd, &vm->log, err);
    if (r == 0)
        r = vm->fd = kvm_host_create_vm(&vm->kvm, err);
    if (r >= 0)
        r = map_guest_ram(vm, memory_fd, err);
    if (r == 0)
        r = create_platform(vm, err);
    if (r == 0)
        r = init_loop(vm, err);
    if (r == 0)
        r = vm_devices_create(vm, err);
    if (r == 0)
        r = create_vcpus(vm, err);
    if (r < 0)
        vm_destroy(vm);
    return r < 0 ? r : 0;
}

int vm_boot(struct vm *vm, struct error *err)
{
    int r = build_firmware_tables(vm, err);
    if (r == 0)
        r = load_kernel(vm, err);
    if (r == 0)
        r = vcpu_set_boot_registers(&vm->vcpus[0], &vm->entry, err);
    return r;
}

int vm_create(struct vm *vm, const struct vm_config *config, unsigned boot_index, struct error *err)
{
    int r = vm_build(vm, config, err);
    if (r < 0)
        return r;
    vm->boot_index = boot_index;
    r = vm_boot(vm, err);
    /* The console sink is opened last among the inputs so that a bad kernel or missing
     * KVM never truncates the user's console file. */
    if (r == 0)
        r = open_consoles(vm, boot_index > 0, err);
    if (r < 0)
        vm_destroy(vm);
    return r;
}

/* A diff's RAM: its chain's diffs laid over the full snapshot's RAM already in place, oldest
 * first, so each page ends as the newest diff holding it has it. */
static int apply_diffs(struct vm *vm, const struct snap_chain *chain, struct error *err)
{
    int r = 0;
    for (unsigned i = chain->count - 1; r == 0 && i-- > 0;) {
        char diff[PATH_MAX + 32], dirty[PATH_MAX + 32];
        snprintf(diff, sizeof(diff), "%s/%s", chain->dirs[i], SNAP_DIFF_FILE);
        snprintf(dirty, sizeof(dirty), "%s/%s", chain->dirs[i], SNAP_DIRTY_FILE);
        r = snap_mem_apply_dirty(diff, dirty, vm->mem.mapping, vm->mem.size, err);
    }
    return r;
}

int vm_restore(struct vm *vm, const struct vm_config *config, const char *dir, bool copy_memory,
               struct error *err)
{
    struct snap_chain *chain = malloc(sizeof(*chain));
    if (!chain)
        return error_fmt(err, -ENOMEM, "restore: out of memory");
    char path[PATH_MAX + 32];
    int fd = -1;
    int r = vm_snapshot_chain(config, dir, chain, err);
    if (r == 0) {
        snprintf(path, sizeof(path), "%s/%s", chain->dirs[chain->count - 1], SNAP_MEMORY_FILE);
        r = snap_mem_open(path, config->memory_bytes, &fd, err);
    }
    if (r < 0) {
        free(chain);
        return r;
    }
    /* Lazy: the full snapshot's file mapped privately, the diffs' pages copied over it. */
    r = vm_build_from(vm, config, copy_memory ? -1 : fd, err);
    if (r < 0) {
        close(fd);
        free(chain);
        return r;
    }
    if (copy_memory)
        r = snap_mem_copy_in(fd, vm->mem.mapping, vm->mem.size, err);
    close(fd);
    if (r == 0)
        r = apply_diffs(vm, chain, err);
    free(chain);
    if (r == 0)
        r = vm_snapshot_restore(vm, dir, err);
    if (r == 0)
        r = open_consoles(vm, false, err);
    if (r < 0)
        vm_destroy(vm);
    return r;
}

void vm_block_loop_signals(sigset_t *old)
{
    /* The loop's signals are not a worker's business; SIGSYS stays open for --seccomp log. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGWINCH);
    sigaddset(&mask, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &mask, old);
}

int vm_start_worker(pthread_t *thread, void *(*run)(void *), void *arg)
{
    sigset_t old;
    vm_block_loop_signals(&old);
    int e = pthread_create(thread, NULL, run, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return e;
}

int vm_open_consoles(struct vm *vm, struct error *err)
{
    return open_consoles(vm, false, err);
}

static void on_stop_requested(uv_async_t *handle)
{
    struct vm *vm = handle->data;
    for (unsigned i = 0; i < vm->nvcpus; i++)
        vcpu_stop(&vm->vcpus[i]);
    /* Join before closing any handle: vCPU threads may still uv_async_send() until they exit. */
    for (unsigned i = 0; i < vm->nvcpus; i++)
        vcpu_join(&vm->vcpus[i]);
    vm_devices_detach(vm);
    vm_snapshot_writer_stop(vm);
    vm_migrate_thread_stop(vm);
    vm_api_stop(vm);
    /* The signal handles stay open (unreferenced) until vm_run has blocked the signals and
     * drained libuv's signal pipe: closing them here could drop a SIGTERM libuv had already
     * caught, and a VM that then restarts after a reset would never stop. */
    uv_close((uv_handle_t *)&vm->grace_timer, NULL);
    uv_close((uv_handle_t *)&vm->stop_async, NULL);
}

void vm_pause(struct vm *vm)
{
    /* Ask them all first, then wait: the vCPUs park in parallel. */
    for (unsigned i = 0; i < vm->nvcpus; i++)
        vcpu_pause_request(&vm->vcpus[i]);
    for (unsigned i = 0; i < vm->nvcpus; i++)
        vcpu_wait_paused(&vm->vcpus[i]);
}

void vm_resume(struct vm *vm)
{
    for (unsigned i = 0; i < vm->nvcpus; i++)
        vcpu_resume(&vm->vcpus[i]);
}

void vm_log_generation(struct vm *vm, const uint8_t id[ACPI_VMGENID_SIZE], const char *what)
{
    char text[ACPI_VMGENID_TEXT_SIZE];
    acpi_vmgenid_format(id, text);
    log_debug(&vm->log, "%s %s", what, text);
}

void vm_notify_generation(struct vm *vm)
{
    /* Like the power button: an edge on one of the GED's interrupts, whose _EVT then runs
     * Notify(VGEN, 0x80). */
    vm_set_irq_level(vm, PLATFORM_VMGENID_GSI, 1);
    vm_set_irq_level(vm, PLATFORM_VMGENID_GSI, 0);
}

void vm_press_power_button(struct vm *vm)
{
    /* The GED's interrupt is edge-triggered: a pulse is one press. */
    vm_set_irq_level(vm, PLATFORM_GED_GSI, 1);
    vm_set_irq_level(vm, PLATFORM_GED_GSI, 0);
}

static const char *signal_name(int signum)
{
    return signum == SIGINT ? "SIGINT" : "SIGTERM";
}

static void on_grace_expired(uv_timer_t *handle)
{
    struct vm *vm = handle->data;
    char message[160];
    snprintf(message, sizeof(message), "stopped by %s (the guest did not power off within %u s)",
             vm->stop_source, vm->config->shutdown_grace_seconds);
    vm_request_stop(vm, VM_STOP_SIGNAL, EXIT_SIGNAL_BASE + vm->stop_signal, message);
}

void vm_graceful_stop(struct vm *vm, int signum, const char *source)
{
    if (vm_is_stopping(vm))
        return;
    unsigned grace = vm->config->shutdown_grace_seconds;
    if (vm->stop_signal == 0 && grace > 0) {
        vm->stop_signal = signum;
        snprintf(vm->stop_source, sizeof(vm->stop_source), "%s", source);
        if (vm->paused) { /* a parked guest cannot answer the button */
            vm_resume(vm);
            vm->paused = false;
        }
        vm_press_power_button(vm);
        log_warn(&vm->log,
                 "%s: pressed the guest's power button; stopping in %u s (send it again to stop "
                 "now)",
                 source, grace);
        uv_timer_start(&vm->grace_timer, on_grace_expired, (uint64_t)grace * 1000, 0);
        return;
    }
    char message[96];
    snprintf(message, sizeof(message), "stopped by %s", source);
    vm_request_stop(vm, VM_STOP_SIGNAL, EXIT_SIGNAL_BASE + signum, message);
}

/* First signal: ask the guest to shut down (power button) and give it a grace period;
 * a second signal, or no grace period, stops the VM at once. */
static void on_signal(uv_signal_t *handle, int signum)
{
    struct vm *vm = handle->data;
    pthread_mutex_lock(&vm->stop_lock);
    vm->result.signal = signum; /* so a guest reset racing with it does not restart the VM */
    pthread_mutex_unlock(&vm->stop_lock);
    vm_graceful_stop(vm, signum, signal_name(signum));
}

void vm_console_quit(void *opaque)
{
    vm_request_stop(opaque, VM_STOP_SIGNAL, EXIT_SIGNAL_BASE + SIGINT,
                    "stopped from the console (Ctrl-A x)");
}

/* main() blocks SIGINT/SIGTERM while no loop is there to handle them (between boots, during
 * set-up), so a signal then is held, not fatal; the running loop takes them. */
static void set_stop_signals_blocked(bool blocked)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

static bool has_virtio_console(const struct vm *vm)
{
    return vm->config->console_device == CONSOLE_ON_VIRTIO || vm->config->vconsole;
}

/* virtio-console's F_SIZE: the size of the terminal on stdout, if hvc0 writes there. */
static void on_window_change(uv_signal_t *handle, int signum)
{
    struct vm *vm = handle->data;
    struct winsize ws;
    if (vm_hvc_console(vm)->kind == CONSOLE_STDIO && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
        vm_devices_terminal_resized(vm, ws.ws_col, ws.ws_row);
}

static int setup_loop(struct vm *vm, struct error *err)
{
    uv_async_init(&vm->loop, &vm->stop_async, on_stop_requested);
    vm->stop_async.data = vm;
    uv_signal_init(&vm->loop, &vm->sigint);
    uv_signal_init(&vm->loop, &vm->sigterm);
    vm->sigint.data = vm->sigterm.data = vm;
    uv_timer_init(&vm->loop, &vm->grace_timer);
    vm->grace_timer.data = vm;
    uv_signal_start(&vm->sigint, on_signal, SIGINT);
    uv_signal_start(&vm->sigterm, on_signal, SIGTERM);
    /* They must not keep the loop alive: the loop ends when the VM's work is done. */
    uv_unref((uv_handle_t *)&vm->sigint);
    uv_unref((uv_handle_t *)&vm->sigterm);
    if (has_virtio_console(vm)) {
        uv_signal_init(&vm->loop, &vm->sigwinch);
        vm->sigwinch.data = vm;
        uv_signal_start(&vm->sigwinch, on_window_change, SIGWINCH);
        uv_unref((uv_handle_t *)&vm->sigwinch);
        on_window_change(&vm->sigwinch, SIGWINCH); /* the size at start */
    }
    set_stop_signals_blocked(false); /* one that arrived while we were building is handled now */
    vm->loop_ready = true;
    vm->run_started_ns = uv_hrtime();
    int r = vm_devices_attach(vm, err);
    if (r == 0 && vm->api_fd >= 0)
        r = vm_api_start(vm, err);
    return r;
}

/* After the loop: block SIGINT/SIGTERM again (main holds them between boots), let the loop
 * dispatch one libuv caught just before (on_signal records it, so main will not restart),
 * then close the signal handles. */
static void finish_signals(struct vm *vm)
{
    set_stop_signals_blocked(true);
    if (!vm->loop_ready)
        return;
    /* uv_run returns at once, without polling, from a loop with nothing referenced; the signal
     * handles are unreferenced, so without this a SIGTERM libuv had caught but not yet
     * dispatched was lost, and --on-reset restart booted the guest again (1 stop in ~50). */
    uv_ref((uv_handle_t *)&vm->sigint);
    uv_ref((uv_handle_t *)&vm->sigterm);
    uv_run(&vm->loop, UV_RUN_NOWAIT);
    uv_close((uv_handle_t *)&vm->sigint, NULL);
    uv_close((uv_handle_t *)&vm->sigterm, NULL);
    if (has_virtio_console(vm))
        uv_close((uv_handle_t *)&vm->sigwinch, NULL);
    uv_run(&vm->loop, UV_RUN_NOWAIT);
}

/* The sink gets a bounded time for the guest's last output, so a stdout nobody reads cannot
 * hold kiln after the VM stopped; what it did not take is named in one line. */
static void drain_console(struct vm *vm, struct console *console)
{
    size_t dropped = console_drain(console, CONSOLE_DRAIN_MS);
    if (dropped > 0)
        log_warn(&vm->log,
                 "%s: dropped the last %zu bytes of guest output (its reader did not take them "
                 "within %u ms)",
                 console->label, dropped, CONSOLE_DRAIN_MS);
}

int vm_run(struct vm *vm, struct error *err)
{
    int r = vcpu_install_kick_handler(err);
    if (r == 0)
        r = setup_loop(vm, err);
    /* Everything is set up: the filters go in now, each thread's before the guest can reach
     * it (docs/security.md). The pool's and the vCPUs' before the loop's, which they would
     * otherwise inherit. */
    if (r == 0 && vm->config->seccomp != SANDBOX_OFF)
        sandbox_prepare();
    if (r == 0)
        r = vm_sandbox_build(vm, err);
    if (r == 0)
        r = vm_sandbox_io_pool(vm, err);
    for (unsigned i = 0; r == 0 && vm->paused && i < vm->nvcpus; i++)
        vcpu_pause_request(&vm->vcpus[i]); /* kiln restore --paused: parked from the start */
    for (unsigned i = 0; r == 0 && i < vm->nvcpus; i++)
        r = vcpu_start(&vm->vcpus[i], err);
    if (r == 0 && vm->api_fd >= 0)
        r = vm_snapshot_writer_start(vm, err);
    if (r == 0 && vm->api_fd >= 0)
        r = vm_migrate_thread_start(vm, err);
    if (r == 0)
        r = vm_sandbox_loop(vm, err);
    if (r < 0) {
        if (vm->loop_ready) {
            vm_request_stop(vm, VM_STOP_CRASH, EXIT_KILN_ERROR, err->msg);
            uv_run(&vm->loop, UV_RUN_DEFAULT);
        }
        finish_signals(vm);
        return r;
    }
    /* A stop requested before the loop existed (none today) still needs its wakeup. */
    if (vm_is_stopping(vm))
        uv_async_send(&vm->stop_async);
    uv_run(&vm->loop, UV_RUN_DEFAULT);
    finish_signals(vm);
    drain_console(vm, &vm->console);
    if (vm->config->vconsole)
        drain_console(vm, &vm->hvc_console);
    log_debug(&vm->log, "unknown accesses: %llu port I/O, %llu MMIO",
              (unsigned long long)bus_unknown_accesses(&vm->pio_bus),
              (unsigned long long)bus_unknown_accesses(&vm->mmio_bus));
    hostcompat_log_stats(&vm->hostcompat, &vm->log);
    vm_devices_log_stats(vm);
    return 0;
}

void vm_destroy(struct vm *vm)
{
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        vcpu_stop(&vm->vcpus[i]);
        vcpu_join(&vm->vcpus[i]);
    }
    if (vm->loop_initialized)
        vm_snapshot_writer_stop(vm); /* it may still read the vCPUs' state */
    if (vm->loop_initialized)
        vm_migrate_thread_stop(vm);
    vm_devices_destroy(vm); /* lets block I/O still in flight finish on the loop first */
    if (vm->loop_initialized) {
        uv_run(&vm->loop, UV_RUN_NOWAIT); /* finish closing handles */
        uv_loop_close(&vm->loop);
        vm->loop_initialized = false;
        vm->loop_ready = false;
    }
    free(vm->api); /* its handles closed with the loop's */
    vm->api = NULL;
    vm_snapshot_free(vm);
    vm_migrate_free(vm);
    console_close(&vm->console);
    if (vm->config && vm->config->vconsole)
        console_close(&vm->hvc_console);
    for (unsigned i = 0; i < vm->nvcpus; i++)
        vcpu_destroy(&vm->vcpus[i]);
    free(vm->vcpus);
    vm->vcpus = NULL;
    vm->nvcpus = 0;
    vm_sandbox_free(vm);
    free(vm->supported_cpuid);
    vm->supported_cpuid = NULL;
    free(vm->guest_cpuid);
    vm->guest_cpuid = NULL;
    cpu_template_free(&vm->cpu_template);
    bus_destroy(&vm->pio_bus);
    bus_destroy(&vm->mmio_bus);
    guest_mem_destroy(&vm->mem);
    if (vm->fd >= 0)
        close(vm->fd);
    vm->fd = -1;
    kvm_host_close(&vm->kvm);
    pthread_mutex_destroy(&vm->stop_lock);
}
