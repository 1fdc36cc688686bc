/* The placement settings applied at a VM's start: the --memory backing as guest_mem options,
 * the --cpus pin list checked against the CPUs this process may use, and the --nice value. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "kiln/vm/vm_placement.h"

struct guest_mem_options vm_placement_memory(const struct vm_config *cfg)
{
    struct guest_mem_options opts = {
        .backing = GUEST_MEM_MEMFD,
        .prealloc = cfg->memory_prealloc,
        .thp = cfg->memory_thp,
        .merge = cfg->memory_merge,
    };
    if (cfg->memory_backing == MEMORY_BACKING_ANON)
        opts.backing = cfg->memory_shared ? GUEST_MEM_ANON_SHARED : GUEST_MEM_ANON_PRIVATE;
    else if (cfg->memory_backing == MEMORY_BACKING_HUGETLB)
        opts.backing = GUEST_MEM_HUGETLB;
    return opts;
}

/* The CPUs in set as a list ("0-3,6"), for the message. */
static void cpu_set_text(const cpu_set_t *set, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int cpu = 0; cpu < CPU_SETSIZE && len < size; cpu++) {
        if (!CPU_ISSET(cpu, set))
            continue;
        int last = cpu;
        while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, set))
            last++;
        int n = last > cpu ? snprintf(buf + len, size - len, "%s%d-%d", len ? "," : "", cpu, last)
                           : snprintf(buf + len, size - len, "%s%d", len ? "," : "", cpu);
        len += n > 0 ? (size_t)n : 0;
        cpu = last;
    }
}

int vm_placement_check_pins(const struct vm_config *cfg, struct error *err)
{
    if (cfg->ncpu_pin == 0)
        return 0;
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
        return error_fmt(err, -errno, "--cpus: pin=: cannot read this process's CPUs: %s",
                         strerror(errno));
    for (unsigned i = 0; i < cfg->ncpu_pin; i++) {
        if (CPU_ISSET(cfg->cpu_pin[i], &allowed))
            continue;
        char list[256];
        cpu_set_text(&allowed, list, sizeof(list));
        return error_fmt(err, -EINVAL,
                         "--cpus: pin=: CPU %u is not one this process may run on (expected one "
                         "of %s)",
                         cfg->cpu_pin[i], list);
    }
    return 0;
}

int vm_placement_set_nice(const struct vm_config *cfg, struct error *err)
{
    if (!cfg->nice_given)
        return 0;
    if (setpriority(PRIO_PROCESS, 0, cfg->nice) < 0)
        return error_fmt(err, -errno,
                         "--nice: cannot set nice value %d: %s (a value below the current one "
                         "needs root or CAP_SYS_NICE)",
                         cfg->nice, strerror(errno));
    return 0;
}
