/* The jailed VM's cgroup v2 folder, ROOT/kiln/ID: memory.max, cpu.max and cpu.weight from the
 * config, and the VM's process moved in (jail_enter decides whether there is a cgroup v2 to
 * use); and the cgroup files' writer, which cgroup_own.c shares. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/jail/jail.h"

int jail_cgroup_write(const char *dir, const char *name, const char *text, struct error *err)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ssize_t n = fd < 0 ? -1 : write(fd, text, strlen(text));
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (n != (ssize_t)strlen(text))
        return error_fmt(err, -e, "cannot write '%s' to %s: %s", text, path, strerror(e));
    return 0;
}

static int make_dir(const char *path, struct error *err)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return error_fmt(err, -errno, "cannot make cgroup %s: %s", path, strerror(errno));
    return 0;
}

int jail_cgroup_create(const char *root, const char *id, const struct vm_config *cfg, pid_t pid,
                       char *dir, size_t dir_size, struct error *err)
{
    char kiln[256], text[64];
    snprintf(kiln, sizeof(kiln), "%s/kiln", root);
    snprintf(dir, dir_size, "%s/%s", kiln, id);
    /* A controller reaches a child folder only if its parent lists it in subtree_control. */
    int r = jail_cgroup_write(root, "cgroup.subtree_control", "+cpu +memory", err);
    if (r == 0)
        r = make_dir(kiln, err);
    if (r == 0)
        r = jail_cgroup_write(kiln, "cgroup.subtree_control", "+cpu +memory", err);
    if (r == 0)
        r = make_dir(dir, err);
    if (r == 0) {
        snprintf(text, sizeof(text), "%" PRIu64, jail_memory_max(cfg));
        r = jail_cgroup_write(dir, "memory.max", text, err);
    }
    snprintf(text, sizeof(text), "%" PRIu64 " %u", jail_cpu_quota_us(cfg), JAIL_CPU_PERIOD_US);
    if (r == 0)
        r = jail_cgroup_write(dir, "cpu.max", text, err);
    snprintf(text, sizeof(text), "%u", cfg->cpu_weight);
    if (r == 0 && cfg->cpu_weight)
        r = jail_cgroup_write(dir, "cpu.weight", text, err);
    snprintf(text, sizeof(text), "%ld", (long)pid);
    if (r == 0)
        r = jail_cgroup_write(dir, "cgroup.procs", text, err);
    if (r < 0) {
        rmdir(dir);
        struct error cause = *err;
        return error_fmt(err, r, "jail: %s", cause.msg);
    }
    return 0;
}
