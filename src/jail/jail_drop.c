/* The jailed child giving up what it does not need: inherited fds, unlimited resources, root,
 * every capability and the right to regain one; then a check that its files are usable. */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kiln/jail/jail.h"

#define JAIL_ADDRESS_OVERHEAD (4ULL << 30) /* for the address space: see jail_drop below */

/* A sanitizer reserves terabytes of shadow address space at start, so in a sanitizer build
 * (tests only) RLIMIT_AS would make its next mapping fail: it is left unset there. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define JAIL_LIMIT_ADDRESS_SPACE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define JAIL_LIMIT_ADDRESS_SPACE 0
#endif
#endif
#ifndef JAIL_LIMIT_ADDRESS_SPACE
#define JAIL_LIMIT_ADDRESS_SPACE 1
#endif

/* Closes the fds from first to last; 0, or -errno (-ENOSYS before Linux 5.9). */
static int close_range_of(unsigned first, unsigned last)
{
    if (first > last)
        return 0;
    return syscall(SYS_close_range, first, last, 0U) == 0 ? 0 : -errno;
}

/* Every fd from 3 on but the two in keep (-1: none). */
static int close_inherited_fds(const int keep[2], struct error *err)
{
    int low = keep[0] < keep[1] ? keep[0] : keep[1], high = keep[0] < keep[1] ? keep[1] : keep[0];
    unsigned first = 3;
    int r = 0;
    const int sorted[2] = {low, high};
    for (int i = 0; r == 0 && i < 2; i++) {
        if (sorted[i] < 3)
            continue;
        r = close_range_of(first, (unsigned)sorted[i] - 1);
        first = (unsigned)sorted[i] + 1;
    }
    if (r == 0)
        r = close_range_of(first, ~0U);
    if (r == 0)
        return 0;
    if (r != -ENOSYS)
        return error_fmt(err, r, "jail: cannot close the inherited fds: %s", strerror(-r));
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return error_fmt(err, -errno, "jail: getrlimit: %s", strerror(errno));
    for (int fd = 3; fd < (int)limit.rlim_cur; fd++)
        if (fd != keep[0] && fd != keep[1])
            close(fd);
    return 0;
}

static int set_limit(int resource, const char *name, rlim_t value, struct error *err)
{
    struct rlimit limit = {.rlim_cur = value, .rlim_max = value};
    if (setrlimit(resource, &limit) != 0)
        return error_fmt(err, -errno, "jail: cannot set %s to %llu: %s", name,
                         (unsigned long long)value, strerror(errno));
    return 0;
}

static int drop_capabilities(struct error *err)
{
    /* The bounding set first (that needs CAP_SETPCAP, which the uid change takes away). */
    for (int cap = 0; cap <= 63; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
            return error_fmt(err, -errno, "jail: cannot drop capability %d: %s", cap,
                             strerror(errno));
    return 0;
}

static int clear_capabilities(struct error *err)
{
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3];
    memset(none, 0, sizeof(none));
    if (syscall(SYS_capset, &header, none) != 0)
        return error_fmt(err, -errno, "jail: cannot clear the capabilities: %s", strerror(errno));
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        return error_fmt(err, -errno, "jail: cannot clear the ambient capabilities: %s",
                         strerror(errno));
    return 0;
}

int jail_drop(const struct vm_config *cfg, const int keep_fds[2], struct error *err)
{
    uid_t uid = (uid_t)cfg->jail_uid;
    gid_t gid = (gid_t)cfg->jail_gid;
    int r = close_inherited_fds(keep_fds, err);
    if (r == 0)
        r = set_limit(RLIMIT_NOFILE, "RLIMIT_NOFILE", JAIL_MAX_OPEN_FILES, err);
    /* The address space: guest RAM, plus room for kiln's own mappings (each thread's stack and
     * malloc arena, libuv's pool, the binary and libraries); a ceiling, not a budget. */
    if (r == 0 && JAIL_LIMIT_ADDRESS_SPACE)
        r = set_limit(RLIMIT_AS, "RLIMIT_AS",
                      cfg->memory_bytes + JAIL_ADDRESS_OVERHEAD + (rlim_t)cfg->cpus * (128 << 20),
                      err);
    if (r == 0)
        r = drop_capabilities(err);
    if (r < 0)
        return r;
    if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0)
        return error_fmt(err, -errno, "jail: cannot become group %u: %s", gid, strerror(errno));
    if (setresuid(uid, uid, uid) != 0)
        return error_fmt(err, -errno, "jail: cannot become user %u: %s", uid, strerror(errno));
    r = clear_capabilities(err);
    if (r < 0)
        return r;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return error_fmt(err, -errno, "jail: cannot set no_new_privs: %s", strerror(errno));
    /* Belt and braces: a jail that could still become root would be no jail. */
    if (setuid(0) == 0)
        return error_fmt(err, -EPERM, "jail: user %u could become root again", uid);
    return 0;
}

int jail_check_access(const struct jail_plan *plan, const struct vm_config *cfg, struct error *err)
{
    for (size_t i = 0; i < plan->count; i++) {
        const struct jail_file *file = &plan->files[i];
        int mode = file->readonly ? R_OK : R_OK | W_OK;
        if (access(file->inside, mode) != 0)
            return error_fmt(err, -errno,
                             "jail: user %lld group %lld cannot %s %s (%s in the jail): %s "
                             "(expected a file they may %s)",
                             (long long)cfg->jail_uid, (long long)cfg->jail_gid,
                             file->readonly ? "read" : "read and write", file->what, file->inside,
                             strerror(errno), file->readonly ? "read" : "read and write");
    }
    return 0;
}
