/* vCPU lifecycle and the KVM_RUN loop: port I/O and MMIO go to the buses synchronously; every
 * other exit reason stops the VM with a diagnostic; pause, resume and stop from other threads. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kiln/util/counter.h"
#include "kiln/vcpu/vcpu.h"
#include "kiln/vcpu/vcpu_state.h"

int vcpu_kick_signal(void)
{
    return SIGRTMIN;
}

static void on_kick_signal(int signo)
{
    (void)signo; /* only here to interrupt KVM_RUN with EINTR */
}

int vcpu_install_kick_handler(struct error *err)
{
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = on_kick_signal;
    sigemptyset(&action.sa_mask);
    if (sigaction(vcpu_kick_signal(), &action, NULL) < 0)
        return error_fmt(err, -errno, "cannot install the vCPU kick signal handler");
    return 0;
}

int vcpu_create(struct vcpu *vcpu, const struct vcpu_env *env, unsigned index, struct error *err)
{
    memset(vcpu, 0, sizeof(*vcpu));
    vcpu->env = env;
    vcpu->index = index;
    pthread_mutex_init(&vcpu->lock, NULL);
    pthread_cond_init(&vcpu->changed, NULL);
    vcpu->sync_ok = true;
    vcpu->fd = ioctl(env->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
    if (vcpu->fd < 0) {
        vcpu->fd = -1;
        return error_fmt(err, -errno, "vCPU %u: KVM_CREATE_VCPU failed: %s", index,
                         strerror(errno));
    }
    vcpu->run_size = env->run_size;
    vcpu->run = mmap(NULL, vcpu->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
    if (vcpu->run == MAP_FAILED) {
        vcpu->run = NULL;
        return error_fmt(err, -errno, "vCPU %u: cannot map kvm_run: %s", index, strerror(errno));
    }

    int r = vcpu_set_cpuid(vcpu, env->cpuid, err);
    if (r < 0)
        return r;
    r = vcpu_set_boot_msrs(vcpu->fd, err);
    if (r == 0 && env->cpu_template)
        r = cpu_template_set_msrs(env->cpu_template, vcpu->fd, index, err);
    if (r < 0)
        return r;
    return boot_state_vcpu_defaults(vcpu->fd, err);
}

int vcpu_set_cpuid(struct vcpu *vcpu, const struct kvm_cpuid2 *table, struct error *err)
{
    size_t cpuid_size = sizeof(struct kvm_cpuid2) + table->nent * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *cpuid = malloc(cpuid_size);
    if (!cpuid)
        return error_fmt(err, -ENOMEM, "vCPU %u: out of memory", vcpu->index);
    memcpy(cpuid, table, cpuid_size);
    cpuid_normalise(cpuid, vcpu->index, vcpu->env->ncpus);
    if (vcpu->env->hostcompat)
        hostcompat_adjust_cpuid(vcpu->env->hostcompat, cpuid);
    int r = ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid);
    int e = errno;
    free(cpuid);
    if (r < 0)
        return error_fmt(err, -e, "vCPU %u: KVM_SET_CPUID2 failed: %s", vcpu->index, strerror(e));
    return 0;
}

void vcpu_destroy(struct vcpu *vcpu)
{
    if (vcpu->run)
        munmap(vcpu->run, vcpu->run_size);
    if (vcpu->fd >= 0)
        close(vcpu->fd);
    vcpu->run = NULL;
    vcpu->fd = -1;
    if (vcpu->sync_ok) {
        pthread_cond_destroy(&vcpu->changed);
        pthread_mutex_destroy(&vcpu->lock);
    }
    vcpu->sync_ok = false;
}

const char *vcpu_exit_counter_name(enum vcpu_exit_counter counter)
{
    static const char *const names[VCPU_EXITS_COUNT] = {
        [VCPU_EXITS_IO] = "io",
        [VCPU_EXITS_MMIO] = "mmio",
        [VCPU_EXITS_HLT] = "hlt",
        [VCPU_EXITS_SHUTDOWN] = "shutdown",
        [VCPU_EXITS_SYSTEM_EVENT] = "system_event",
        [VCPU_EXITS_INTR] = "intr",
        [VCPU_EXITS_INTERNAL_ERROR] = "internal_error",
        [VCPU_EXITS_EMULATED] = "emulated",
        [VCPU_EXITS_OTHER] = "other",
    };
    return (unsigned)counter < VCPU_EXITS_COUNT ? names[counter] : "unknown";
}

void vcpu_read_exit_counters(const struct vcpu *vcpu, uint64_t out[VCPU_EXITS_COUNT])
{
    for (unsigned c = 0; c < VCPU_EXITS_COUNT; c++)
        out[c] = counter_read(&vcpu->exits[c]);
}

static void count_exit(struct vcpu *vcpu, enum vcpu_exit_counter counter)
{
    counter_add(&vcpu->exits[counter], 1);
}

/* The counter of an exit reason; internal errors are split by whether host-compat took them. */
static enum vcpu_exit_counter exit_counter_of(uint32_t reason)
{
    switch (reason) {
    case KVM_EXIT_IO:
        return VCPU_EXITS_IO;
    case KVM_EXIT_MMIO:
        return VCPU_EXITS_MMIO;
    case KVM_EXIT_HLT:
        return VCPU_EXITS_HLT;
    case KVM_EXIT_SHUTDOWN:
        return VCPU_EXITS_SHUTDOWN;
    case KVM_EXIT_SYSTEM_EVENT:
        return VCPU_EXITS_SYSTEM_EVENT;
    case KVM_EXIT_INTR:
        return VCPU_EXITS_INTR;
    default:
        return VCPU_EXITS_OTHER;
    }
}

static void handle_io(struct vcpu *vcpu)
{
    struct kvm_run *run = vcpu->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    /* count > 1 for rep ins/outs: KVM hands over all elements at once. */
    for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
        if (run->io.direction == KVM_EXIT_IO_OUT)
            bus_write(vcpu->env->pio_bus, run->io.port, data, run->io.size);
        else
            bus_read(vcpu->env->pio_bus, run->io.port, data, run->io.size);
    }
}

