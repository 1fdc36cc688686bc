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

#include "kiln/config.h"
#include "kiln/devices/serial.h"
#include "kiln/error.h"

#define CONSOLE_OUT_CAPACITY (64 * 1024)
#define CONSOLE_ESCAPE_KEY   0x01 /* Ctrl-A, then 'x' quits (only when stdin is a terminal) */

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
    pthread_mutex_t lock;
    int out_fd;     /* -1: output discarded (--console none) */
    bool out_owned; /* we opened it (file:PATH), so we close it */
    bool out_broken;
    uint8_t *out_buf, *out_spare; /* filled by vCPU threads, swapped and written by the loop */
    size_t out_len;
    bool out_was_full;
    uint64_t out_bytes;

    int in_fd; /* -1: no input */
    bool in_is_tty;
    bool in_polling;
    bool escape_pending;
    uint8_t in_buf[4096];
    size_t in_off, in_len;
    struct termios saved_termios;
    bool termios_saved;

    struct console_device device;
    bool device_attached;
    void (*on_quit)(void *opaque); /* Ctrl-A x */
    void *quit_opaque;

    uv_loop_t *loop;
    uv_async_t out_async;
    uv_async_t in_space_async;
    uv_poll_t in_poll;
    bool attached;
};

/* Opens the sink named by the config (stdout, a file, or nothing). Nothing touches the loop. */
/* append: keep what an earlier boot of the same VM wrote (after a guest reset + restart). */
int console_open(struct console *console, enum console_kind kind, const char *path, bool append,
                 struct error *err);

/* Starts loop work: output draining and (for stdio) reading stdin into the device. Puts a tty
 * stdin into raw mode; console_close() restores it. */
int console_attach(struct console *console, uv_loop_t *loop, const struct console_device *device,
                   void (*on_quit)(void *opaque), void *quit_opaque, struct error *err);

/* Appends guest output (any thread); returns how many bytes fit. When not all did, the
 * device's tx_ready_again() runs once the loop has written the buffer out. */
size_t console_write(struct console *console, const uint8_t *bytes, size_t len);

/* Writes out everything buffered; called by the loop and once more at shutdown. */
void console_flush(struct console *console);

/* Closes the loop handles (the loop must run once more to finish closing them). */
void console_detach(struct console *console);

/* Restores the terminal, flushes, closes an owned file. Safe to call more than once. */
void console_close(struct console *console);

/* The serial backend half that the UART calls (on vCPU threads, with the UART lock held). */
bool console_tx_ready(void *opaque);
void console_tx(void *opaque, uint8_t byte);
void console_rx_space(void *opaque);

#endif
