/* The jail's plan, with no system calls: which host files the VM needs and their names inside
 * the jail, the config rewritten to those names, the VM's folder name and its cgroup limits. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/jail/jail.h"

static struct jail_file *add(struct jail_plan *plan, enum jail_file_kind kind, const char *host,
                             const char *what, bool readonly)
{
    struct jail_file *file = &plan->files[plan->count++];
    *file = (struct jail_file){.kind = kind, .host = host, .what = what, .readonly = readonly};
    return file;
}

void jail_plan_make(const struct vm_config *cfg, struct jail_plan *plan)
{
    static const char *const disk_names[CONFIG_MAX_VIRTIO_DEVICES] = {
        "disk 0", "disk 1", "disk 2", "disk 3", "disk 4", "disk 5", "disk 6", "disk 7"};
    plan->count = 0;
    snprintf(add(plan, JAIL_FILE_BIND, cfg->kernel_path, "the kernel", true)->inside,
             JAIL_INSIDE_MAX, "/kernel");
    if (cfg->initrd_path)
        snprintf(add(plan, JAIL_FILE_BIND, cfg->initrd_path, "the initrd", true)->inside,
                 JAIL_INSIDE_MAX, "/initrd");
    if (config_cpu_template_is_file(cfg))
        snprintf(add(plan, JAIL_FILE_BIND, cfg->cpu_template, "the CPU template", true)->inside,
                 JAIL_INSIDE_MAX, "/cpu-template.yaml");
    for (unsigned i = 0; i < cfg->ndisks && i < CONFIG_MAX_VIRTIO_DEVICES; i++)
        snprintf(
            add(plan, JAIL_FILE_BIND, cfg->disks[i].path, disk_names[i], cfg->disks[i].readonly)
                ->inside,
            JAIL_INSIDE_MAX, "/disk%u", i);
    if (cfg->console == CONSOLE_FILE) {
        struct jail_file *f = add(plan, JAIL_FILE_BIND, cfg->console_path, "the console", false);
        snprintf(f->inside, JAIL_INSIDE_MAX, "/console.log");
        f->create = true;
    }
    if (cfg->vconsole && cfg->vconsole_kind == CONSOLE_FILE) {
        struct jail_file *f =
            add(plan, JAIL_FILE_BIND, cfg->vconsole_path, "the virtio console", false);
        snprintf(f->inside, JAIL_INSIDE_MAX, "/vconsole.log");
        f->create = true;
    }
    snprintf(add(plan, JAIL_FILE_DEVICE, "/dev/kvm", "/dev/kvm", false)->inside, JAIL_INSIDE_MAX,
             "/dev/kvm");
    if (cfg->nnets > 0)
        snprintf(add(plan, JAIL_FILE_DEVICE, "/dev/net/tun", "/dev/net/tun", false)->inside,
                 JAIL_INSIDE_MAX, "/dev/net/tun");
}

/* The inside name of the plan's file for host path slot, or NULL (not in the plan). */
static const char *inside_name(const struct jail_plan *plan, const char *host)
{
    for (size_t i = 0; i < plan->count; i++)
        if (plan->files[i].host == host)
            return plan->files[i].inside;
    return NULL;
}

static int rewrite(char **path, const struct jail_plan *plan, struct error *err)
{
    const char *inside = *path ? inside_name(plan, *path) : NULL;
    if (!inside)
        return 0;
    char *copy = strdup(inside);
    if (!copy)
        return error_fmt(err, -ENOMEM, "out of memory");
    free(*path);
    *path = copy;
    return 0;
}

int jail_plan_rewrite(struct vm_config *cfg, const struct jail_plan *plan, struct error *err)
{
    int r = rewrite(&cfg->kernel_path, plan, err);
    if (r == 0)
        r = rewrite(&cfg->initrd_path, plan, err);
    if (r == 0)
        r = rewrite(&cfg->cpu_template, plan, err);
    for (unsigned i = 0; r == 0 && i < cfg->ndisks; i++)
        r = rewrite(&cfg->disks[i].path, plan, err);
    if (r == 0 && cfg->console == CONSOLE_FILE)
        r = rewrite(&cfg->console_path, plan, err);
    if (r == 0 && cfg->vconsole && cfg->vconsole_kind == CONSOLE_FILE)
        r = rewrite(&cfg->vconsole_path, plan, err);
    return r;
}

void jail_id(const struct vm_config *cfg, pid_t pid, char *buf, size_t size)
{
    snprintf(buf, size, "%s-%ld", cfg->name ? cfg->name : "vm", (long)pid);
}

uint64_t jail_memory_max(const struct vm_config *cfg)
{
    return cfg->memory_bytes + JAIL_MEMORY_OVERHEAD;
}

uint64_t jail_cpu_quota_us(const struct vm_config *cfg)
{
    /* --cpu-quota's percent of one CPU; without it one whole host CPU per vCPU: the vCPU
     * threads are what use CPU; the loop's share is small next to them. */
    if (cfg->cpu_quota)
        return (uint64_t)cfg->cpu_quota * JAIL_CPU_PERIOD_US / 100;
    return (uint64_t)cfg->cpus * JAIL_CPU_PERIOD_US;
}
