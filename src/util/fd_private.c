/* Private non-blocking descriptions of a shared pipe or terminal: O_NONBLOCK belongs to the open
 * file description, so setting it on stdout would change it for the shell too. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "kiln/util/fd_private.h"

bool fd_waits_for_reader(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || isatty(fd));
}

/* A pty's master side: opening it again by path would make a new pty, not share this one. */
static bool is_pty_master(int fd)
{
    unsigned number;
    return ioctl(fd, TIOCGPTN, &number) == 0;
}

int fd_reopen_nonblocking(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || is_pty_master(fd))
        return -1;
    char path[32];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    int own = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (own < 0)
        return -1;
    struct stat again;
    if (fstat(own, &again) != 0 || again.st_dev != st.st_dev || again.st_ino != st.st_ino ||
        again.st_rdev != st.st_rdev) {
        close(own);
        return -1;
    }
    return own;
}

void fd_make_private_nonblocking(int fd)
{
    if (!fd_waits_for_reader(fd))
        return;
    int own = fd_reopen_nonblocking(fd);
    if (own < 0)
        return;
    dup2(own, fd); /* fd keeps its number (and loses close-on-exec, as stderr should) */
    close(own);
}
