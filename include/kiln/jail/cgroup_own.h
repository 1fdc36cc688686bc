/* A cgroup of its own for a VM run without --jail, for --cpu-quota and --cpu-weight
 * (docs/placement.md): HOME/kiln/ID below the cgroup v2 folder kiln started in. */
#ifndef KILN_JAIL_CGROUP_OWN_H
#define KILN_JAIL_CGROUP_OWN_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "kiln/config/config.h"
#include "kiln/util/error.h"

/* Leaving happens after the VM, under the loop thread's seccomp filter (SANDBOX_NEED_CGROUP),
 * so what it takes is opened on the way in: no path is opened on the way out. */
struct cgroup_own {
    char home[PATH_MAX]; /* the cgroup v2 folder the process came from */
    char dir[PATH_MAX];  /* HOME/kiln/ID while the process is in it, else "" (fds unset) */
    char id[96];
    int home_fd;  /* HOME */
    int kiln_fd;  /* HOME/kiln */
    int procs_fd; /* HOME/cgroup.procs, open for writing */
    /* Giving the cpu controller back on the way out, where HOME is not the root (cgroup v2
     * then lets HOME hold kiln again only without it): each -1 where it could not be opened. */
    int home_ctl_fd;    /* HOME/cgroup.subtree_control, for writing */
    int kiln_ctl_fd;    /* HOME/kiln/cgroup.subtree_control, for writing */
    int kiln_stat_fd;   /* HOME/kiln/cgroup.stat: whether other VMs' folders are there */
    bool home_cpu_ours; /* HOME gave no cpu controller before kiln turned it on */
};

/* Whether cfg asks for anything only a cgroup gives. */
bool cgroup_own_wanted(const struct vm_config *cfg);

/* Finds this process's cgroup v2 folder (the cgroup2 mount in /proc/self/mountinfo and the
 * "0::" line of /proc/self/cgroup) and does cgroup_own_enter_at there. */
int cgroup_own_enter(const struct vm_config *cfg, struct cgroup_own *cg, struct error *err);

/* Makes HOME/kiln/ID, moves pid into it, enables the cpu controller on the way down (HOME
 * must hold no other process: cgroup v2 gives controllers only below folders without
 * processes, its root aside) and writes cpu.max and cpu.weight. On failure pid is back in
 * HOME, the folder is gone, and err has one line saying what to do. */
int cgroup_own_enter_at(const char *home, const char *id, const struct vm_config *cfg, pid_t pid,
                        struct cgroup_own *cg, struct error *err);

/* Moves pid back to HOME and removes HOME/kiln/ID (and HOME/kiln once empty), through the
 * fds opened on the way in. Where HOME is not the root, HOME refuses processes while it gives
 * its children a controller: if kiln turned the cpu controller on and no other VM's folder is
 * in HOME/kiln, it turns it off again (HOME/kiln's, then HOME's) and moves back then. Returns
 * 0, or one line naming the folder that stays behind. */
int cgroup_own_leave(struct cgroup_own *cg, pid_t pid, struct error *err);

#endif
