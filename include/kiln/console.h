/* The host side of the guest's serial console: guest output buffered and written by the
 * libuv loop (vCPU threads never block on the terminal), host stdin fed into the UART. */
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

    struct serial *serial;
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

/* Starts loop work: output draining and (for stdio) reading stdin into serial. Puts a tty
 * stdin into raw mode; console_close() restores it. */
int console_attach(struct console *console, uv_loop_t *loop, struct serial *serial,
                   void (*on_quit)(void *opaque), void *quit_opaque, struct error *err);

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