static void handle_mmio(struct vcpu *vcpu)
{
    struct kvm_run *run = vcpu->run;
    unsigned len = run->mmio.len <= sizeof(run->mmio.data) ? run->mmio.len : 8;
    if (run->mmio.is_write)
        bus_write(vcpu->env->mmio_bus, run->mmio.phys_addr, run->mmio.data, len);
    else
        bus_read(vcpu->env->mmio_bus, run->mmio.phys_addr, run->mmio.data, len);
}

/* The bytes at RIP: from KVM when it reports them, else read through the guest page tables. */
static size_t instruction_bytes(struct vcpu *vcpu, uint64_t rip, uint8_t *out, size_t max)
{
    struct kvm_run *run = vcpu->run;
    if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR &&
        run->emulation_failure.suberror == KVM_INTERNAL_ERROR_EMULATION &&
        run->emulation_failure.ndata >= 3 &&
        (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
        size_t n = run->emulation_failure.insn_size;
        if (n > sizeof(run->emulation_failure.insn_bytes))
            n = sizeof(run->emulation_failure.insn_bytes);
        if (n > max)
            n = max;
        memcpy(out, run->emulation_failure.insn_bytes, n);
        return n;
    }
    struct kvm_translation tr = {.linear_address = rip};
    if (ioctl(vcpu->fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid)
        return 0;
    /* Shrink until the read stays inside guest RAM (the instruction may end a region). */
    for (size_t n = max; n > 0; n--) {
        if (guest_mem_read(vcpu->env->mem, tr.physical_address, out, n) == 0)
            return n;
    }
    return 0;
}

static const char *exit_reason_name(uint32_t reason)
{
    switch (reason) {
    case KVM_EXIT_UNKNOWN:
        return "KVM_EXIT_UNKNOWN";
    case KVM_EXIT_EXCEPTION:
        return "KVM_EXIT_EXCEPTION";
    case KVM_EXIT_HLT:
        return "KVM_EXIT_HLT";
    case KVM_EXIT_FAIL_ENTRY:
        return "KVM_EXIT_FAIL_ENTRY";
    case KVM_EXIT_INTERNAL_ERROR:
        return "KVM_EXIT_INTERNAL_ERROR";
    default:
        return "unexpected exit";
    }
}

/* One line with what a developer needs to find the failing guest instruction. */
static void stop_with_diagnostic(struct vcpu *vcpu, const char *detail)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    memset(&regs, 0, sizeof(regs));
    memset(&sregs, 0, sizeof(sregs));
    ioctl(vcpu->fd, KVM_GET_REGS, &regs);
    ioctl(vcpu->fd, KVM_GET_SREGS, &sregs);

    uint8_t bytes[15];
    size_t n = instruction_bytes(vcpu, regs.rip, bytes, sizeof(bytes));
    char hex[3 * sizeof(bytes) + 1] = "unavailable";
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 3 * i, sizeof(hex) - 3 * i, "%02x%s", bytes[i], i + 1 < n ? " " : "");

    char message[512];
    snprintf(message, sizeof(message),
             "vCPU %u stopped: %s (exit reason %u%s%s) at RIP 0x%llx, CPL %u; instruction "
             "bytes: %s",
             vcpu->index, exit_reason_name(vcpu->run->exit_reason), vcpu->run->exit_reason,
             detail[0] ? ", " : "", detail, (unsigned long long)regs.rip,
             (unsigned)(sregs.cs.selector & 3), hex);
    stop_request(&vcpu->env->stop, VM_STOP_CRASH, EXIT_GUEST_CRASH, message);
}

