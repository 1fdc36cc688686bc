/* The allow-lists, one table per group of calls, each entry with the reason kiln makes it;
 * sandbox_policy() says which groups make up each kind of thread's filter. */
#include <linux/kvm.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "kiln/sandbox/seccomp_policy.h"

#define ALLOW(name, why)                                                                           \
    {                                                                                              \
        SCMP_SYS(name), SANDBOX_ANY_ARGS, 0, 0, 0, 0, why                                          \
    }
/* ioctl with this request only (its second argument). */
#define IOCTL(request, why)                                                                        \
    {                                                                                              \
        SCMP_SYS(ioctl), SANDBOX_ARG_EQUALS, 1, 0, (request), 0, why                               \
    }
/* A mapping call whose protection (third argument) does not ask for PROT_EXEC: kiln never
 * makes code at run time, so a filtered thread cannot either. */
#define NO_EXEC(name, why)                                                                         \
    {                                                                                              \
        SCMP_SYS(name), SANDBOX_ARG_MASKED, 2, PROT_EXEC, 0, 0, why                                \
    }
#define LIST(name, rules)                                                                          \
    {                                                                                              \
        name, rules, sizeof(rules) / sizeof(rules[0])                                              \
    }

/* What glibc, libuv and kiln's own logging do on any thread. */
static const struct sandbox_rule runtime_rules[] = {
    ALLOW(futex, "mutexes, condition variables, pthread_join"),
    ALLOW(rt_sigreturn, "return from the vCPU kick handler and the SIGSYS reporter"),
    ALLOW(rt_sigprocmask, "glibc and libuv mask signals around thread and signal work"),
    NO_EXEC(mmap, "malloc's arenas and large blocks"),
    NO_EXEC(mprotect, "malloc grows a thread arena by making reserved pages writable"),
    ALLOW(munmap, "free() of large blocks, teardown of guest RAM and kvm_run"),
    ALLOW(mremap, "realloc() of large blocks"),
    ALLOW(madvise, "malloc trims arenas; glibc frees an exiting thread's stack"),
    ALLOW(brk, "malloc's main arena"),
    ALLOW(write, "log lines on stderr; eventfd wake-ups (uv_async_send, irqfd)"),
    ALLOW(poll, "a log line waits a moment for a full non-blocking stderr (log.c)"),
    ALLOW(clock_gettime, "timestamps and timeouts when the vDSO falls back to the kernel"),
    ALLOW(gettimeofday, "the same, through the older call"),
    ALLOW(clock_nanosleep, "a short wait for a non-blocking output to drain"),
    ALLOW(nanosleep, "the same, through the older call"),
    ALLOW(sched_yield, "glibc spin locks"),
    ALLOW(gettid, "glibc's raise and pthread_kill"),
    ALLOW(getpid, "glibc's raise and pthread_kill"),
    ALLOW(tgkill, "pthread_kill: the loop kicks a vCPU out of KVM_RUN; abort()"),
    ALLOW(restart_syscall, "a sleep interrupted by a signal carries on"),
    ALLOW(exit, "a thread ends (vCPU threads at stop)"),
    ALLOW(exit_group, "the process ends"),
#ifdef KILN_TSAN_BUILD
    /* Only in the ThreadSanitizer build (KILN_TSAN), whose runtime makes calls of its own on a
     * thread kiln has filtered, so that the TSan tier runs with the filters on. */
    ALLOW(sched_getaffinity, "TSan: a new thread's start (a VM rebuilt by --on-reset restart)"),
#endif
};

/* A vCPU thread: KVM_RUN and what its exits need. Device registers are handled here under
 * each device's lock; the I/O itself happens on the loop. */
