/* The console between a guest device (16550 or virtio-console) and the host: output buffering
 * and draining on the loop, input with back-pressure from the device, raw-mode tty handling,
 * and the stdio, file and none sinks; it calls every sink through its console_sink_ops. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "console_out.h"
#include "console_sink.h"

static void watch(struct console *console);
static void peer_arrived(struct console *console, int fd);
static void peer_gone(struct console *console);

int console_open(struct console *console, const char *label, enum console_kind kind,
                 const char *path, bool append, struct error *err)
{
    static const struct console_sink_ops *const sinks[] = {
        [CONSOLE_STDIO] = &console_stdio_sink, [CONSOLE_FILE] = &console_file_sink,
        [CONSOLE_NONE] = &console_none_sink,   [CONSOLE_SOCKET] = &console_socket_sink,
        [CONSOLE_PTY] = &console_pty_sink,
    };
    memset(console, 0, sizeof(*console));
    pthread_mutex_init(&console->lock, NULL);
    console->kind = kind;
    console->sink = (unsigned)kind < sizeof(sinks) / sizeof(sinks[0]) && sinks[kind]
                        ? sinks[kind]
                        : &console_none_sink;
    console->peer_arrived = peer_arrived;
    console->label = label;
    console->out_fd = -1;
    console->in_fd = -1;
    console->listen_fd = -1;
    console->pty_fd = -1;
    console->out_private_fd = -1;
    console->io_poll_fd = -1;
    console->out_poll_fd = -1;
    console->out_buf = malloc(CONSOLE_OUT_CAPACITY);
    console->out_spare = malloc(CONSOLE_OUT_CAPACITY);
    if (!console->out_buf || !console->out_spare) {
        console_close(console);
        return error_fmt(err, -ENOMEM, "%s: out of memory", label);
    }
    int r = console->sink->open ? console->sink->open(console, path, append, err) : 0;
    if (r < 0)
        console_close(console);
    return r;
}

const char *console_pty_path(const struct console *console)
{
    return console->pty_path[0] ? console->pty_path : NULL;
}

static void free_handle(uv_handle_t *handle)
{
    free(handle);
}

/* For sinks where a write never waits for a reader (a regular file, /dev/null). */
static void write_all(struct console *console, const uint8_t *buf, size_t len)
{
    while (len > 0 && !console->out_broken) {
        ssize_t n = console_out_write(console, buf, len);
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

/* Writes what it can of out_spare: all of it to a file, up to EAGAIN to a pipe, terminal,
 * socket client or pty (the rest waits for POLLOUT); nothing while the sink is absent. */
static void write_spare(struct console *console)
{
    if (console->out_fd < 0 || console->out_broken) {
        console->spare_off = console->spare_len;
    } else if (!console->out_nonblocking) {
        write_all(console, console->out_spare + console->spare_off,
                  console->spare_len - console->spare_off);
        console->spare_off = console->spare_len;
    }
    while (console->spare_off < console->spare_len) {
        ssize_t n = console_out_write(console, console->out_spare + console->spare_off,
                                      console->spare_len - console->spare_off);
        if (n > 0) {
            console->spare_off += (size_t)n;
        } else if (n < 0 && errno == EAGAIN) {
            break;
        } else if (!(n < 0 && errno == EINTR)) {
            if (console->attached && console->sink->peer_gone) {
                peer_gone(console); /* the client hung up: discard until the next */
                return;
            }
            console->out_broken = true; /* the reader went away: keep the guest running */
            console->spare_off = console->spare_len;
        }
    }
    if (console->attached)
        watch(console);
}

static size_t buffered(struct console *console)
{
    pthread_mutex_lock(&console->lock);
    size_t len = console->out_len;
    pthread_mutex_unlock(&console->lock);
    return console->spare_len - console->spare_off + len;
}

void console_flush(struct console *console)
{
    if (console->spare_off < console->spare_len) {
        write_spare(console);
        if (console->spare_off < console->spare_len)
            return; /* the sink is slow: the guest's new output waits in out_buf */
    }
    pthread_mutex_lock(&console->lock);
    uint8_t *data = console->out_buf;
    size_t len = console->out_len;
    bool was_full = console->out_was_full;
    console->out_buf = console->out_spare;
    console->out_spare = data;
    console->out_len = 0;
    console->out_was_full = false;
    pthread_mutex_unlock(&console->lock);

    console->spare_off = 0;
    console->spare_len = len;
    write_spare(console);
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
    if (console->attached)
        uv_async_send(&console->in_space_async);
}

static void on_out_async(uv_async_t *handle)
{
    console_flush(handle->data);
}

/* Hands buffered input to the device; watch() stops reading while it is full. */
static void feed_device(struct console *console)
{
    console->in_off +=
        console->device.receive(console->device.opaque, console->in_buf + console->in_off,
                                console->in_len - console->in_off);
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

static void close_poll(uv_poll_t **poll, int *poll_fd)
{
    if (*poll)
        uv_close((uv_handle_t *)*poll, free_handle);
    *poll = NULL;
    *poll_fd = -1;
}

static void close_io_poll(struct console *console)
{
    close_poll(&console->io_poll, &console->io_poll_fd);
}

/* End of stdin: the guest simply gets no more input. A socket client or pty reader leaving
 * makes room for the next one. */
static void input_ended(struct console *console)
{
    if (console->sink->peer_gone) {
        peer_gone(console);
        return;
    }
    console->in_fd = -1;
    console->in_off = console->in_len = 0;
    close_io_poll(console);
}

static void read_input(struct console *console)
{
    ssize_t n = read(console->in_fd, console->in_buf, sizeof(console->in_buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        input_ended(console);
        return;
    }
    size_t len = (size_t)n;
    if (console->in_is_tty && console->on_quit)
        len = filter_escapes(console, console->in_buf, len);
    console->in_off = 0;
    console->in_len = len;
    feed_device(console);
}

static void on_io(uv_poll_t *handle, int status, int events)
{
    struct console *console = handle->data;
    if (status < 0) {
        input_ended(console);
        console_flush(console);
        return;
    }
    if (events & UV_WRITABLE)
        console_flush(console);
    if ((events & UV_READABLE) && console->in_fd >= 0 && console->io_poll == handle)
        read_input(console);
    if (console->io_poll == handle)
        watch(console);
}

/* The sink has room again (or failed: then its output is dropped from now on). */
static void on_out_writable(uv_poll_t *handle, int status, int events)
{
    struct console *console = handle->data;
    if (status < 0)
        console->out_broken = true;
    console_flush(console);
}

/* Makes *poll watch fd for events, or stop for none; false if epoll refuses fd. */
static bool poll_fd(struct console *console, uv_poll_t **poll, int *poll_fd, int fd, int events,
                    uv_poll_cb callback)
{
    if (*poll && *poll_fd != fd)
        close_poll(poll, poll_fd);
    if (events == 0) {
        if (*poll)
            uv_poll_stop(*poll);
        return true;
    }
    if (!*poll) {
        uv_poll_t *handle = malloc(sizeof(*handle));
        if (!handle || uv_poll_init(console->loop, handle, fd) != 0) {
            free(handle);
            return false;
        }
        handle->data = console;
        *poll = handle;
        *poll_fd = fd;
    }
    uv_poll_start(*poll, events, callback);
    return true;
}

/* Makes the polls watch what is wanted now: input while the device has room, output while a
 * non-blocking sink has bytes waiting (on io_poll if it is the input's fd, else out_poll). */
static void watch(struct console *console)
{
    bool out_waiting =
        console->out_nonblocking && console->out_fd >= 0 && console->spare_off < console->spare_len;
    bool shared = console->out_fd == console->in_fd;
    int in_events = 0;
    if (console->in_fd >= 0 && console->in_off == console->in_len)
        in_events |= UV_READABLE;
    if (shared && out_waiting)
        in_events |= UV_WRITABLE;
    /* stdin may be /dev/null or a regular file, which epoll refuses: then no input. */
    if (!poll_fd(console, &console->io_poll, &console->io_poll_fd, console->in_fd, in_events,
                 on_io))
        console->in_fd = -1;
    int out_events = !shared && out_waiting ? UV_WRITABLE : 0;
    /* console_out_use() made only pollable fds non-blocking; should epoll refuse one anyway,
     * it is written as a file is. */
    if (!poll_fd(console, &console->out_poll, &console->out_poll_fd, console->out_fd, out_events,
                 on_out_writable))
        console->out_nonblocking = false;
}

/* A socket client or pty reader is here: its fd becomes the console's input and output. */
static void peer_arrived(struct console *console, int fd)
{
    console->in_fd = console->out_fd = fd;
    console->out_nonblocking = true;
    console->out_broken = false;
    console->in_off = console->in_len = 0;
    console->escape_pending = false;
    watch(console);
}

/* It went away: input stops, output is discarded until the next one comes. */
static void peer_gone(struct console *console)
{
    close_io_poll(console);
    console->sink->peer_gone(console);
    console->in_fd = console->out_fd = -1;
    console->in_off = console->in_len = 0;
    console->spare_off = console->spare_len; /* what it did not read is discarded */
    if (console->attached && console->sink->attach)
        console->sink->attach(console); /* wait for the next client or reader */
}

static void on_in_space(uv_async_t *handle)
{
    struct console *console = handle->data;
    if (console->in_off < console->in_len) {
        feed_device(console);
        watch(console);
    }
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

    if (console->sink->attach)
        console->sink->attach(console);
    watch(console);
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
    close_io_poll(console);
    close_poll(&console->out_poll, &console->out_poll_fd);
    if (console->sink->detach)
        console->sink->detach(console);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t console_drain(struct console *console, unsigned timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        console_flush(console);
        size_t left = buffered(console);
        int64_t wait_ms = deadline - now_ms();
        if (left == 0 || wait_ms <= 0 || console->out_fd < 0 || console->out_broken)
            break;
        struct pollfd pfd = {.fd = console->out_fd, .events = POLLOUT};
        poll(&pfd, 1, (int)wait_ms);
    }
    size_t dropped = buffered(console);
    console->spare_off = console->spare_len;
    pthread_mutex_lock(&console->lock);
    console->out_len = 0;
    console->out_was_full = false;
    pthread_mutex_unlock(&console->lock);
    return dropped;
}

void console_close(struct console *console)
{
    console->device_attached = false; /* the device may be gone: its output is all here */
    if (console->termios_saved) {
        tcsetattr(STDIN_FILENO, TCSANOW, &console->saved_termios);
        console->termios_saved = false;
    }
    if (console->out_buf && console->out_spare)
        console_flush(console);
    console_out_release(console);
    if (console->sink && console->sink->close)
        console->sink->close(console);
    console->out_fd = -1;
    free(console->out_buf);
    free(console->out_spare);
    console->out_buf = console->out_spare = NULL;
}

static int open_stdio(struct console *console, const char *path, bool append, struct error *err)
{
    console_out_use(console, STDOUT_FILENO, false);
    console->in_fd = STDIN_FILENO;
    return 0;
}

/* A terminal stdin goes raw while the guest runs; console_close restores it. */
static void attach_stdio(struct console *console)
{
    if (console->in_fd < 0 || console->termios_saved)
        return;
    console->in_is_tty = isatty(console->in_fd);
    if (console->in_is_tty)
        enter_raw_mode(console);
}

const struct console_sink_ops console_stdio_sink = {.open = open_stdio, .attach = attach_stdio};

static int open_file(struct console *console, const char *path, bool append, struct error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
    if (fd < 0) {
        int e = errno;
        return error_fmt(
            err, -e, "%s: cannot open 'file:%s' for writing: %s (expected a path kiln may write)",
            console->label, path, strerror(e));
    }
    console_out_use(console, fd, true);
    return 0;
}

static void close_file(struct console *console)
{
    if (console->out_fd >= 0)
        close(console->out_fd);
    console->out_fd = -1;
}

const struct console_sink_ops console_file_sink = {.open = open_file, .close = close_file};

/* Output is discarded and there is no input: nothing to open or watch. */
const struct console_sink_ops console_none_sink = {.open = NULL};
