/* The host side of the guest's console: guest output buffered and written by the libuv loop
 * (vCPU threads never block on the terminal), host stdin fed into the console device (the
 * UART, or virtio-console). */
#ifndef KILN_CONSOLE_H
#define KILN_CONSOLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <termios.h>
#include <uv.h>

#include "kiln/config/config.h"
#include "kiln/util/error.h"

/* Guest output kiln holds: two buffers of this size (one being written to the sink, one
 * filling), so at most 128 KiB. Past that the devices hold the guest back (docs/cli.md). */
#define CONSOLE_OUT_CAPACITY (64 * 1024)
/* At exit, how long the sink gets to take what is still buffered before it is dropped. */
#define CONSOLE_DRAIN_MS 2000

struct console_sink_ops;
#define CONSOLE_ESCAPE_KEY 0x01 /* Ctrl-A, then 'x' quits (only when stdin is a terminal) */

/* The guest-side device a console feeds: the 16550 or virtio-console. Both run on the loop
 * thread. receive() takes what it can of the input and returns how much; when it took less,
 * the device calls console_rx_space() once it has room again. tx_ready_again() tells a device
 * that found the output buffer full that there is space now. */
struct console_device {
    size_t (*receive)(void *opaque, const uint8_t *bytes, size_t len);
    void (*tx_ready_again)(void *opaque);
    void *opaque;
};

struct console {
    /* Guest output, filled by vCPU threads (under lock), swapped out and written by the loop. */
    pthread_mutex_t lock;
    uint8_t *out_buf, *out_spare;
    size_t out_len;
    bool out_was_full;
    uint64_t out_bytes;

    /* The rest belongs to the loop thread (and to open/close, before and after the loop). */
    enum console_kind kind;
    const struct console_sink_ops *sink; /* its kind's (src/console_sink.h) */
    /* console.c's, for the socket and pty sinks: a client or reader with fd is here. */
    void (*peer_arrived)(struct console *console, int fd);
    const char *label;      /* "--console" or "--vconsole", for messages */
    int out_fd;             /* -1: output discarded (none, or no socket client or pty reader now) */
    bool out_nonblocking;   /* a pipe, terminal or socket: what does not fit waits for POLLOUT */
    bool out_is_socket;     /* stdout is a socket: send() with MSG_DONTWAIT (console_out.c) */
    int out_private_fd;     /* our own description of stdout's pipe or terminal, or -1 */
    bool out_flags_changed; /* stdout's shared flags were changed (no /proc): put them back */
    int out_saved_flags;
    bool out_broken;
    size_t spare_off, spare_len; /* out_spare[spare_off, spare_len) is still to be written */

    int in_fd; /* -1: no input (now) */
    bool in_is_tty;
    bool escape_pending;
    uint8_t in_buf[4096];
    size_t in_off, in_len; /* in_buf[in_off, in_len) waits for room in the device */
    struct termios saved_termios;
    bool termios_saved;

    uv_poll_t *io_poll; /* watches in_fd (also for output when out_fd is the same fd) */
    int io_poll_fd;
    uv_poll_t *out_poll; /* watches out_fd for room when it is not in_fd */
    int out_poll_fd;

    int listen_fd; /* socket:PATH: the listening socket; in_fd/out_fd are its one client */
    char *socket_path;
    uv_poll_t *listen_poll;

    int pty_fd; /* pty: the master side; in_fd/out_fd are it while someone has the pty open */
    char pty_path[64];
    uv_timer_t pty_timer; /* looks for a reader while nobody has the pty open */
    bool pty_timer_running;

    struct console_device device;
    bool device_attached;
    void (*on_quit)(void *opaque); /* Ctrl-A x */
    void *quit_opaque;

    uv_loop_t *loop;
    uv_async_t out_async;
    uv_async_t in_space_async;
    bool attached;
};

/* Opens the sink named by the config: stdout and stdin, a file, nothing, a listening Unix socket
 * or a new pty. Nothing touches the loop. label names the setting in messages ("--console").
 * append: keep what an earlier boot of the same VM wrote (after a guest reset + restart). */
int console_open(struct console *console, const char *label, enum console_kind kind,
                 const char *path, bool append, struct error *err);

/* The pty's path (/dev/pts/N) for the user to open, or NULL if the sink is not a pty. */
const char *console_pty_path(const struct console *console);

/* Starts loop work: output draining, reading input (stdin, the socket's client, the pty) into
 * the device, accepting socket clients. Puts a tty stdin into raw mode; console_close()
 * restores it. */
int console_attach(struct console *console, uv_loop_t *loop, const struct console_device *device,
                   void (*on_quit)(void *opaque), void *quit_opaque, struct error *err);

/* Appends guest output (any thread); returns how many bytes fit. When not all did, the
 * device's tx_ready_again() runs once the loop has written the buffer out. */
size_t console_write(struct console *console, const uint8_t *bytes, size_t len);

/* Writes what the sink takes now of everything buffered (the rest waits for room: the loop
 * polls for it while attached). Never waits for the sink. */
void console_flush(struct console *console);

/* After the loop: writes what is still buffered, waiting at most timeout_ms in all for the
 * sink to take it; what it did not take by then is dropped. Returns how many bytes that was. */
size_t console_drain(struct console *console, unsigned timeout_ms);

/* Closes the loop handles (the loop must run once more to finish closing them). */
void console_detach(struct console *console);

/* Restores the terminal, flushes, closes what it opened (and removes the socket). Safe to call
 * more than once. */
void console_close(struct console *console);

/* The serial backend half that the UART calls (on vCPU threads, with the UART lock held). */
bool console_tx_ready(void *opaque);
void console_tx(void *opaque, uint8_t byte);
void console_rx_space(void *opaque);

#endif
