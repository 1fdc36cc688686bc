/* A console's output fd that never blocks the loop: a private non-blocking description of a
 * pipe or terminal on stdout, MSG_DONTWAIT for a socket, and plain writes where nothing waits. */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "console_out.h"
#include "kiln/util/fd_private.h"

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
    if (!fd_waits_for_reader(fd))
        return; /* a regular file or /dev/null: a write never waits for a reader */
    console->out_nonblocking = true;
    int flags = fcntl(fd, F_GETFL);
    if (owned || (flags >= 0 && (flags & O_NONBLOCK))) {
        if (flags >= 0)
            fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        return;
    }
    int own = fd_reopen_nonblocking(fd);
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
