/* Serial console plumbing between the UART and the host: output buffering and draining on
 * the loop, stdin polling with back-pressure from the RX FIFO, raw-mode tty handling. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln/console.h"

int console_open(struct console *console, enum console_kind kind, const char *path, bool append,
                 struct error *err)
{
    memset(console, 0, sizeof(*console));
    pthread_mutex_init(&console->lock, NULL);
    console->out_fd = -1;
    console->in_fd = -1;
    console->out_buf = malloc(CONSOLE_OUT_CAPACITY);
    console->out_spare = malloc(CONSOLE_OUT_CAPACITY);
    if (!console->out_buf || !console->out_spare) {
        console_close(console);
        return error_fmt(err, -ENOMEM, "console: out of memory");
    }
    if (kind == CONSOLE_STDIO) {
        console->out_fd = STDOUT_FILENO;
        console->in_fd = STDIN_FILENO;
    } else if (kind == CONSOLE_FILE) {
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
        if (fd < 0) {
            int e = errno;
            console_close(console);
            return error_fmt(err, -e, "--console: cannot open 'file:%s' for writing: %s", path,
                             strerror(e));
        }
        console->out_fd = fd;
        console->out_owned = true;
    }
    return 0;
}

static void write_all(struct console *console, const uint8_t *buf, size_t len)
{
    while (len > 0 && !console->out_broken) {
        ssize_t n = write(console->out_fd, buf, len);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EAGAIN) {
            struct pollfd pfd = {.fd = console->out_fd, .events = POLLOUT};
            poll(&pfd, 1, 100);
        } else if (!(n < 0 && errno == EINTR)) {
            console->out_broken = true; /* reader went away: keep the guest running, drop output */
        }
    }
}

void console_flush(struct console *console)
{
    pthread_mutex_lock(&console->lock);
    uint8_t *data = console->out_buf;
    size_t len = console->out_len;
    bool was_full = console->out_was_full;
    console->out_buf = console->out_spare;
    console->out_spare = data;
    console->out_len = 0;
    console->out_was_full = false;
    pthread_mutex_unlock(&console->lock);

    if (len > 0 && console->out_fd >= 0)
        write_all(console, data, len);
    if (was_full && console->device_attached)
        console->device.tx_ready_again(console->device.opaque);
}

bool console_tx_ready(void *opaque)
{
    struct console *console = opaque;
    pthread_mutex_lock(&console->lock);
    bool ready = console->out_len < CONSOLE_OUT_CAPACITY;
    if (!ready)
        console->out_was_full = true;
    pthread_mutex_unlock(&console->lock);
    return ready;
}

void console_tx(void *opaque, uint8_t byte)
{
    struct console *console = opaque;
    pthread_mutex_lock(&console->lock);
    bool first = console->out_len == 0;
    if (console->out_len < CONSOLE_OUT_CAPACITY) {
        console->out_buf[console->out_len++] = byte;
        console->out_bytes++;
    }
    pthread_mutex_unlock(&console->lock);
    /* One wakeup per batch: the loop drains everything queued since. */
    if (first && console->attached)
        uv_async_send(&console->out_async);
}

size_t console_write(struct console *console, const uint8_t *bytes, size_t len)
{
    pthread_mutex_lock(&console->lock);
    bool first = console->out_len == 0;
    size_t n = CONSOLE_OUT_CAPACITY - console->out_len;
    if (n > len)
        n = len;
    memcpy(console->out_buf + console->out_len, bytes, n);
    console->out_len += n;
    console->out_bytes += n;
    if (n < len)
        console->out_was_full = true;
    pthread_mutex_unlock(&console->lock);
    if (first && n > 0 && console->attached)
        uv_async_send(&console->out_async);
    return n;
}

void console_rx_space(void *opaque)
{
    struct console *console = opaque;
    if (console->attached && !console->in_polling)
        uv_async_send(&console->in_space_async);
}

static void on_out_async(uv_async_t *handle)
{
    console_flush(handle->data);
}

static void on_stdin_readable(uv_poll_t *handle, int status, int events);

/* Hands buffered stdin bytes to the device; stops polling stdin while it is full. */
static void feed_device(struct console *console)
{
    console->in_off +=
        console->device.receive(console->device.opaque, console->in_buf + console->in_off,
                                console->in_len - console->in_off);
    bool drained = console->in_off == console->in_len;
    if (drained && !console->in_polling && console->in_fd >= 0) {
        uv_poll_start(&console->in_poll, UV_READABLE, on_stdin_readable);
        console->in_polling = true;
    } else if (!drained && console->in_polling) {
        uv_poll_stop(&console->in_poll);
        console->in_polling = false;
    }
}

/* Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A; any other pair passes both bytes through. */
static size_t filter_escapes(struct console *console, uint8_t *buf, size_t len)
{
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = buf[i];
        if (console->escape_pending) {
            console->escape_pending = false;
            if (c == 'x' || c == 'X') {
                console->on_quit(console->quit_opaque);
                return out;
            }
            if (c != CONSOLE_ESCAPE_KEY)
                buf[out++] = CONSOLE_ESCAPE_KEY;
            buf[out++] = c;
        } else if (c == CONSOLE_ESCAPE_KEY) {
            console->escape_pending = true;
        } else {
            buf[out++] = c;
        }
    }
    return out;
}

static void stop_input(struct console *console)
{
    if (console->in_polling)
        uv_poll_stop(&console->in_poll);
    console->in_polling = false;
    console->in_fd = -1;
}

static void on_stdin_readable(uv_poll_t *handle, int status, int events)
{
    struct console *console = handle->data;
    if (status < 0) {
        stop_input(console);
        return;
    }
    ssize_t n = read(console->in_fd, console->in_buf, sizeof(console->in_buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        stop_input(console); /* EOF: the guest simply gets no more input */
        return;
    }
    size_t len = (size_t)n;
    if (console->in_is_tty && console->on_quit)
        len = filter_escapes(console, console->in_buf, len);
    console->in_off = 0;
    console->in_len = len;
    feed_device(console);
}

static void on_in_space(uv_async_t *handle)
{
    struct console *console = handle->data;
    if (console->in_off < console->in_len)
        feed_device(console);
}

static void enter_raw_mode(struct console *console)
{
    struct termios raw;
    if (tcgetattr(console->in_fd, &console->saved_termios) != 0)
        return;
    console->termios_saved = true;
    raw = console->saved_termios;
    /* Keys go to the guest as typed (Ctrl-C included); output processing stays on so that
     * a guest's bare '\n' still starts a new line. */
    raw.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    raw.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    raw.c_cflag |= CS8;
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    tcsetattr(console->in_fd, TCSANOW, &raw);
}

int console_attach(struct console *console, uv_loop_t *loop, const struct console_device *device,
                   void (*on_quit)(void *opaque), void *quit_opaque, struct error *err)
{
    console->loop = loop;
    console->device = *device;
    console->device_attached = true;
    console->on_quit = on_quit;
    console->quit_opaque = quit_opaque;
    uv_async_init(loop, &console->out_async, on_out_async);
    console->out_async.data = console;
    uv_async_init(loop, &console->in_space_async, on_in_space);
    console->in_space_async.data = console;
    console->attached = true;

    /* stdin may be /dev/null or a regular file (epoll refuses those): then no input. */
    if (console->in_fd >= 0 && uv_poll_init(loop, &console->in_poll, console->in_fd) == 0) {
        console->in_poll.data = console;
        console->in_is_tty = isatty(console->in_fd);
        if (console->in_is_tty)
            enter_raw_mode(console);
        uv_poll_start(&console->in_poll, UV_READABLE, on_stdin_readable);
        console->in_polling = true;
    } else {
        console->in_fd = -1;
    }
    return 0;
}

void console_detach(struct console *console)
{
    if (!console->attached)
        return;
    console_flush(console);
    console->attached = false;
    uv_close((uv_handle_t *)&console->out_async, NULL);
    uv_close((uv_handle_t *)&console->in_space_async, NULL);
    if (uv_is_active((uv_handle_t *)&console->in_poll) || console->in_poll.data == console) {
        uv_poll_stop(&console->in_poll);
        uv_close((uv_handle_t *)&console->in_poll, NULL);
    }
    console->in_polling = false;
}

void console_close(struct console *console)
{
    if (console->termios_saved) {
        tcsetattr(STDIN_FILENO, TCSANOW, &console->saved_termios);
        console->termios_saved = false;
    }
    if (console->out_buf && console->out_len > 0 && console->out_fd >= 0)
        console_flush(console);
    if (console->out_owned && console->out_fd >= 0)
        close(console->out_fd);
    console->out_fd = -1;
    console->out_owned = false;
    free(console->out_buf);
    free(console->out_spare);
    console->out_buf = console->out_spare = NULL;
}