static const struct sandbox_rule vcpu_rules[] = {
    IOCTL(KVM_RUN, "running the guest; also completes an exit before a pause"),
    IOCTL(KVM_GET_REGS, "the diagnostic line for an exit kiln cannot handle; host-compat"),
    IOCTL(KVM_SET_REGS, "host-compat: the registers after an emulated instruction"),
    IOCTL(KVM_GET_SREGS, "the diagnostic line (CPL); host-compat"),
    IOCTL(KVM_SET_SREGS, "host-compat: an emulated instruction's segment changes"),
    IOCTL(KVM_GET_XSAVE, "host-compat: the FPU/SSE state an emulated instruction reads"),
    IOCTL(KVM_SET_XSAVE, "host-compat: the FPU/SSE state an emulated instruction changes"),
    IOCTL(KVM_GET_VCPU_EVENTS, "host-compat: injecting #BP for int3"),
    IOCTL(KVM_SET_VCPU_EVENTS, "host-compat: injecting #BP for int3"),
    IOCTL(KVM_TRANSLATE, "host-compat and the diagnostic line: guest linear to physical"),
    IOCTL(KVM_IRQ_LINE, "the 16550's interrupt line follows its registers"),
    /* virtio-net sets the TAP's offloads when the driver sets DRIVER_OK or resets the
     * device, a register write. */
    IOCTL(TUNSETOFFLOAD, "virtio-net: the TAP's offloads follow the negotiated features"),
};

/* The event loop: virtio queues, consoles, TAPs, timers and signals, then teardown. */
static const struct sandbox_rule loop_rules[] = {
    ALLOW(epoll_wait, "libuv's loop"),
    ALLOW(epoll_pwait, "libuv's loop"),
    ALLOW(epoll_ctl, "libuv starts and stops polling fds"),
    IOCTL(KVM_GET_DIRTY_LOG,
          "a migration's last dirty pages, read with the device state at the stop"),
    IOCTL(KVM_SET_USER_MEMORY_REGION, "a migration turns dirty-page logging on, vCPUs held"),
    ALLOW(shutdown, "a migration's cancel unblocks the sender's socket"),
    ALLOW(read, "ioeventfds, libuv's signal pipe and async eventfd, stdin, TAP frames"),
    ALLOW(writev, "a TAP frame from the guest's buffers"),
    ALLOW(close, "teardown: fds of devices, consoles, the loop, KVM"),
    /* kiln test's runner gives each VM a socket pair as stdout (libuv's pipes). */
    ALLOW(sendto, "console output on a socket stdout: send(MSG_DONTWAIT) never blocks the loop"),
    ALLOW(accept4, "a socket console's client"),
    ALLOW(getrandom, "virtio-rng's entropy"),
    ALLOW(fcntl, "libuv sets fds non-blocking; a migration hands disk locks over (F_OFD_SETLK)"),
    ALLOW(unlink, "a socket console removes its socket at teardown"),
    ALLOW(rt_sigaction, "teardown: libuv restores signal handlers when its handles close"),
    IOCTL(KVM_IRQ_LINE, "interrupt lines of the platform devices and the power button"),
    IOCTL(KVM_IRQFD, "teardown: a virtio slot releases its irqfd"),
    IOCTL(KVM_IOEVENTFD, "teardown: a virtio slot releases its ioeventfds"),
    IOCTL(TIOCGWINSZ, "virtio-console: the terminal's size on SIGWINCH"),
    IOCTL(TCGETS, "teardown: the terminal's mode"),
    IOCTL(TCSETS, "teardown: the terminal back out of raw mode"),
    IOCTL(FIONBIO, "libuv sets fds non-blocking"),
    /* Not seen in the tests (the driver sets features from a vCPU): kept because a device
     * reset from the loop's side would make it. */
    IOCTL(TUNSETOFFLOAD, "virtio-net: the TAP's offloads follow the negotiated features"),
};

/* A pty console's reader check (console_endpoint.c): the loop opens the slave side and asks
 * how much is unread. */
