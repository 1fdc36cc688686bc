/* Unit tests for a console whose reader stops reading (a FIFO nobody reads, stdout a pipe):
 * flushing never waits, the buffer is bounded and holds the devices back (a 16550 keeps THRE
 * clear), resumes in order when the reader drains, a gone reader drops output, and the exit
 * drain gives up in time. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/devices/serial.h"
#include "kiln/host/console.h"

#define PIPE_SIZE    4096
#define HANG_SECONDS 10 /* a flush that blocks fails the test (SIGALRM) instead of hanging */

static struct {
    char path[64];
    int reader; /* the FIFO's read end, non-blocking; nobody reads it unless a test does */
    struct console console;
    unsigned tx_ready_again_calls;
    uint8_t *pattern; /* what the guest wrote, byte i = i * 7 % 251 */
    size_t written;
} fx;

static size_t no_input(void *opaque, const uint8_t *bytes, size_t len)
{
    return 0;
}

static void count_tx_ready_again(void *opaque)
{
    fx.tx_ready_again_calls++;
}

static int setup(void **state)
{
    memset(&fx, 0, sizeof(fx));
    snprintf(fx.path, sizeof(fx.path), "/tmp/kiln-stall-test-%d.fifo", (int)getpid());
    unlink(fx.path);
    if (mkfifo(fx.path, 0600) != 0)
        return -1;
    fx.reader = open(fx.path, O_RDONLY | O_NONBLOCK);
    if (fx.reader < 0 || fcntl(fx.reader, F_SETPIPE_SZ, PIPE_SIZE) < 0)
        return -1;
    if (console_open(&fx.console, "--console", CONSOLE_FILE, fx.path, false, NULL) < 0)
        return -1;
    /* What console_attach would do, without a loop: the console feeds this device. */
    fx.console.device =
        (struct console_device){.receive = no_input, .tx_ready_again = count_tx_ready_again};
    fx.console.device_attached = true;
    fx.pattern = malloc(4 * CONSOLE_OUT_CAPACITY);
    for (size_t i = 0; i < 4 * CONSOLE_OUT_CAPACITY; i++)
        fx.pattern[i] = (uint8_t)(i * 7 % 251);
    alarm(HANG_SECONDS);
    return 0;
}

static int teardown(void **state)
{
    alarm(0);
    console_close(&fx.console);
    close(fx.reader);
    unlink(fx.path);
    free(fx.pattern);
    return 0;
}

/* The guest writes up to len more bytes of the pattern; returns how many the console took. */
static size_t guest_writes(size_t len)
{
    size_t n = console_write(&fx.console, fx.pattern + fx.written, len);
    fx.written += n;
    return n;
}

