/* jail_enter: the parent forks the VM's child into a new PID namespace, gives it a cgroup and
 * waits, forwarding stop signals; the child builds its jail (root, namespaces, user) and goes on.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kiln/jail/jail.h"
#include "kiln/util/log.h"

#define CGROUP_ROOT         "/sys/fs/cgroup"
#define CGROUP2_SUPER_MAGIC 0x63677270

struct jail_paths {
    char id[CONFIG_MAX_NAME + 24];
    char dir[PATH_MAX - 16]; /* DIR/ID */
    char root[PATH_MAX];     /* DIR/ID/root */
    char cgroup[PATH_MAX];   /* "" without one */
};

static int make_folders(const struct vm_config *cfg, struct jail_paths *paths, struct error *err)
{
    jail_id(cfg, getpid(), paths->id, sizeof(paths->id));
    int len = snprintf(paths->dir, sizeof(paths->dir), "%s/%s", cfg->jail_dir, paths->id);
    if (len < 0 || (size_t)len >= sizeof(paths->dir))
        return error_fmt(err, -ENAMETOOLONG,
                         "jail: the folder '%s' is too long (expected a "
                         "shorter path)",
                         cfg->jail_dir);
    snprintf(paths->root, sizeof(paths->root), "%s/root", paths->dir);
    if (mkdir(paths->dir, 0755) != 0)
        return error_fmt(err, -errno,
                         "jail: cannot make %s: %s (expected --jail to name a "
                         "folder root can write in)",
                         paths->dir, strerror(errno));
    if (mkdir(paths->root, 0755) != 0) {
        int e = errno;
        rmdir(paths->dir);
        return error_fmt(err, -e, "jail: cannot make %s: %s", paths->root, strerror(e));
    }
    return 0;
}

static void remove_folders(const struct jail_paths *paths)
{
    if (paths->cgroup[0])
        rmdir(paths->cgroup);
    rmdir(paths->root);
    rmdir(paths->dir);
}

/* The child's tie to the parent: the death signal that kills the VM with the parent. A
 * change of uid clears it, so it is set after jail_drop; the parent holds the go pipe's write
 * end until it ends, so a hang-up on it means the parent is already gone. */
static int die_with_parent(int go, struct error *err)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        return error_fmt(err, -errno, "jail: prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
    struct pollfd hangup = {.fd = go, .events = POLLIN};
    if (poll(&hangup, 1, 0) != 0)
        return error_fmt(err, -ESRCH, "jail: the parent kiln stopped before the jail was ready");
    return 0;
}

/* In the child: wait for the parent's go, then build the jail around ourselves. */
static int enter_child(struct vm_config *cfg, const struct jail_plan *plan,
                       const struct jail_paths *paths, int go, int keep_fd, struct error *err)
{
    setpgid(0, 0);
    char byte;
    if (read(go, &byte, 1) != 1) {
        close(go);
        return error_fmt(err, -ESRCH, "jail: the parent kiln stopped before the jail was ready");
    }
    int r = 0;
    if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) != 0)
        r = error_fmt(err, -errno, "jail: cannot make the mount, IPC and UTS namespaces: %s",
                      strerror(errno));
    else
        sethostname(paths->id, strlen(paths->id));
    if (r == 0)
        r = jail_root_build(paths->root, plan, (uid_t)cfg->jail_uid, (gid_t)cfg->jail_gid, err);
    if (r == 0)
        r = jail_root_pivot(paths->root, err);
    if (r == 0)
        r = jail_drop(cfg, (const int[2]){go, keep_fd}, err);
    if (r == 0)
        r = die_with_parent(go, err);
    close(go);
    if (r == 0)
        r = jail_check_access(plan, cfg, err);
    if (r == 0)
        r = jail_plan_rewrite(cfg, plan, err);
    return r;
}