static const struct sandbox_rule pty_rules[] = {
    ALLOW(openat, "a pty console: opening its slave to see if anyone has it open"),
    IOCTL(TIOCINQ, "a pty console: how many bytes its reader has not read"),
};

/* virtio-balloon (guest_mem_discard): the loop punches a balloon's pages out of guest RAM. */
static const struct sandbox_rule balloon_rules[] = {
    ALLOW(fallocate, "virtio-balloon: inflated and reported pages go back to the host"),
};

/* libuv's thread pool: virtio-blk requests (disk_image.c). */
static const struct sandbox_rule io_pool_rules[] = {
    ALLOW(preadv, "virtio-blk reads"),
    ALLOW(pwritev, "virtio-blk writes, and WRITE_ZEROES where fallocate cannot"),
    ALLOW(fdatasync, "virtio-blk FLUSH and writethrough"),
    /* Not seen in the tests (the guest kit sends no DISCARD): a Linux guest's discard. */
    ALLOW(fallocate, "virtio-blk DISCARD and WRITE_ZEROES on an image file"),
};

/* The snapshot writer (vm_snapshot.c): started before the loop's filter, only with the
 * control API, it reads the paused VM's KVM state and writes a snapshot's files where the
 * API's client said. */
static const struct sandbox_rule snapshot_rules[] = {
    ALLOW(openat, "the snapshot's files and folder"),
    ALLOW(mkdir, "the snapshot's folder"),
    ALLOW(mkdirat, "the same, through the newer call"),
    ALLOW(newfstatat, "disk images' sizes and times; the folder's state"),
    ALLOW(fstat, "the same"),
    ALLOW(getdents64, "is the snapshot's folder empty?"),
    ALLOW(pwrite64, "the memory file's data pages"),
    ALLOW(lseek, "stdio's writes of the configuration"),
    ALLOW(ftruncate, "the memory file's size (its zero pages are holes)"),
    ALLOW(fsync, "the files reach the disk before they are renamed"),
    ALLOW(fdatasync, "the disk images are flushed before the snapshot"),
    ALLOW(rename, "a finished file takes its name"),
    ALLOW(renameat, "the same, through the newer call"),
    ALLOW(unlink, "a file left half-written by a failure"),
    ALLOW(unlinkat, "the same, through the newer call"),
    ALLOW(close, "the snapshot's files"),
    ALLOW(read, "the writer's own use of files it made"),
    ALLOW(readlink, "the configuration's paths made absolute (realpath)"),
    ALLOW(getcwd, "the same, for a path given relative to the current folder"),
    ALLOW(access, "a diff's base folder must hold a state.kiln"),
    ALLOW(faccessat, "the same, through the newer call"),
    ALLOW(faccessat2, "the same, through the newest call"),
};

/* Reading a paused VM's state out of KVM, and its dirty log: the snapshot writer and the
 * migration sender. */
static const struct sandbox_rule kvm_state_rules[] = {
    IOCTL(KVM_GET_IRQCHIP, "the PICs and the IOAPIC"),
    IOCTL(KVM_GET_PIT2, "the PIT"),
    IOCTL(KVM_GET_CLOCK, "kvmclock"),
    IOCTL(KVM_GET_REGS, "a paused vCPU's registers"),
    IOCTL(KVM_GET_SREGS, "a paused vCPU's segment and control registers"),
    IOCTL(KVM_GET_FPU, "a paused vCPU's FPU, where KVM lacks XSAVE"),
    IOCTL(KVM_GET_XSAVE, "a paused vCPU's XSAVE area"),
    IOCTL(KVM_GET_XSAVE2, "the same, sized by KVM_CAP_XSAVE2"),
    IOCTL(KVM_GET_XCRS, "a paused vCPU's XCR0"),
    IOCTL(KVM_GET_MSRS, "a paused vCPU's MSRs"),
    IOCTL(KVM_GET_LAPIC, "a paused vCPU's local APIC"),
    IOCTL(KVM_GET_VCPU_EVENTS, "a paused vCPU's pending events"),
    IOCTL(KVM_GET_DEBUGREGS, "a paused vCPU's debug registers"),
    IOCTL(KVM_GET_MP_STATE, "a paused vCPU's MP state"),
    IOCTL(KVM_GET_TSC_KHZ, "a paused vCPU's TSC rate"),
    IOCTL(KVM_SET_USER_MEMORY_REGION,
          "the first snapshot or migration turns on dirty-page logging"),
    IOCTL(KVM_GET_DIRTY_LOG, "the pages the guest wrote since the last snapshot (diffs) or round"),
};