static size_t read_all(uint8_t *out, size_t cap)
{
    size_t total = 0;
    ssize_t n;
    while (total < cap && (n = read(fx.reader, out + total, cap - total)) > 0)
        total += (size_t)n;
    return total;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The reader takes everything in the pipe; it must be the pattern from offset `from` on. */
static size_t reader_takes_all(size_t from)
{
    static uint8_t got[4 * CONSOLE_OUT_CAPACITY];
    size_t n = read_all(got, sizeof(got));
    assert_memory_equal(got, fx.pattern + from, n);
    return n;
}

static void test_flush_returns_while_the_reader_is_stalled(void **state)
{
    assert_int_equal(guest_writes(CONSOLE_OUT_CAPACITY), CONSOLE_OUT_CAPACITY);
    console_flush(&fx.console); /* a blocking write would wait here for ever (SIGALRM) */
    console_flush(&fx.console);
    assert_true(fx.console.spare_off > 0); /* the pipe took a part... */
    assert_true(fx.console.spare_off <= PIPE_SIZE);
    assert_true(fx.console.spare_off < fx.console.spare_len); /* ...the rest waits */
}

static void test_the_buffer_is_bounded_and_holds_the_devices_back(void **state)
{
    guest_writes(CONSOLE_OUT_CAPACITY);
    console_flush(&fx.console); /* out_spare: waiting for the pipe; out_buf: empty again */
    assert_true(console_tx_ready(&fx.console));
    assert_int_equal(guest_writes(3 * CONSOLE_OUT_CAPACITY), CONSOLE_OUT_CAPACITY);
    /* Full: virtio-console's chain waits, the UART's THRE stays clear. */
    assert_int_equal(guest_writes(100), 0);
    assert_false(console_tx_ready(&fx.console));
    console_flush(&fx.console); /* still stalled: nothing moves, nobody is told to go on */
    assert_int_equal(guest_writes(1), 0);
    assert_int_equal(fx.tx_ready_again_calls, 0);
}

static void test_back_pressure_lifts_in_order_as_the_reader_drains(void **state)
{
    guest_writes(CONSOLE_OUT_CAPACITY);
    console_flush(&fx.console);
    guest_writes(CONSOLE_OUT_CAPACITY);
    assert_false(console_tx_ready(&fx.console));
    size_t read = 0;
    /* The reader takes a pipe's worth at a time: each flush writes the next part. */
    for (int i = 0; i < 1000 && read < fx.written; i++) {
        read += reader_takes_all(read);
        console_flush(&fx.console);
    }
    assert_int_equal(read, fx.written);
    assert_int_equal(fx.tx_ready_again_calls, 1); /* told once, when out_buf was swapped out */
    assert_true(console_tx_ready(&fx.console));
    assert_int_equal(guest_writes(10), 10);
}

static void test_a_gone_reader_drops_output_and_the_guest_goes_on(void **state)
{
    guest_writes(CONSOLE_OUT_CAPACITY);
    console_flush(&fx.console);
    close(fx.reader);
    fx.reader = open("/dev/null", O_RDONLY);
    console_flush(&fx.console); /* EPIPE: dropped, not retried */
    console_flush(&fx.console);
    assert_true(fx.console.out_broken);
    assert_int_equal(guest_writes(CONSOLE_OUT_CAPACITY), CONSOLE_OUT_CAPACITY);
    console_flush(&fx.console);
    assert_true(console_tx_ready(&fx.console));
}

static void test_the_exit_drain_gives_up_in_time_and_counts_what_it_dropped(void **state)
{
    guest_writes(CONSOLE_OUT_CAPACITY);
    console_flush(&fx.console);
    guest_writes(CONSOLE_OUT_CAPACITY);
    size_t in_pipe = fx.console.spare_off;
    int64_t start = now_ms();
    size_t dropped = console_drain(&fx.console, 200);
    int64_t took = now_ms() - start;
    assert_true(took >= 190);
    assert_true(took < 2000);
    assert_int_equal(dropped, fx.written - in_pipe);
    assert_int_equal(console_drain(&fx.console, 200), 0); /* nothing is left to drop */
    assert_int_equal(reader_takes_all(0), in_pipe);
}

static void test_the_exit_drain_writes_everything_to_a_reader_that_reads(void **state)
{
    assert_int_equal(fcntl(fx.reader, F_SETPIPE_SZ, 4 * CONSOLE_OUT_CAPACITY),
                     4 * CONSOLE_OUT_CAPACITY);
    guest_writes(CONSOLE_OUT_CAPACITY);
    console_flush(&fx.console);
    guest_writes(1000);
    assert_int_equal(console_drain(&fx.console, 200), 0);
    assert_int_equal(reader_takes_all(0), fx.written);
}

static void no_irq(void *opaque, unsigned gsi, int level)
{
}

static uint8_t uart_lsr(struct serial *uart)
{
    uint8_t lsr;
    serial_bus_ops.read(uart, 5, &lsr, 1);
    return lsr;
}

/* A polled 16550 driver against the stalled console: it writes while LSR says THRE, the loop
 * flushes as it would; THRE stays clear once the buffer is full, nothing is dropped, and it
 * comes back when the reader drains. */
static void test_a_16550_guest_waits_on_thre_while_the_reader_is_stalled(void **state)
{
    struct serial uart;
    struct serial_backend backend = {console_tx_ready, console_tx, console_rx_space, &fx.console};
    struct irq_line irq = {no_irq, NULL, 4};
    serial_init(&uart, &backend, &irq);
    size_t sent = 0;
    bool stalled = false;
    while (!stalled && sent < 4 * CONSOLE_OUT_CAPACITY) {
        if (!(uart_lsr(&uart) & 0x20)) {
            console_flush(&fx.console); /* what the loop does when woken */
            stalled = !(uart_lsr(&uart) & 0x20);
            continue;
        }
        serial_bus_ops.write(&uart, 0, &fx.pattern[sent++], 1);
    }
    assert_true(stalled);
    assert_true(sent <= 2 * CONSOLE_OUT_CAPACITY + PIPE_SIZE); /* bounded */
    struct serial_counters counted;
    serial_counters(&uart, &counted);
    assert_int_equal(counted.tx_dropped, 0);
    assert_int_equal(counted.tx_bytes, sent); /* every byte written reached the console */
    size_t read = 0;
    for (int i = 0; i < 1000 && read < sent; i++) {
        read += reader_takes_all(read);
        console_flush(&fx.console);
    }
    assert_int_equal(read, sent);        /* every byte the guest wrote, in order */
    assert_true(uart_lsr(&uart) & 0x20); /* room again: THRE is back */
    serial_destroy(&uart);
}

/* stdout a pipe it shares with its parent: kiln writes without blocking through its own open
 * file description, and the one the parent holds keeps its flags. */
static void test_stdout_gets_a_private_non_blocking_description(void **state)
{
    int pipe_fds[2];
    assert_int_equal(pipe(pipe_fds), 0);
    int saved_stdout = dup(STDOUT_FILENO);
    assert_int_equal(dup2(pipe_fds[1], STDOUT_FILENO), STDOUT_FILENO);
    struct console console;
    int r = console_open(&console, "--console", CONSOLE_STDIO, NULL, false, NULL);
    int shared_flags = fcntl(pipe_fds[1], F_GETFL);
    int own_flags = console.out_fd >= 0 ? fcntl(console.out_fd, F_GETFL) : -1;
    int own_fd = console.out_fd;
    static uint8_t lots[CONSOLE_OUT_CAPACITY];
    size_t n = console_write(&console, lots, CONSOLE_OUT_CAPACITY);
    console_flush(&console); /* fills the pipe (64 KiB) */
    n += console_write(&console, lots, CONSOLE_OUT_CAPACITY);
    console_flush(&console); /* a full pipe: returns all the same */
    size_t dropped = console_drain(&console, 10);
    console_close(&console);
    dup2(saved_stdout, STDOUT_FILENO);
    close(saved_stdout);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    assert_int_equal(r, 0);
    assert_int_not_equal(own_fd, STDOUT_FILENO);
    assert_true(own_flags & O_NONBLOCK);
    assert_false(shared_flags & O_NONBLOCK);
    assert_int_equal(n, 2 * CONSOLE_OUT_CAPACITY);
    assert_true(dropped > 0);
    assert_int_equal(fcntl(own_fd, F_GETFD), -1); /* closed with the console */
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as kiln's main does: a gone reader is EPIPE, not death */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flush_returns_while_the_reader_is_stalled, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_buffer_is_bounded_and_holds_the_devices_back,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_back_pressure_lifts_in_order_as_the_reader_drains,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_gone_reader_drops_output_and_the_guest_goes_on,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_the_exit_drain_gives_up_in_time_and_counts_what_it_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_the_exit_drain_writes_everything_to_a_reader_that_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_16550_guest_waits_on_thre_while_the_reader_is_stalled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stdout_gets_a_private_non_blocking_description, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
