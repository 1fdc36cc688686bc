/* Console sinks as one ops table: how console.c opens, attaches, loses a peer of, detaches and
 * closes each kind (stdio, file, none in console.c; socket and pty in console_endpoint.c). */
#ifndef KILN_CONSOLE_SINK_H
#define KILN_CONSOLE_SINK_H

#include "kiln/host/console.h"

/* console.c calls these and nothing else of a sink; a sink never calls into console.c: a socket
 * client or pty reader arriving is reported through console->peer_arrived. NULL: nothing to
 * do. Loop thread only, except open and close (before and after the loop). */
struct console_sink_ops {
    /* Makes the sink ready without the loop: out_fd and in_fd for ends that exist now (stdout,
     * a file), a listening socket or a pty for ends that come later. path: file:PATH's or
     * socket:PATH's; append: keep what an earlier boot wrote. */
    int (*open)(struct console *console, const char *path, bool append, struct error *err);
    /* Starts its loop work, and again after a peer left: wait for a socket client or a pty
     * reader; put a terminal stdin into raw mode. */
    void (*attach)(struct console *console);
    /* Its peer (the socket client, the pty reader) left or its input ended: drop what the sink
     * holds of it. NULL: a sink without peers, whose input just ends. */
    void (*peer_gone)(struct console *console);
    /* Closes its loop handles (the loop must run once more to finish closing them). */
    void (*detach)(struct console *console);
    /* Releases what open took; safe after a failed open and twice. */
    void (*close)(struct console *console);
};

extern const struct console_sink_ops console_stdio_sink; /* console.c */
extern const struct console_sink_ops console_file_sink;
extern const struct console_sink_ops console_none_sink;
extern const struct console_sink_ops console_socket_sink; /* console_endpoint.c */
extern const struct console_sink_ops console_pty_sink;

#endif
