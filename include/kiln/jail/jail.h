/* The jail (`kiln run --jail DIR --uid U --gid G`, docs/security.md "Jail"): the VM in its own
 * namespaces and root, as U:G without capabilities. The plan is pure; jail_enter does the work. */
#ifndef KILN_JAIL_H
#define KILN_JAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kiln/config/config.h"
#include "kiln/util/error.h"

/* The kernel, initrd, CPU template, two console files, /dev/kvm and /dev/net/tun, and the
 * disks. */
#define JAIL_MAX_FILES  (7 + CONFIG_MAX_VIRTIO_DEVICES)
#define JAIL_INSIDE_MAX 32
/* memory.max is the guest's RAM plus this much for kiln itself (its heap, vCPU stacks, libuv,
 * the console buffers). */
#define JAIL_MEMORY_OVERHEAD (256ULL << 20)
#define JAIL_MAX_OPEN_FILES  4096 /* RLIMIT_NOFILE: vCPU fds, eventfds, disks, TAPs, the loop */

enum jail_file_kind {
    JAIL_FILE_BIND,   /* a host file bind-mounted onto an empty file in the root */
    JAIL_FILE_DEVICE, /* a character device made with mknod, owned by the uid and gid */
};

/* One file the jailed VM needs, and where it is inside the jail. */
struct jail_file {
    enum jail_file_kind kind;
    const char *host;             /* the host path (points into the config) */
    char inside[JAIL_INSIDE_MAX]; /* "/kernel", "/disk0", "/dev/kvm" */
    const char *what;             /* "the kernel", "disk 0", for messages */
    bool readonly;                /* bind-mounted read-only; the uid only reads it */
    bool create;                  /* a console file: made (owned by the uid) if missing */
};

struct jail_plan {
    struct jail_file files[JAIL_MAX_FILES];
    size_t count;
};

/* The files cfg's VM needs in its jail, in a fixed order: the kernel, the initrd, each disk,
 * the console files, /dev/kvm, and /dev/net/tun when it has TAPs. */
void jail_plan_make(const struct vm_config *cfg, struct jail_plan *plan);
/* Points cfg's paths at their names inside the jail (after jail_plan_make on the same cfg).
 * 0 or -ENOMEM. */
int jail_plan_rewrite(struct vm_config *cfg, const struct jail_plan *plan, struct error *err);
/* The VM's folder under the jail's DIR: its name, else "vm", then "-" and pid ("web-4242"). */
void jail_id(const struct vm_config *cfg, pid_t pid, char *buf, size_t size);

/* The cgroup v2 limits for cfg: memory.max in bytes and cpu.max's quota per 100 ms period
 * (--cpu-quota, else one CPU per vCPU). */
uint64_t jail_memory_max(const struct vm_config *cfg);
uint64_t jail_cpu_quota_us(const struct vm_config *cfg);
#define JAIL_CPU_PERIOD_US 100000

/* Writes text into dir/name (a cgroup file); 0, or one line naming the file. */
int jail_cgroup_write(const char *dir, const char *name, const char *text, struct error *err);

/* Makes dir (a cgroup v2 folder: ROOT/kiln/ID) with memory.max, cpu.max (and cpu.weight if
 * --cpu-weight gave one) for cfg and moves
 * pid into it, enabling the cpu and memory controllers on the way down from root. 0, or a
 * negative errno naming the file. */
int jail_cgroup_create(const char *root, const char *id, const struct vm_config *cfg, pid_t pid,
                       char *dir, size_t dir_size, struct error *err);

/* How the jailed child ended: exit_status, or signal if a signal ended it. */
struct jail_outcome {
    int exit_status;
    int signal;
};

/* Jails this process's VM: forks a child in new namespaces, pivots it into its root, drops it
 * to cfg's uid and gid, and rewrites cfg's paths. Returns 0 in the child, which then runs the
 * VM; JAIL_PARENT in the parent once the child is gone (outcome says how it ended); a negative
 * errno with err filled in either when something failed ("jail: cannot ..."). Needs root.
 * keep_fd (-1: none) stays open in the child: the control API's socket, bound outside. */
#define JAIL_PARENT 1
int jail_enter(struct vm_config *cfg, int keep_fd, struct jail_outcome *outcome, struct error *err);

/* The steps of jail_enter, each in its own file. */
int jail_root_build(const char *root, const struct jail_plan *plan, uid_t uid, gid_t gid,
                    struct error *err);
int jail_root_pivot(const char *root, struct error *err);
/* Closes every inherited fd but stdio and the two keep_fds (-1: none), sets the rlimits,
 * becomes cfg's uid and gid without capabilities and with no_new_privs. */
int jail_drop(const struct vm_config *cfg, const int keep_fds[2], struct error *err);
int jail_check_access(const struct jail_plan *plan, const struct vm_config *cfg, struct error *err);

#endif