/* Returns false when the vCPU should stop running. */
static bool handle_exit(struct vcpu *vcpu)
{
    struct kvm_run *run = vcpu->run;
    char detail[128] = "";
    if (run->exit_reason != KVM_EXIT_INTERNAL_ERROR)
        count_exit(vcpu, exit_counter_of(run->exit_reason));
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        handle_io(vcpu);
        return true;
    case KVM_EXIT_MMIO:
        handle_mmio(vcpu);
        return true;
    case KVM_EXIT_SHUTDOWN:
        stop_request(&vcpu->env->stop, VM_STOP_RESET, EXIT_GUEST_RESET,
                     "guest reset (triple fault: KVM_EXIT_SHUTDOWN)");
        return false;
    case KVM_EXIT_SYSTEM_EVENT:
        if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN) {
            stop_request(&vcpu->env->stop, VM_STOP_POWER_OFF, 0, "guest powered off");
            return false;
        }
        if (run->system_event.type == KVM_SYSTEM_EVENT_RESET) {
            stop_request(&vcpu->env->stop, VM_STOP_RESET, EXIT_GUEST_RESET, "guest reset");
            return false;
        }
        snprintf(detail, sizeof(detail), "system event %u", run->system_event.type);
        break;
    case KVM_EXIT_INTERNAL_ERROR:
        if (vcpu->env->hostcompat && hostcompat_handle_exit(vcpu->env->hostcompat, vcpu->fd, run,
                                                            vcpu->env->mem, vcpu->env->log)) {
            count_exit(vcpu, VCPU_EXITS_EMULATED);
            return true; /* emulated in kiln: run on */
        }
        count_exit(vcpu, VCPU_EXITS_INTERNAL_ERROR);
        snprintf(detail, sizeof(detail), "suberror %u%s", run->internal.suberror,
                 run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ? ": emulation failure"
                                                                        : "");
        break;
    case KVM_EXIT_FAIL_ENTRY:
        snprintf(detail, sizeof(detail), "hardware entry failure reason 0x%llx",
                 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        break;
    default:
        break;
    }
    stop_with_diagnostic(vcpu, detail);
    return false;
}