/* The migration sender (vm_migrate.c): one connection to the receiver, and what the state it
 * sends needs (the disks' identities and their flush). Started with the control API. */
static const struct sandbox_rule migrate_rules[] = {
    ALLOW(socket, "the connection to the receiver"),
    ALLOW(connect, "the same"),
    ALLOW(getsockopt, "a connect's result (SO_ERROR) after waiting for it"),
    ALLOW(setsockopt, "the connection's options (TCP_NODELAY, buffer sizes)"),
    ALLOW(fcntl, "the socket made non-blocking for a connect with a timeout"),
    ALLOW(sendto, "the stream to the receiver"),
    ALLOW(sendmsg, "the same"),
    ALLOW(recvfrom, "the receiver's answers"),
    ALLOW(recvmsg, "the same"),
    ALLOW(read, "the same"),
    ALLOW(ppoll, "waiting for the socket, with a timeout"),
    ALLOW(shutdown, "a cancel unblocks the thread"),
    ALLOW(close, "the connection"),
    ALLOW(getrandom, "the encrypted stream's keys and nonces (libsodium)"),
    ALLOW(newfstatat, "the disks' sizes and times in the state"),
    ALLOW(fstat, "the same"),
    ALLOW(readlink, "the disks' paths made absolute (realpath)"),
    ALLOW(getcwd, "the same, for a path given relative to the current folder"),
    ALLOW(fdatasync, "the disk images are flushed before the switch-over"),
    ALLOW(lseek, "a disk image's size (a block device's is its length)"),
    /* glibc's malloc opens /proc/sys/vm/overcommit_memory the first time a thread's own heap
     * shrinks; refused, it keeps the heap, and the thread still opens no file. */
    {SCMP_SYS(openat), SANDBOX_ANY_ARGS, 0, 0, 0, 1, "refused (ENOSYS): glibc's malloc asks once"},
};

/* --on-reset restart: the loop thread builds the next VM (vm_build, vm_boot, the consoles,
 * the vCPU threads), so it keeps these; a guest-reset loop cannot make it drop them. */
static const struct sandbox_rule rebuild_rules[] = {
    ALLOW(openat, "/dev/kvm, the kernel, initrd, disks, /dev/net/tun, console files, ptys"),
    ALLOW(ioctl, "KVM set-up of the VM and vCPUs, TAPs, terminals (every request)"),
    ALLOW(pread64, "loading the kernel and initrd"),
    ALLOW(memfd_create, "the new VM's guest RAM"),
    ALLOW(ftruncate, "the size of the new VM's guest RAM"),
    ALLOW(fstat, "the kernel's, initrd's and disks' sizes"),
    ALLOW(newfstatat, "the same: glibc's fstat"),
    ALLOW(eventfd2, "ioeventfds, irqfds, libuv's async handles"),
    ALLOW(epoll_create1, "the new VM's libuv loop"),
    ALLOW(pipe2, "libuv's signal pipe"),
    ALLOW(socket, "a socket console's listening socket"),
    ALLOW(bind, "a socket console's listening socket"),
    ALLOW(listen, "a socket console's listening socket"),
    ALLOW(connect, "a socket console checks that no one listens on its path"),
    ALLOW(rt_sigaction, "the vCPU kick handler, libuv's signal handles"),
    ALLOW(set_robust_list, "a new vCPU thread's start"),
    ALLOW(rseq, "a new vCPU thread's start"),
    ALLOW(prctl, "a vCPU thread's name and its no-new-privileges bit before its filter"),
    ALLOW(seccomp, "a new vCPU thread installs its own filter (it can only narrow it)"),
    ALLOW(sched_getaffinity, "--cpus pin=: the list checked again against the process's CPUs"),
    ALLOW(sched_setaffinity, "--cpus pin=: a new vCPU thread pins itself to its CPU"),
    ALLOW(setpriority, "--nice: set again as the VM is rebuilt (the value it already has)"),
    /* clone3's flags are in memory a filter cannot read: make glibc fall back to clone. */
    {SCMP_SYS(clone3), SANDBOX_ANY_ARGS, 0, 0, 0, 1, "glibc then starts threads with clone"},
    {SCMP_SYS(clone), SANDBOX_ARG_MASKED, 0, CLONE_THREAD, CLONE_THREAD, 0,
     "new vCPU threads (threads only: no new process)"},
};

