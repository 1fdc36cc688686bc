/* A private non-blocking open file description of a pipe or terminal kiln shares with other
 * processes (stdout, stderr), so that kiln can stop waiting for a reader without changing them. */
#ifndef KILN_UTIL_FD_PRIVATE_H
#define KILN_UTIL_FD_PRIVATE_H

#include <stdbool.h>

/* True for a pipe (FIFO) or a terminal: the kinds of fd whose writes wait for a reader. */
bool fd_waits_for_reader(int fd);

/* A new O_NONBLOCK, close-on-exec description of the same pipe or terminal as fd (through
 * /proc/self/fd), or -1: no /proc, a pty master (reopening one makes a new pty), or the path
 * no longer names what fd is open on. fd's own description is left as it was. */
int fd_reopen_nonblocking(int fd);

/* Makes fd itself (stderr, say) a private non-blocking description of its pipe or terminal;
 * leaves it alone if it is something else or cannot be reopened. */
void fd_make_private_nonblocking(int fd);

#endif
