/* The jail's root: a small tmpfs in the child's mount namespace holding only the plan's files
 * (host files bind-mounted, device nodes made), then pivot_root into it. Nothing is copied. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "kiln/jail/jail.h"

#define JAIL_TMPFS_OPTIONS "mode=0755,size=64k,nr_inodes=64"

/* The empty file a bind mount goes onto, or the device node; its folders made on the way. */
static int make_node(const char *root, const struct jail_file *file, uid_t uid, gid_t gid,
                     char *target, size_t size, struct error *err)
{
    snprintf(target, size, "%s%s", root, file->inside);
    for (char *slash = strchr(target + strlen(root) + 1, '/'); slash;
         slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        int r = mkdir(target, 0755);
        *slash = '/';
        if (r != 0 && errno != EEXIST)
            return error_fmt(err, -errno, "jail: cannot make the folder of %s: %s", file->inside,
                             strerror(errno));
    }
    if (file->kind == JAIL_FILE_DEVICE) {
        struct stat st;
        if (stat(file->host, &st) != 0 || !S_ISCHR(st.st_mode))
            return error_fmt(err, -ENODEV, "jail: %s is not a character device on this host",
                             file->host);
        /* Made for the VM's user alone, as Firecracker's jailer does, so the host's node can
         * keep its own owner and mode. */
        if (mknod(target, S_IFCHR | 0600, st.st_rdev) != 0 || chown(target, uid, gid) != 0)
            return error_fmt(err, -errno, "jail: cannot make %s (%u:%u) in the jail: %s",
                             file->inside, major(st.st_rdev), minor(st.st_rdev), strerror(errno));
        return 0;
    }
    int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return error_fmt(err, -errno, "jail: cannot make %s in the jail: %s", file->inside,
                         strerror(errno));
    close(fd);
    return 0;
}

/* A console file that does not exist yet is made for the VM's user, as kiln would make it. */
static int create_host_file(const struct jail_file *file, uid_t uid, gid_t gid, struct error *err)
{
    int fd = open(file->host, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0 && errno == EEXIST)
        return 0;
    if (fd < 0 || fchown(fd, uid, gid) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return error_fmt(err, -e, "jail: cannot make %s file %s: %s", file->what, file->host,
                         strerror(e));
    }
    close(fd);
    return 0;
}

static int bind(const struct jail_file *file, const char *target, struct error *err)
{
    if (mount(file->host, target, NULL, MS_BIND, NULL) != 0)
        return error_fmt(err, -errno, "jail: cannot bind-mount %s %s into the jail: %s", file->what,
                         file->host, strerror(errno));
    /* nodev would make a block-device disk unopenable; a regular file gets it. */
    struct stat st;
    bool device = stat(file->host, &st) == 0 && S_ISBLK(st.st_mode);
    unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NOEXEC | (device ? 0 : MS_NODEV);
    if (file->readonly)
        flags |= MS_RDONLY;
    if (mount(NULL, target, NULL, flags, NULL) != 0)
        return error_fmt(err, -errno, "jail: cannot make %s's bind mount %snosuid and noexec: %s",
                         file->what, file->readonly ? "read-only, " : "", strerror(errno));
    return 0;
}

int jail_root_build(const char *root, const struct jail_plan *plan, uid_t uid, gid_t gid,
                    struct error *err)
{
    /* Our mounts must not reach the host's namespace, nor the host's reach ours. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return error_fmt(err, -errno, "jail: cannot make the mounts private: %s", strerror(errno));
    if (mount("kiln-jail", root, "tmpfs", MS_NOSUID, JAIL_TMPFS_OPTIONS) != 0)
        return error_fmt(err, -errno, "jail: cannot mount a tmpfs on %s: %s", root,
                         strerror(errno));
    for (size_t i = 0; i < plan->count; i++) {
        const struct jail_file *file = &plan->files[i];
        char target[4096];
        int r = make_node(root, file, uid, gid, target, sizeof(target), err);
        if (r == 0 && file->create)
            r = create_host_file(file, uid, gid, err);
        if (r == 0 && file->kind == JAIL_FILE_BIND)
            r = bind(file, target, err);
        if (r < 0)
            return r;
    }
    return 0;
}

int jail_root_pivot(const char *root, struct error *err)
{
    /* pivot_root(".", "."): the old root ends up on top of the new one, and is then detached;
     * no folder for it is needed inside the jail. */
    if (chdir(root) != 0)
        return error_fmt(err, -errno, "jail: cannot enter %s: %s", root, strerror(errno));
    if (syscall(SYS_pivot_root, ".", ".") != 0)
        return error_fmt(err, -errno, "jail: cannot pivot_root into %s: %s", root, strerror(errno));
    if (umount2(".", MNT_DETACH) != 0 || chdir("/") != 0)
        return error_fmt(err, -errno, "jail: cannot detach the host's root: %s", strerror(errno));
    /* The VM writes only into its bind-mounted files, never new files in its root. */
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID, NULL) != 0)
        return error_fmt(err, -errno, "jail: cannot make the jail's root read-only: %s",
                         strerror(errno));
    return 0;
}
