/* Unit tests for the 16550A model: what Linux's 8250 probe checks (scratch, loopback, FIFO
 * type), TX/RX data paths, interrupt sources and priorities, OUT2 gating and back-pressure. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/devices/serial.h"

struct fake_host {
    bool ready;
    uint8_t sent[64];
    size_t nsent;
    unsigned rx_space_calls;
    int irq_level;
    unsigned irq_changes;
};

static bool fake_tx_ready(void *opaque)
{
    return ((struct fake_host *)opaque)->ready;
}

static void fake_tx(void *opaque, uint8_t byte)
{
    struct fake_host *h = opaque;
    if (h->nsent < sizeof(h->sent))
        h->sent[h->nsent++] = byte;
}

static void fake_rx_space(void *opaque)
{
    ((struct fake_host *)opaque)->rx_space_calls++;
}

static void fake_irq(void *opaque, unsigned gsi, int level)
{
    struct fake_host *h = opaque;
    assert_int_equal(gsi, PLATFORM_COM1_IRQ);
    h->irq_level = level;
    h->irq_changes++;
}

struct fixture {
    struct serial serial;
    struct fake_host host;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->host.ready = true;
    struct serial_backend backend = {fake_tx_ready, fake_tx, fake_rx_space, &f->host};
    struct irq_line irq = {fake_irq, &f->host, PLATFORM_COM1_IRQ};
    serial_init(&f->serial, &backend, &irq);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    serial_destroy(&f->serial);
    free(f);
    return 0;
}

static uint8_t rd(struct fixture *f, unsigned reg)
{
    uint8_t v;
    serial_bus_ops.read(&f->serial, reg, &v, 1);
    return v;
}

static void wr(struct fixture *f, unsigned reg, uint8_t v)
{
    serial_bus_ops.write(&f->serial, reg, &v, 1);
}

enum { DATA, IER, IIR, LCR, MCR, LSR, MSR, SCR };

static void test_probe_like_linux(void **state)
{
    struct fixture *f = *state;
    wr(f, SCR, 0xa5);
    assert_int_equal(rd(f, SCR), 0xa5);
    /* Loopback: MCR LOOP|OUT2|RTS must read back as DCD|CTS. */
    wr(f, MCR, 0x1a);
    assert_int_equal(rd(f, MSR) & 0xf0, 0x90);
    wr(f, MCR, 0x08);
    /* FIFO enabled: IIR bits 7:6 = 11 identifies a 16550A. */
    wr(f, IIR, 0x01);
    assert_int_equal(rd(f, IIR) & 0xc0, 0xc0);
    assert_int_equal(rd(f, IIR) & 0x0f, 0x01); /* no interrupt pending */
}

static void test_loopback_echoes_tx_to_rx(void **state)
{
    struct fixture *f = *state;
    wr(f, MCR, 0x10);
    wr(f, DATA, 'z');
    assert_int_equal(f->host.nsent, 0);
    assert_true(rd(f, LSR) & 0x01);
    assert_int_equal(rd(f, DATA), 'z');
    /* Host input is held back while the line is looped. */
    assert_int_equal(serial_receive(&f->serial, (const uint8_t *)"a", 1), 0);
}

static void test_transmit_and_divisor_latch(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(rd(f, LSR) & 0x60, 0x60);
    wr(f, DATA, 'h');
    wr(f, DATA, 'i');
    assert_int_equal(f->host.nsent, 2);
    assert_memory_equal(f->host.sent, "hi", 2);
    wr(f, LCR, 0x83);
    wr(f, DATA, 0x01); /* DLL, not a character */
    wr(f, IER, 0x00);  /* DLM */
    assert_int_equal(rd(f, DATA), 0x01);
    wr(f, LCR, 0x03);
    assert_int_equal(f->host.nsent, 2);
}

static void test_thre_interrupt(void **state)
{
    struct fixture *f = *state;
    wr(f, IER, 0x02);
    assert_int_equal(f->host.irq_level, 1); /* enabling with THR empty raises at once */
    assert_int_equal(rd(f, IIR) & 0x0f, 0x02);
    assert_int_equal(f->host.irq_level, 0); /* reading IIR acknowledged it */
    wr(f, DATA, 'x');
    assert_int_equal(f->host.irq_level, 1);
    wr(f, IER, 0x00);
    assert_int_equal(f->host.irq_level, 0);
}

static void test_receive_fifo_and_rda_interrupt(void **state)
{
    struct fixture *f = *state;
    wr(f, IER, 0x01);
    assert_int_equal(serial_receive(&f->serial, (const uint8_t *)"abc", 3), 3);
    assert_int_equal(f->host.irq_level, 1);
    assert_int_equal(rd(f, IIR) & 0x0f, 0x04);
    assert_true(rd(f, LSR) & 0x01);
    assert_int_equal(rd(f, DATA), 'a');
    assert_int_equal(rd(f, DATA), 'b');
    assert_int_equal(rd(f, DATA), 'c');
    assert_false(rd(f, LSR) & 0x01);
    assert_int_equal(f->host.irq_level, 0);
    assert_int_equal(f->host.rx_space_calls, 3);

    uint8_t many[20];
    memset(many, 'm', sizeof(many));
    assert_int_equal(serial_receive(&f->serial, many, sizeof(many)), SERIAL_FIFO_SIZE);
    wr(f, IIR, 0x03); /* FCR: enable + clear RX FIFO */
    assert_false(rd(f, LSR) & 0x01);
}

static void test_rda_outranks_thre(void **state)
{
    struct fixture *f = *state;
    wr(f, IER, 0x03);
    serial_receive(&f->serial, (const uint8_t *)"q", 1);
    assert_int_equal(rd(f, IIR) & 0x0f, 0x04);
    rd(f, DATA);
    assert_int_equal(rd(f, IIR) & 0x0f, 0x02);
}

static void test_out2_gates_irq_line(void **state)
{
    struct fixture *f = *state;
    wr(f, MCR, 0x00);
    wr(f, IER, 0x01);
    serial_receive(&f->serial, (const uint8_t *)"k", 1);
    assert_int_equal(f->host.irq_level, 0);
    assert_int_equal(rd(f, IIR) & 0x0f, 0x04); /* pending, just not wired to the PIC */
    wr(f, MCR, 0x08);
    assert_int_equal(f->host.irq_level, 1);
}

static void test_backpressure_when_host_is_full(void **state)
{
    struct fixture *f = *state;
    f->host.ready = false;
    assert_int_equal(rd(f, LSR) & 0x60, 0);
    wr(f, IER, 0x02);
    assert_int_equal(f->host.irq_level, 0);
    wr(f, DATA, '!'); /* a guest that ignores THRE loses the byte, visibly */
    assert_int_equal(f->host.nsent, 0);
    assert_int_equal(f->serial.tx_dropped, 1);
    f->host.ready = true;
    serial_tx_ready_again(&f->serial);
    assert_int_equal(f->host.irq_level, 1);
    assert_int_equal(rd(f, LSR) & 0x60, 0x60);
}

static void test_wide_access_reads_high_bytes_as_ones(void **state)
{
    struct fixture *f = *state;
    uint8_t v[2];
    wr(f, SCR, 0x11);
    serial_bus_ops.read(&f->serial, SCR, v, 2);
    assert_int_equal(v[0], 0x11);
    assert_int_equal(v[1], 0xff);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_probe_like_linux, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopback_echoes_tx_to_rx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transmit_and_divisor_latch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thre_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receive_fifo_and_rda_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rda_outranks_thre, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out2_gates_irq_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backpressure_when_host_is_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wide_access_reads_high_bytes_as_ones, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