static int load_request(struct vcpu *vcpu)
{
    return __atomic_load_n(&vcpu->request, __ATOMIC_SEQ_CST);
}

/* KVM completes a port I/O or MMIO exit only on the next KVM_RUN (vcpu_state_complete_io runs
 * one with immediate_exit), so the state we park with is whole. */
static void complete_pending_exit(struct vcpu *vcpu)
{
    struct error err = {{0}};
    if (vcpu_state_complete_io(vcpu->fd, vcpu->run, &err) < 0)
        log_warn(vcpu->env->log, "vCPU %u: %s", vcpu->index, err.msg);
}

/* Waits while a pause is requested. Returns false when the thread must stop. */
static bool wait_while_paused(struct vcpu *vcpu)
{
    if (load_request(vcpu) == VCPU_REQUEST_PAUSE)
        complete_pending_exit(vcpu);
    pthread_mutex_lock(&vcpu->lock);
    while (vcpu->request == VCPU_REQUEST_PAUSE) {
        if (!vcpu->parked) {
            vcpu->parked = true;
            pthread_cond_broadcast(&vcpu->changed);
        }
        pthread_cond_wait(&vcpu->changed, &vcpu->lock);
    }
    vcpu->parked = false;
    bool run = vcpu->request == VCPU_REQUEST_RUN;
    pthread_mutex_unlock(&vcpu->lock);
    return run;
}

/* One KVM_RUN round and its exit. Returns false when the vCPU should stop running. */
static bool run_once(struct vcpu *vcpu)
{
    int r = ioctl(vcpu->fd, KVM_RUN, 0);
    if (r == 0)
        return handle_exit(vcpu);
    if (errno == EINTR || errno == EAGAIN) {
        count_exit(vcpu, errno == EINTR ? VCPU_EXITS_INTR : VCPU_EXITS_OTHER);
        return true; /* kicked: the request decides */
    }
    char message[256];
    snprintf(message, sizeof(message), "vCPU %u: KVM_RUN failed: %s", vcpu->index, strerror(errno));
    stop_request(&vcpu->env->stop, VM_STOP_CRASH, EXIT_GUEST_CRASH, message);
    return false;
}

/* The thread's seccomp filter, before the guest runs a single instruction on it (a vCPU
 * thread is what a hostile guest reaches first). Returns false, having asked the VM to stop,
 * if it cannot be installed. */
static bool enter_sandbox(struct vcpu *vcpu)
{
    struct error err = {{0}};
    if (!vcpu->env->sandbox_filter || sandbox_filter_load(vcpu->env->sandbox_filter, &err) == 0)
        return true;
    char message[600];
    snprintf(message, sizeof(message), "vCPU %u: %s", vcpu->index, err.msg);
    stop_request(&vcpu->env->stop, VM_STOP_CRASH, EXIT_KILN_ERROR, message);
    return false;
}

/* --cpus N,pin=LIST: this thread onto its host CPU, before it first runs the guest (and
 * before its filter, which does not allow sched_setaffinity). */
static bool pin_thread(struct vcpu *vcpu)
{
    if (vcpu->env->npin_cpus == 0)
        return true;
    unsigned cpu = vcpu->env->pin_cpus[vcpu->index % vcpu->env->npin_cpus];
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    int r = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (r == 0)
        return true;
    char message[160];
    snprintf(message, sizeof(message), "vCPU %u: cannot pin to host CPU %u: %s", vcpu->index, cpu,
             strerror(r));
    stop_request(&vcpu->env->stop, VM_STOP_CRASH, EXIT_KILN_ERROR, message);
    return false;
}

