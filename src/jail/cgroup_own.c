/* A cgroup of its own for a VM run without --jail: --cpu-quota's cpu.max and --cpu-weight's
 * cpu.weight on HOME/kiln/ID below the cgroup kiln started in, removed again at exit. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/jail/cgroup_own.h"
#include "kiln/jail/jail.h"

bool cgroup_own_wanted(const struct vm_config *cfg)
{
    return cfg->cpu_quota || cfg->cpu_weight;
}

/* The settings that asked for the cgroup, for messages: "--cpu-quota", "--cpu-weight". */
static const char *asked_by(const struct vm_config *cfg)
{
    return cfg->cpu_quota && cfg->cpu_weight ? "--cpu-quota and --cpu-weight"
           : cfg->cpu_quota                  ? "--cpu-quota"
                                             : "--cpu-weight";
}

/* Whether HOME's FILE (cgroup.controllers, cgroup.subtree_control) names the cpu controller;
 * controllers gets the file's line. */
static bool offers_cpu_in(const char *home, const char *file, char *controllers, size_t size)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", home, file);
    FILE *f = fopen(path, "re");
    controllers[0] = '\0';
    if (f && !fgets(controllers, (int)size, f))
        controllers[0] = '\0';
    if (f)
        fclose(f);
    controllers[strcspn(controllers, "\n")] = '\0';
    char padded[300];
    snprintf(padded, sizeof(padded), " %s ", controllers);
    return strstr(padded, " cpu ") != NULL;
}

/* Whether HOME offers the cpu controller to its children (its cgroup.controllers). */
static bool offers_cpu(const char *home, char *controllers, size_t size)
{
    return offers_cpu_in(home, "cgroup.controllers", controllers, size);
}

static int move_to(const char *dir, pid_t pid, struct error *err)
{
    char text[24];
    snprintf(text, sizeof(text), "%ld", (long)pid);
    return jail_cgroup_write(dir, "cgroup.procs", text, err);
}

/* cpu.max and cpu.weight, each only when asked for (the cgroup's defaults are no limit and
 * 100). */
static int write_limits(const char *dir, const struct vm_config *cfg, struct error *err)
{
    char text[64];
    int r = 0;
    if (cfg->cpu_quota) {
        snprintf(text, sizeof(text), "%llu %u", (unsigned long long)jail_cpu_quota_us(cfg),
                 JAIL_CPU_PERIOD_US);
        r = jail_cgroup_write(dir, "cpu.max", text, err);
    }
    if (r == 0 && cfg->cpu_weight) {
        snprintf(text, sizeof(text), "%u", cfg->cpu_weight);
        r = jail_cgroup_write(dir, "cpu.weight", text, err);
    }
    return r;
}

/* The fds leaving takes (struct cgroup_own): 0, or -errno. */
static int open_for_leaving(struct cgroup_own *cg, const char *kiln)
{
    char procs[PATH_MAX + 16];
    snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg->home);
    cg->home_fd = open(cg->home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cg->kiln_fd = open(kiln, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cg->procs_fd = open(procs, O_WRONLY | O_CLOEXEC);
    return cg->home_fd < 0 || cg->kiln_fd < 0 || cg->procs_fd < 0 ? -errno : 0;
}

/* Whether HOME already gives its children the cpu controller (its cgroup.subtree_control). */
static bool gives_cpu(const char *home)
{
    char controllers[256];
    return offers_cpu_in(home, "cgroup.subtree_control", controllers, sizeof(controllers));
}

/* The fds that giving the cpu controller back takes (cgroup_own_leave); best effort: one that
 * cannot be opened only means kiln cannot give it back. */
static void open_for_giving_back(struct cgroup_own *cg, const char *kiln)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/cgroup.subtree_control", cg->home);
    cg->home_ctl_fd = open(path, O_WRONLY | O_CLOEXEC);
    snprintf(path, sizeof(path), "%s/cgroup.subtree_control", kiln);
    cg->kiln_ctl_fd = open(path, O_WRONLY | O_CLOEXEC);
    snprintf(path, sizeof(path), "%s/cgroup.stat", kiln);
    cg->kiln_stat_fd = open(path, O_RDONLY | O_CLOEXEC);
}

