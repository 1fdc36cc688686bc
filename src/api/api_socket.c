/* The run folder of the control API's sockets, a VM's default socket name in it, and binding
 * a socket there safely (private mode, a live VM's socket never taken over). */
#include "kiln/api/api_socket.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int api_run_dir(char *out, size_t len, struct error *err)
{
    const char *runtime = getenv("XDG_RUNTIME_DIR");
    int n = runtime && *runtime ? snprintf(out, len, "%s/kiln", runtime)
                                : snprintf(out, len, "/tmp/kiln-%u", (unsigned)geteuid());
    if (n < 0 || (size_t)n >= len)
        return error_fmt(err, -ENAMETOOLONG, "run folder: path too long (limit %zu bytes)",
                         len - 1);
    if (mkdir(out, 0700) < 0 && errno != EEXIST)
        return error_fmt(err, -errno, "run folder %s: mkdir: %s", out, strerror(errno));
    /* lstat: a symlink planted at a guessable /tmp path must not redirect our sockets. */
    struct stat st;
    if (lstat(out, &st) < 0)
        return error_fmt(err, -errno, "run folder %s: %s", out, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return error_fmt(err, -ENOTDIR,
                         "run folder %s: not a directory (expected a folder "
                         "owned by uid %u with mode 0700)",
                         out, (unsigned)geteuid());
    if (st.st_uid != geteuid() || (st.st_mode & 077))
        return error_fmt(err, -EPERM,
                         "run folder %s: owned by uid %u with mode %04o (expected uid %u, no "
                         "group or other access)",
                         out, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
                         (unsigned)geteuid());
    return 0;
}

int api_default_socket_path(const char *name, pid_t pid, char *out, size_t len, struct error *err)
{
    char dir[API_SOCKET_PATH_MAX * 2];
    int r = api_run_dir(dir, sizeof(dir), err);
    if (r < 0)
        return r;
    int n = snprintf(out, len, "%s/%s.%ld.sock", dir, name && *name ? name : "kiln", (long)pid);
    if (n < 0 || (size_t)n >= len)
        return error_fmt(err, -ENAMETOOLONG, "API socket in %s: path too long (limit %zu bytes)",
                         dir, len - 1);
    return 0;
}

static int fill_address(const char *path, struct sockaddr_un *address, struct error *err)
{
    memset(address, 0, sizeof(*address));
    address->sun_family = AF_UNIX;
    size_t len = strlen(path);
    if (len == 0)
        return error_fmt(err, -EINVAL, "API socket: empty path");
    if (len >= sizeof(address->sun_path))
        return error_fmt(err, -ENAMETOOLONG,
                         "API socket %s: path of %zu bytes (a Unix socket path must be under %zu)",
                         path, len, sizeof(address->sun_path));
    memcpy(address->sun_path, path, len);
    return 0;
}

/* A path already there: refused if live or not a socket; removed if a stale socket. */
static int clear_old_socket(const char *path, const struct sockaddr_un *address, struct error *err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0
                               : error_fmt(err, -errno, "API socket %s: %s", path, strerror(errno));
    if (!S_ISSOCK(st.st_mode))
        return error_fmt(err, -EEXIST, "API socket %s: exists and is not a socket", path);
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return error_fmt(err, -errno, "API socket %s: socket: %s", path, strerror(errno));
    int r = connect(probe, (const struct sockaddr *)address, sizeof(*address));
    int connect_errno = errno;
    close(probe);
    if (r == 0 || connect_errno == EAGAIN)
        return error_fmt(err, -EADDRINUSE, "API socket %s: another process is serving it", path);
    if (connect_errno != ECONNREFUSED)
        return error_fmt(err, -connect_errno, "API socket %s: checking the old socket: %s", path,
                         strerror(connect_errno));
    if (unlink(path) < 0 && errno != ENOENT)
        return error_fmt(err, -errno, "API socket %s: removing the stale socket: %s", path,
                         strerror(errno));
    return 0;
}

int api_socket_bind(const char *path, uid_t uid, gid_t gid, int *fd_out, struct error *err)
{
    struct sockaddr_un address;
    int r = fill_address(path, &address, err);
    if (r < 0)
        return r;
    r = clear_old_socket(path, &address, err);
    if (r < 0)
        return r;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return error_fmt(err, -errno, "API socket %s: socket: %s", path, strerror(errno));
    /* Linux creates the socket file with the socket inode's mode (less the umask): set it
     * first, so there is no moment the file is open to others before the chmod below. The
     * umask itself is process-wide, so it is left alone. */
    fchmod(fd, 0600);
    if (bind(fd, (const struct sockaddr *)&address, sizeof(address)) < 0) {
        int bind_errno = errno;
        close(fd);
        return error_fmt(err, -bind_errno, "API socket %s: bind: %s", path, strerror(bind_errno));
    }
    const char *step = NULL;
    if (chmod(path, 0600) < 0)
        step = "chmod";
    else if ((uid != (uid_t)-1 || gid != (gid_t)-1) && lchown(path, uid, gid) < 0)
        step = "chown";
    else if (listen(fd, 16) < 0)
        step = "listen";
    if (step) {
        int step_errno = errno;
        close(fd);
        unlink(path);
        return error_fmt(err, -step_errno, "API socket %s: %s: %s", path, step,
                         strerror(step_errno));
    }
    *fd_out = fd;
    return 0;
}