static void *vcpu_thread(void *arg)
{
    struct vcpu *vcpu = arg;
    char name[16];
    snprintf(name, sizeof(name), "kiln-vcpu%u", vcpu->index);
    pthread_setname_np(pthread_self(), name);

    bool filtered = pin_thread(vcpu) && enter_sandbox(vcpu);
    while (filtered) {
        /* Cleared before the request is read: a kick that comes after the read finds
         * immediate_exit set again, so KVM_RUN returns at once instead of missing it. */
        __atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
        if (load_request(vcpu) != VCPU_REQUEST_RUN && !wait_while_paused(vcpu))
            break;
        if (stop_is_requested(&vcpu->env->stop))
            break; /* the VM is ending: the guest must not run on, e.g. after its reset */
        if (!run_once(vcpu))
            break;
    }
    pthread_mutex_lock(&vcpu->lock);
    vcpu->exited = true;
    pthread_cond_broadcast(&vcpu->changed);
    pthread_mutex_unlock(&vcpu->lock);
    return NULL;
}

int vcpu_start(struct vcpu *vcpu, struct error *err)
{
    /* The thread inherits this mask: the kick signal must reach it, while SIGINT/SIGTERM/
     * SIGWINCH belong to the loop thread and would only interrupt KVM_RUN for nothing. */
    sigset_t mask, old;
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    sigdelset(&mask, vcpu_kick_signal());
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGWINCH);
    sigaddset(&mask, SIGCHLD);
    pthread_sigmask(SIG_SETMASK, &mask, &old);
    int r = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0)
        return error_fmt(err, -r, "vCPU %u: cannot start thread: %s", vcpu->index, strerror(r));
    vcpu->thread_started = true;
    return 0;
}

/* Makes KVM_RUN return (or not enter) so the thread reads its request. */
static void kick(struct vcpu *vcpu)
{
    /* immediate_exit covers the window where the thread is about to enter KVM_RUN;
     * the signal covers a thread already inside it. */
    __atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    pthread_kill(vcpu->thread, vcpu_kick_signal());
}

/* Sets the request (a stop is final) and kicks the thread if it may be in KVM_RUN. */
static void set_request(struct vcpu *vcpu, enum vcpu_request request)
{
    if (!vcpu->sync_ok)
        return;
    pthread_mutex_lock(&vcpu->lock);
    if (vcpu->request != VCPU_REQUEST_STOP)
        __atomic_store_n(&vcpu->request, request, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&vcpu->changed);
    pthread_mutex_unlock(&vcpu->lock);
    if (vcpu->thread_started && request != VCPU_REQUEST_RUN)
        kick(vcpu);
}

void vcpu_pause_request(struct vcpu *vcpu)
{
    set_request(vcpu, VCPU_REQUEST_PAUSE);
}

void vcpu_wait_paused(struct vcpu *vcpu)
{
    if (!vcpu->thread_started)
        return;
    pthread_mutex_lock(&vcpu->lock);
    while (!vcpu->parked && !vcpu->exited)
        pthread_cond_wait(&vcpu->changed, &vcpu->lock);
    pthread_mutex_unlock(&vcpu->lock);
}

void vcpu_pause(struct vcpu *vcpu)
{
    vcpu_pause_request(vcpu);
    vcpu_wait_paused(vcpu);
}

void vcpu_resume(struct vcpu *vcpu)
{
    if (!vcpu->sync_ok)
        return;
    pthread_mutex_lock(&vcpu->lock);
    bool paused = vcpu->request == VCPU_REQUEST_PAUSE;
    pthread_mutex_unlock(&vcpu->lock);
    if (paused)
        set_request(vcpu, VCPU_REQUEST_RUN);
}

bool vcpu_is_paused(struct vcpu *vcpu)
{
    if (!vcpu->sync_ok)
        return false;
    pthread_mutex_lock(&vcpu->lock);
    bool paused = vcpu->request == VCPU_REQUEST_PAUSE && (vcpu->parked || vcpu->exited);
    pthread_mutex_unlock(&vcpu->lock);
    return paused;
}

void vcpu_stop(struct vcpu *vcpu)
{
    set_request(vcpu, VCPU_REQUEST_STOP);
}

void vcpu_join(struct vcpu *vcpu)
{
    if (vcpu->thread_started)
        pthread_join(vcpu->thread, NULL);
    vcpu->thread_started = false;
}