static void close_fds(struct cgroup_own *cg)
{
    int *fds[] = {&cg->home_fd,     &cg->kiln_fd,     &cg->procs_fd,
                  &cg->home_ctl_fd, &cg->kiln_ctl_fd, &cg->kiln_stat_fd};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}

int cgroup_own_enter_at(const char *home, const char *id, const struct vm_config *cfg, pid_t pid,
                        struct cgroup_own *cg, struct error *err)
{
    char controllers[256], kiln[PATH_MAX + 8];
    snprintf(cg->home, sizeof(cg->home), "%s", home);
    snprintf(cg->id, sizeof(cg->id), "%s", id);
    cg->dir[0] = '\0';
    cg->home_fd = cg->kiln_fd = cg->procs_fd = -1;
    cg->home_ctl_fd = cg->kiln_ctl_fd = cg->kiln_stat_fd = -1;
    cg->home_cpu_ours = false;
    if (!offers_cpu(home, controllers, sizeof(controllers)))
        return error_fmt(err, -EOPNOTSUPP,
                         "%s: the cgroup v2 folder %s offers no cpu controller (its "
                         "cgroup.controllers: '%s'): a CPU quota or weight needs cgroup v2's cpu "
                         "controller",
                         asked_by(cfg), home, controllers);
    snprintf(kiln, sizeof(kiln), "%s/kiln", home);
    if (snprintf(cg->dir, sizeof(cg->dir), "%s/%s", kiln, id) >= (int)sizeof(cg->dir))
        return error_fmt(err, -ENAMETOOLONG, "%s: cgroup path too long", asked_by(cfg));
    struct error cause = {{0}};
    int r = 0;
    if ((mkdir(kiln, 0755) != 0 && errno != EEXIST) || mkdir(cg->dir, 0755) != 0)
        r = error_fmt(&cause, -errno, "cannot make %s: %s", cg->dir, strerror(errno));
    bool made = r == 0;
    if (r == 0 && (r = open_for_leaving(cg, kiln)) < 0)
        r = error_fmt(&cause, r, "cannot open %s: %s", home, strerror(-r));
    /* In first, so HOME may be left without processes: only then can it give its children
     * the cpu controller. */
    if (r == 0)
        r = move_to(cg->dir, pid, &cause);
    bool moved = r == 0;
    cg->home_cpu_ours = !gives_cpu(home);
    if (r == 0)
        r = jail_cgroup_write(home, "cgroup.subtree_control", "+cpu", &cause);
    if (r == -EBUSY)
        r = error_fmt(&cause, r,
                      "%s holds other processes, so it cannot give the cpu controller to "
                      "folders below it: start kiln in a cgroup of its own (e.g. systemd-run "
                      "--scope -p Delegate=yes kiln run ...)",
                      home);
    if (r == 0)
        r = jail_cgroup_write(kiln, "cgroup.subtree_control", "+cpu", &cause);
    if (r == 0)
        r = write_limits(cg->dir, cfg, &cause);
    if (r == 0) {
        open_for_giving_back(cg, kiln);
        return 0;
    }
    if (moved)
        move_to(home, pid, &(struct error){{0}});
    if (made)
        rmdir(cg->dir);
    rmdir(kiln); /* fails while other VMs use it, as it should */
    close_fds(cg);
    cg->dir[0] = '\0';
    return error_fmt(err, r, "%s: %s", asked_by(cfg), cause.msg);
}

/* HOME, unless it is the root, takes no process while it gives its children a controller
 * (EBUSY): turns the cpu controller off again where kiln turned it on and no other VM's folder
 * is in HOME/kiln (whose limits it would take away). 0, or -errno. */