/* The VM's own cgroup (jail/cgroup_own.c): the process is moved back through cgroup.procs,
 * opened beforehand (write is in every list), and the folder removed through its parent's fd. */
static const struct sandbox_rule cgroup_rules[] = {
    ALLOW(unlinkat, "kiln's own cgroup folder removed at exit (AT_REMOVEDIR)"),
};

static const struct sandbox_rule_list runtime = LIST("runtime", runtime_rules);
static const struct sandbox_rule_list cgroup = LIST("cgroup", cgroup_rules);
static const struct sandbox_rule_list vcpu = LIST("vcpu", vcpu_rules);
static const struct sandbox_rule_list loop = LIST("loop", loop_rules);
static const struct sandbox_rule_list pty = LIST("pty", pty_rules);
static const struct sandbox_rule_list balloon = LIST("balloon", balloon_rules);
static const struct sandbox_rule_list io_pool = LIST("io pool", io_pool_rules);
static const struct sandbox_rule_list rebuild = LIST("rebuild", rebuild_rules);
static const struct sandbox_rule_list snapshot = LIST("snapshot", snapshot_rules);
static const struct sandbox_rule_list kvm_state = LIST("kvm state", kvm_state_rules);
static const struct sandbox_rule_list migrate = LIST("migrate", migrate_rules);

size_t sandbox_policy(enum sandbox_thread kind, unsigned needs,
                      const struct sandbox_rule_list *lists[SANDBOX_MAX_LISTS])
{
    size_t n = 0;
    lists[n++] = &runtime;
    switch (kind) {
    case SANDBOX_THREAD_VCPU:
        lists[n++] = &vcpu;
        break;
    case SANDBOX_THREAD_LOOP:
        lists[n++] = &loop;
        if (needs & SANDBOX_NEED_PTY)
            lists[n++] = &pty;
        if (needs & SANDBOX_NEED_CGROUP)
            lists[n++] = &cgroup;
        if (needs & SANDBOX_NEED_BALLOON)
            lists[n++] = &balloon;
        if (needs & SANDBOX_NEED_REBUILD) {
            /* The vCPU threads it starts inherit its filter under their own: both must
             * allow a vCPU's calls. */
            lists[n++] = &rebuild;
            lists[n++] = &vcpu;
            lists[n++] = &io_pool;
        }
        break;
    case SANDBOX_THREAD_IO_POOL:
        lists[n++] = &io_pool;
        break;
    case SANDBOX_THREAD_SNAPSHOT:
        lists[n++] = &snapshot;
        lists[n++] = &kvm_state;
        break;
    case SANDBOX_THREAD_MIGRATE:
        lists[n++] = &migrate;
        lists[n++] = &kvm_state;
        break;
    case SANDBOX_THREAD_KINDS:
        break;
    }
    return n;
}
