/* Per-thread seccomp filters: each kind of kiln thread gets an allow-list of the system calls
 * it makes, installed on that thread (and the threads it creates later) once set-up is done. */
#ifndef KILN_SANDBOX_H
#define KILN_SANDBOX_H

#include "kiln/util/error.h"

/* --seccomp. OFF is 0 so a zeroed vcpu_env (unit tests) installs nothing. */
enum sandbox_mode {
    SANDBOX_OFF,  /* no filter */
    SANDBOX_LOG,  /* a forbidden call is named on stderr and fails with ENOSYS; kiln carries on */
    SANDBOX_KILL, /* a forbidden call kills the whole process (SIGSYS): the default */
};

/* The kinds of thread a VM process has. A console has no thread of its own: its sinks run on
 * the event loop, so their calls are in the loop's list. */
enum sandbox_thread {
    SANDBOX_THREAD_VCPU,     /* KVM_RUN and the port I/O and MMIO exits */
    SANDBOX_THREAD_LOOP,     /* the libuv loop: virtio queues, consoles, TAPs, then teardown */
    SANDBOX_THREAD_IO_POOL,  /* libuv's thread pool: virtio-blk reads, writes and flushes */
    SANDBOX_THREAD_SNAPSHOT, /* the snapshot writer: KVM state out, the snapshot's files */
    SANDBOX_THREAD_MIGRATE,  /* the migration sender: dirty log, KVM state, one socket */
    SANDBOX_THREAD_KINDS
};

/* What a VM's configuration adds to its loop's list (a bit set). */
enum sandbox_need {
    /* A pty console: the loop opens the pty's slave side every 200 ms to see if anyone
     * reads it (openat). */
    SANDBOX_NEED_PTY = 1u << 0,
    /* --on-reset restart: the loop thread builds the VM again after a guest reset, so it
     * keeps what building takes (opening files, KVM set-up, starting vCPU threads). */
    SANDBOX_NEED_REBUILD = 1u << 1,
    /* --cpu-quota or --cpu-weight without --jail: at exit, after the VM, the process leaves
     * its own cgroup and removes the folder (unlinkat on a folder opened beforehand). */
    SANDBOX_NEED_CGROUP = 1u << 2,
    /* A balloon: the loop gives the guest's inflated and reported pages back to the host by
     * punching them out of the RAM's memfd (fallocate; madvise is everyone's already). */
    SANDBOX_NEED_BALLOON = 1u << 3,
};

/* "vcpu", "event loop", ...: how messages name a kind. */
const char *sandbox_thread_name(enum sandbox_thread kind);

/* What the filters forbid, done once beforehand: glibc reads the time zone on the first
 * gmtime_r (the RTC's, on a vCPU thread), which opens /etc/localtime. Call it on one thread
 * before any thread enters its sandbox (tzset is not safe to race with itself in practice:
 * ThreadSanitizer reports it, since glibc's own lock is invisible to it). */
void sandbox_prepare(void);

/* A kind's filter made once, as BPF, and loaded by each thread of that kind: a VM builds its
 * threads' filters on the main thread before it starts them (vm_sandbox_build), so that
 * libseccomp's many small blocks come and go in one place instead of in every thread. */
struct sock_filter;
struct sandbox_filter {
    enum sandbox_thread kind;
    enum sandbox_mode mode;    /* SANDBOX_OFF: loading does nothing */
    struct sock_filter *insns; /* the BPF program; NULL when off */
    unsigned short count;
};

/* Builds kind's filter with the needs (a set of enum sandbox_need); nothing to build when
 * off. Free with sandbox_filter_free. */
int sandbox_filter_build(struct sandbox_filter *f, enum sandbox_thread kind, unsigned needs,
                         enum sandbox_mode mode, struct error *err);
/* Installs a built filter on the calling thread (and the threads it creates later); in
 * SANDBOX_LOG mode also the SIGSYS reporter. */
int sandbox_filter_load(const struct sandbox_filter *f, struct error *err);
void sandbox_filter_free(struct sandbox_filter *f);

/* Installs kind's filter (with the needs, a set of enum sandbox_need) on the calling thread;
 * threads it creates later inherit it. Nothing with SANDBOX_OFF. In SANDBOX_LOG mode it also
 * installs the SIGSYS reporter. */
int sandbox_enter(enum sandbox_thread kind, unsigned needs, enum sandbox_mode mode,
                  struct error *err);

/* How many syscall numbers the SIGSYS reporter can name (x86-64 numbers are below this). */
#define SANDBOX_MAX_SYSCALL 512

/* Installs the process's SIGSYS handler that names a forbidden call on stderr and makes it
 * fail with ENOSYS; idempotent. kind_name is what this thread's reports call it. */
int sandbox_reporter_install(const char *kind_name, struct error *err);

#endif