static int give_cpu_back(struct cgroup_own *cg)
{
    char stat[512];
    ssize_t n = cg->kiln_stat_fd < 0 ? -1 : read(cg->kiln_stat_fd, stat, sizeof(stat) - 1);
    if (!cg->home_cpu_ours || n <= 0 || cg->home_ctl_fd < 0 || cg->kiln_ctl_fd < 0)
        return -EBUSY;
    stat[n] = '\0';
    const char *count = strstr(stat, "nr_descendants ");
    if (!count || strtol(count + strlen("nr_descendants "), NULL, 10) != 1)
        return -EBUSY; /* other VMs' folders (or folders someone else made) */
    /* The child's first: a folder cannot lose a controller one of its children gives on. */
    if (write(cg->kiln_ctl_fd, "-cpu", 4) != 4 || write(cg->home_ctl_fd, "-cpu", 4) != 4)
        return -errno;
    return 0;
}

int cgroup_own_leave(struct cgroup_own *cg, pid_t pid, struct error *err)
{
    if (!cg->dir[0])
        return 0;
    char text[24];
    int len = snprintf(text, sizeof(text), "%ld", (long)pid), r = 0;
    bool back = write(cg->procs_fd, text, (size_t)len) == len;
    int e = back ? 0 : errno;
    if (e == EBUSY && give_cpu_back(cg) == 0) {
        back = write(cg->procs_fd, text, (size_t)len) == len;
        e = back ? 0 : errno;
    }
    if (!back)
        r = error_fmt(err, -e, "cgroup %s stays behind: moving back to %s: %s%s", cg->dir, cg->home,
                      strerror(e),
                      e == EBUSY ? " (it gives its children the cpu controller, which kiln did "
                                   "not turn on or other VMs' folders there still use)"
                                 : "");
    else if (unlinkat(cg->kiln_fd, cg->id, AT_REMOVEDIR) != 0)
        r = error_fmt(err, -errno, "cgroup %s stays behind: %s", cg->dir, strerror(errno));
    else
        unlinkat(cg->home_fd, "kiln", AT_REMOVEDIR); /* only once no other VM uses it */
    close_fds(cg);
    cg->dir[0] = '\0';
    return r;
}

/* The cgroup2 file system's mount point, from mountinfo's lines ("... MOUNT ... - cgroup2
 * ..."): /sys/fs/cgroup on a pure cgroup v2 host, /sys/fs/cgroup/unified on a hybrid one. */
static int find_mount(char *mount, size_t size, struct error *err)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[1024];
    bool found = false;
    while (f && !found && fgets(line, sizeof(line), f)) {
        char point[512];
        const char *dash = strstr(line, " - cgroup2 ");
        found = dash && sscanf(line, "%*s %*s %*s %*s %511s", point) == 1;
        if (found)
            snprintf(mount, size, "%s", point);
    }
    if (f)
        fclose(f);
    return found ? 0 : error_fmt(err, -ENOENT, "no cgroup v2 file system is mounted");
}

/* This process's cgroup v2 path, from /proc/self/cgroup's "0::PATH" line. */
static int find_own_path(char *path, size_t size, struct error *err)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[PATH_MAX];
    bool found = false;
    while (f && !found && fgets(line, sizeof(line), f)) {
        found = strncmp(line, "0::", 3) == 0;
        if (found) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(path, size, "%s", line + 3);
        }
    }
    if (f)
        fclose(f);
    return found ? 0
                 : error_fmt(err, -ENOENT, "this process is in no cgroup v2 (/proc/self/cgroup)");
}

int cgroup_own_enter(const struct vm_config *cfg, struct cgroup_own *cg, struct error *err)
{
    char mount[512], own[PATH_MAX], home[PATH_MAX], id[96];
    struct error cause;
    int r = find_mount(mount, sizeof(mount), &cause);
    if (r == 0)
        r = find_own_path(own, sizeof(own), &cause);
    if (r < 0)
        return error_fmt(err, r, "%s: %s: a CPU quota or weight needs cgroup v2's cpu controller",
                         asked_by(cfg), cause.msg);
    /* "/" is the root itself: no trailing slash before kiln/. */
    if (snprintf(home, sizeof(home), "%s%s", mount, strcmp(own, "/") == 0 ? "" : own) >=
        (int)sizeof(home))
        return error_fmt(err, -ENAMETOOLONG, "%s: cgroup path too long", asked_by(cfg));
    jail_id(cfg, getpid(), id, sizeof(id));
    return cgroup_own_enter_at(home, id, cfg, getpid(), cg, err);
}
