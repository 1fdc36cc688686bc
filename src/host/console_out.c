/* A console's output fd that never blocks the loop: a private non-blocking description of a
 * pipe or terminal on stdout, MSG_DONTWAIT for a socket, and plain writes where nothing waits. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "console_out.h"

/* A pty's master side: opening it again by path would make a new pty, not share this one. */
static bool is_pty_master(int fd)
{
    unsigned number;
    return ioctl(fd, TIOCGPTN, &number) == 0;
}

/* A new open file description of what fd is open on, O_NONBLOCK only for us; -1 if it cannot
 * be had (no /proc, a socket, a pty master) or is not the same pipe or terminal. */
static int reopen_private(int fd, const struct stat *st)
{
    if (is_pty_master(fd))
        return -1;
    char path[32];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    int own = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (own < 0)
        return -1;
    struct stat again;
    if (fstat(own, &again) != 0 || again.st_dev != st->st_dev || again.st_ino != st->st_ino ||
        again.st_rdev != st->st_rdev) {
        close(own);
        return -1;
    }
    return own;
}

void console_out_use(struct console *console, int fd, bool owned)
{
    console->out_fd = fd;
    console->out_nonblocking = false;
    console->out_is_socket = false;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return;
    if (S_ISSOCK(st.st_mode)) {
        console->out_is_socket = true;
        console->out_nonblocking = true;
        return;
    }
    if (!S_ISFIFO(st.st_mode) && !isatty(fd))
        return; /* a regular file or /dev/null: a write never waits for a reader */
    console->out_nonblocking = true;
    int flags = fcntl(fd, F_GETFL);
    if (owned || (flags >= 0 && (flags & O_NONBLOCK))) {
        if (flags >= 0)
            fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        return;
    }
    int own = reopen_private(fd, &st);
    if (own >= 0) {
        console->out_fd = own;
        console->out_private_fd = own;
        return;
    }
    /* The last resort changes the shared description for as long as kiln runs. */
    if (flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0) {
        console->out_saved_flags = flags;
        console->out_flags_changed = true;
    }
}

ssize_t console_out_write(struct console *console, const void *buf, size_t len)
{
    if (console->out_is_socket)
        return send(console->out_fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    return write(console->out_fd, buf, len);
}

void console_out_release(struct console *console)
{
    if (console->out_flags_changed && console->out_fd >= 0)
        fcntl(console->out_fd, F_SETFL, console->out_saved_flags);
    console->out_flags_changed = false;
    if (console->out_private_fd >= 0)
        close(console->out_private_fd);
    console->out_private_fd = -1;
}
