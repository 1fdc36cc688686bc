/* How a console's output fd is made safe for the loop: writes that never wait for a reader
 * (stdout or a file sink), without changing stdout for the processes that share it. */
#ifndef KILN_CONSOLE_OUT_H
#define KILN_CONSOLE_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "kiln/host/console.h"

/* Sets console->out_fd for writing to fd without blocking where a reader can stall:
 * - a pipe or terminal: a private O_NONBLOCK open file description of the same pipe or
 *   terminal (through /proc/self/fd), so the shell's stdout keeps its flags; fd itself if it
 *   is private already (owned: a file sink kiln opened) or non-blocking already (main.c took
 *   a private description of stdout before a jail without /proc);
 * - a socket: fd with send(MSG_DONTWAIT);
 * - a regular file, /dev/null or another device: fd as it is (a write there never waits for
 *   a reader, and epoll cannot watch it).
 * Without /proc the shared description is made O_NONBLOCK and console_out_release() puts its
 * flags back. */
void console_out_use(struct console *console, int fd, bool owned);

/* One write of up to len bytes to out_fd, as write(2) answers (-1 with errno EAGAIN when a
 * non-blocking sink is full). */
ssize_t console_out_write(struct console *console, const void *buf, size_t len);

/* Closes the private description and puts back flags console_out_use() changed. */
void console_out_release(struct console *console);

#endif
