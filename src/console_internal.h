/* What console.c (buffering, stdio, feeding the device) and console_endpoint.c (socket and pty
 * sinks, which come and go while the VM runs) share. Loop thread only. */
#ifndef KILN_CONSOLE_INTERNAL_H
#define KILN_CONSOLE_INTERNAL_H

#include "kiln/console.h"

/* Makes io_poll watch what is wanted now: input while the device has room, output while a
 * non-blocking sink has bytes waiting. */
void console_watch(struct console *console);

/* A socket client or pty reader is here: its fd becomes the console's input and output. */
void console_peer_arrived(struct console *console, int fd);

/* It went away: input stops, output is discarded until the next one comes. */
void console_peer_gone(struct console *console);

/* Socket and pty halves of console_open/attach/detach/close. */
int console_endpoint_open(struct console *console, const char *path, struct error *err);
void console_endpoint_attach(struct console *console);
void console_endpoint_detach(struct console *console);
void console_endpoint_close(struct console *console);

/* uv_close callback for handles console code allocated. */
void console_free_handle(uv_handle_t *handle);

#endif