static bool cgroup2_writable(void)
{
    struct statfs fs;
    return statfs(CGROUP_ROOT, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC &&
           access(CGROUP_ROOT, W_OK) == 0;
}

/* The terminal follows the VM: the child is in its own process group (so that a signal to
 * the parent's group reaches it once, forwarded), and only the foreground group reads it. */
static bool give_terminal(pid_t child)
{
    if (!isatty(STDIN_FILENO) || tcgetpgrp(STDIN_FILENO) != getpgrp())
        return false;
    return tcsetpgrp(STDIN_FILENO, child) == 0;
}

/* Forwards SIGINT, SIGTERM and SIGHUP (as SIGKILL: PID 1 has no SIGHUP handler, so it would
 * ignore it) to the child until it ends. */
static void wait_for_child(pid_t child, const sigset_t *waited, struct jail_outcome *outcome)
{
    bool hangup = false;
    int status = 0;
    for (;;) {
        if (waitpid(child, &status, WNOHANG) == child)
            break;
        int sig = sigwaitinfo(waited, NULL);
        if (sig == SIGINT || sig == SIGTERM)
            kill(child, sig);
        else if (sig == SIGHUP) {
            hangup = true;
            kill(child, SIGKILL);
        }
    }
    outcome->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    outcome->signal = 0;
    if (WIFSIGNALED(status))
        outcome->signal = hangup && WTERMSIG(status) == SIGKILL ? SIGHUP : WTERMSIG(status);
}

int jail_enter(struct vm_config *cfg, int keep_fd, struct jail_outcome *outcome, struct error *err)
{
    if (geteuid() != 0)
        return error_fmt(err, -EPERM,
                         "jail: --jail needs root (kiln runs as user %u; it drops to --uid and "
                         "--gid itself)",
                         (unsigned)geteuid());
    struct jail_paths paths = {.cgroup = ""};
    int r = make_folders(cfg, &paths, err);
    if (r < 0)
        return r;
    struct jail_plan plan;
    jail_plan_make(cfg, &plan);
    int go[2];
    if (pipe2(go, O_CLOEXEC) != 0) {
        r = error_fmt(err, -errno, "jail: pipe: %s", strerror(errno));
        remove_folders(&paths);
        return r;
    }
    sigset_t waited, before;
    sigemptyset(&waited);
    sigaddset(&waited, SIGINT);
    sigaddset(&waited, SIGTERM);
    sigaddset(&waited, SIGHUP);
    sigaddset(&waited, SIGCHLD);
    sigaddset(&waited, SIGTTOU); /* taking the terminal back from the background */
    sigprocmask(SIG_BLOCK, &waited, &before);
    fflush(NULL);
    pid_t child = -1;
    if (unshare(CLONE_NEWPID) != 0)
        r = error_fmt(err, -errno, "jail: cannot make a PID namespace: %s", strerror(errno));
    else if ((child = fork()) < 0)
        r = error_fmt(err, -errno, "jail: fork: %s", strerror(errno));
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &before, NULL);
        close(go[1]);
        return enter_child(cfg, &plan, &paths, go[0], keep_fd, err);
    }
    close(go[0]);
    if (r < 0) {
        close(go[1]);
        sigprocmask(SIG_SETMASK, &before, NULL);
        remove_folders(&paths);
        return r;
    }
    setpgid(child, child);
    bool terminal = give_terminal(child);
    struct log log;
    log_init(&log, cfg->log_level);
    if (!cgroup2_writable())
        log_warn(&log,
                 "jail: %s is not a writable cgroup v2: no cpu.max or memory.max for "
                 "this VM",
                 CGROUP_ROOT);
    else if (jail_cgroup_create(CGROUP_ROOT, paths.id, cfg, child, paths.cgroup,
                                sizeof(paths.cgroup), err) < 0) {
        /* Best effort, like a host without cgroup v2: a delegated cgroup without the cpu or
         * memory controller, or one holding processes (which cannot enable controllers for
         * its children), still runs the VM. */
        log_warn(&log, "%s; going on without a cgroup for this VM", err->msg);
        paths.cgroup[0] = '\0';
    }
    if (r == 0 && write(go[1], "g", 1) != 1)
        r = error_fmt(err, -errno, "jail: cannot start the jailed child: %s", strerror(errno));
    if (r < 0)
        close(go[1]); /* without the go, the child reads end-of-file and stops */
    wait_for_child(child, &waited, outcome);
    if (r == 0)
        close(go[1]); /* held until now: the child's sign that we are alive */
    if (terminal)
        tcsetpgrp(STDIN_FILENO, getpgrp());
    remove_folders(&paths);
    sigprocmask(SIG_SETMASK, &before, NULL);
    return r < 0 ? r : JAIL_PARENT;
}
