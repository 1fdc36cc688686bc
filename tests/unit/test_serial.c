/* Unit tests for the 16550A model: what Linux's 8250 probe checks (scratch, loopback, FIFO
 * type), TX/RX data paths, interrupt sources and priorities, OUT2 gating and back-pressure;
 * and its snapshot state: save, restore into a fresh UART, and each value restore refuses. */
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

struct bad_state;

struct fixture {
    struct serial serial;
    struct fake_host host;
    const struct bad_state *bad; /* the state tests' case, if any */
};

static int setup(void **state)
{
    const struct bad_state *bad = *state; /* cmocka's prestate: NULL but for state cases */
    struct fixture *f = calloc(1, sizeof(*f));
    f->bad = bad;
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

static struct serial_counters counted(struct fixture *f)
{
    struct serial_counters c;
    serial_counters(&f->serial, &c);
    return c;
}

/* Bytes on the line each way, as a user reads them: what the host took and what the guest
 * was given; loopback bytes and divisor-latch writes never reach the line. */
static void test_counters_count_line_bytes(void **state)
{
    struct fixture *f = *state;
    wr(f, DATA, 'h');
    wr(f, DATA, 'i');
    wr(f, LCR, 0x83);
    wr(f, DATA, 0x01); /* DLL, not a character */
    wr(f, LCR, 0x03);
    assert_int_equal(counted(f).tx_bytes, 2);
    uint8_t many[20];
    memset(many, 'm', sizeof(many));
    assert_int_equal(serial_receive(&f->serial, many, sizeof(many)), SERIAL_FIFO_SIZE);
    assert_int_equal(counted(f).rx_bytes, SERIAL_FIFO_SIZE); /* only what the FIFO took */
    wr(f, MCR, 0x10);
    wr(f, DATA, 'z');
    assert_int_equal(counted(f).tx_bytes, 2);
    assert_int_equal(counted(f).rx_bytes, SERIAL_FIFO_SIZE);
    assert_int_equal(counted(f).tx_dropped, 0);
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
    struct serial_counters counted;
    serial_counters(&f->serial, &counted);
    assert_int_equal(counted.tx_dropped, 1);
    assert_int_equal(counted.tx_bytes, 0);
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

/* ---- Snapshot state ------------------------------------------------------------------------ */

/* Every register a guest reads, twice over where a read has side effects (IIR acknowledges
 * THRE, LSR clears OE, MSR clears deltas, DATA pops the FIFO): the sequence of values is
 * what the guest would see from this state. */
#define GUEST_READS 28
static void guest_reads(struct fixture *f, uint8_t *out)
{
    static const unsigned regs[] = {IER, IIR, LCR, MCR, LSR, MSR, SCR, IIR, LSR, MSR};
    unsigned n = 0;
    for (unsigned i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
        out[n++] = rd(f, regs[i]);
    uint8_t lcr = rd(f, LCR);
    wr(f, LCR, lcr | 0x80);
    out[n++] = rd(f, DATA); /* DLL */
    out[n++] = rd(f, IER);  /* DLM */
    wr(f, LCR, lcr);
    while (n < GUEST_READS)
        out[n++] = rd(f, DATA); /* the FIFO, oldest first, then an empty read */
}

/* Divisor, line settings, scratch, FIFO control, every interrupt enabled, an overrun (through
 * loopback), and a FIFO whose ring no longer starts at slot 0. */
static void drive_into_busy_state(struct fixture *f)
{
    wr(f, LCR, 0x80);
    wr(f, DATA, 0x03); /* DLL: 38400 baud */
    wr(f, IER, 0x01);  /* DLM */
    wr(f, LCR, 0x1b);  /* 8E1 */
    wr(f, SCR, 0x5a);
    wr(f, IIR, 0xc7); /* FCR: enable, clear both FIFOs, 14-byte trigger */
    wr(f, MCR, 0x18); /* loopback + OUT2 */
    for (unsigned i = 0; i < SERIAL_FIFO_SIZE + 1; i++)
        wr(f, DATA, (uint8_t)('A' + i)); /* the 17th overruns */
    wr(f, MCR, 0x0b);                    /* DTR, RTS, OUT2: back on the line */
    assert_int_equal(rd(f, DATA), 'A');
    assert_int_equal(rd(f, DATA), 'B');
    assert_int_equal(rd(f, DATA), 'C');
    wr(f, IER, 0x07); /* RLS (the overrun), RDA, THRE */
    assert_int_equal(f->host.irq_level, 1);
}

static void test_state_round_trip(void **state)
{
    struct fixture *f = *state;
    drive_into_busy_state(f);
    struct serial_state saved, again;
    serial_save(&f->serial, &saved);
    assert_int_equal(saved.rx_count, SERIAL_FIFO_SIZE - 3);
    assert_int_equal(saved.rx_fifo[0], 'D'); /* oldest first, wherever the ring started */
    assert_int_equal(saved.rx_fifo[SERIAL_FIFO_SIZE - 3], 0);
    assert_int_equal(saved.overrun, 1);
    assert_int_equal(saved.thr_interrupt_pending, 1);

    void *fresh = NULL;
    setup(&fresh);
    struct fixture *t = fresh;
    struct error err = {.msg = ""};
    assert_int_equal(serial_restore(&t->serial, &saved, &err), 0);
    assert_int_equal(t->host.irq_level, 1); /* driven: RLS pending, OUT2 set */
    assert_int_equal(t->host.irq_changes, 1);
    serial_save(&t->serial, &again);
    assert_memory_equal(&saved, &again, sizeof(saved));

    uint8_t before[GUEST_READS], after[GUEST_READS];
    guest_reads(f, before);
    guest_reads(t, after);
    assert_memory_equal(before, after, sizeof(before));
    assert_int_equal(before[1], 0xc6); /* IIR: line status first, FIFO on */
    assert_int_equal(before[24], 'P'); /* the last byte the FIFO held */
    assert_int_equal(before[25], 0);   /* then empty */
    assert_int_equal(f->host.irq_level, t->host.irq_level);
    teardown(&fresh);
}

/* Restore drives the line to what the state says, also when that means lowering it. */
static void test_state_restore_lowers_irq(void **state)
{
    struct fixture *f = *state;
    struct serial_state quiet;
    serial_save(&f->serial, &quiet); /* just initialised: nothing pending */
    drive_into_busy_state(f);
    unsigned changes = f->host.irq_changes;
    assert_int_equal(serial_restore(&f->serial, &quiet, NULL), 0);
    assert_int_equal(f->host.irq_level, 0);
    assert_int_equal(f->host.irq_changes, changes + 1);
    assert_int_equal(rd(f, LSR) & 0x03, 0); /* no data, no overrun */
    assert_int_equal(rd(f, IIR) & 0x0f, 0x01);
}

/* One value restore must refuse, and the line it must say. */
struct bad_state {
    const char *name;
    void (*corrupt)(struct serial_state *s);
    const char *message;
};

static void bad_rx_count(struct serial_state *s)
{
    s->rx_count = SERIAL_FIFO_SIZE + 1;
}
static void bad_ier(struct serial_state *s)
{
    s->ier |= 0x10;
}
static void bad_mcr(struct serial_state *s)
{
    s->mcr = 0x2b;
}
static void bad_fcr(struct serial_state *s)
{
    s->fcr = 0x02; /* the clear bits are never kept */
}
static void bad_msr_deltas(struct serial_state *s)
{
    s->msr_deltas = 0x10;
}
static void bad_overrun(struct serial_state *s)
{
    s->overrun = 2;
}
static void bad_thr_pending(struct serial_state *s)
{
    s->thr_interrupt_pending = 0xff;
}
static void bad_pad(struct serial_state *s)
{
    s->pad = 1;
}
static void bad_fifo_tail(struct serial_state *s)
{
    s->rx_fifo[SERIAL_FIFO_SIZE - 1] = 'x';
}

static const struct bad_state bad_states[] = {
    {"test_state_rejects_rx_count_above_fifo_size", bad_rx_count,
     "serial state: rx_count is 17 (expected at most 16, the RX FIFO size)"},
    {"test_state_rejects_ier_reserved_bit", bad_ier,
     "serial state: ier is 0x17 (expected only bits 0x0f set)"},
    {"test_state_rejects_mcr_reserved_bit", bad_mcr,
     "serial state: mcr is 0x2b (expected only bits 0x1f set)"},
    {"test_state_rejects_fcr_clear_bit", bad_fcr,
     "serial state: fcr is 0x02 (expected only bits 0xc9 set)"},
    {"test_state_rejects_msr_deltas_status_bit", bad_msr_deltas,
     "serial state: msr_deltas is 0x10 (expected only bits 0x0f set)"},
    {"test_state_rejects_overrun_not_a_flag", bad_overrun,
     "serial state: overrun is 2 (expected 0 or 1)"},
    {"test_state_rejects_thr_pending_not_a_flag", bad_thr_pending,
     "serial state: thr_interrupt_pending is 255 (expected 0 or 1)"},
    {"test_state_rejects_pad_not_zero", bad_pad, "serial state: pad is 0x01 (expected 0)"},
    {"test_state_rejects_fifo_byte_past_rx_count", bad_fifo_tail,
     "serial state: rx_fifo[15] is 0x78 past rx_count 13 (expected 0)"},
};

static void test_state_rejects(void **state)
{
    struct fixture *f = *state;
    drive_into_busy_state(f);
    struct serial_state good, bad, after;
    serial_save(&f->serial, &good);
    bad = good;
    f->bad->corrupt(&bad);
    unsigned irq_changes = f->host.irq_changes, rx_space_calls = f->host.rx_space_calls;
    struct error err = {.msg = ""};
    assert_int_equal(serial_restore(&f->serial, &bad, &err), -EINVAL);
    assert_string_equal(err.msg, f->bad->message);
    serial_save(&f->serial, &after);
    assert_memory_equal(&good, &after, sizeof(good)); /* unchanged */
    assert_int_equal(f->host.irq_changes, irq_changes);
    assert_int_equal(f->host.rx_space_calls, rx_space_calls);
}

/* One cmocka test per bad value, named after it. */
#define BAD_STATE_TEST(i)                                                                          \
    {                                                                                              \
        bad_states[i].name, test_state_rejects, setup, teardown, (void *)&bad_states[i]            \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_probe_like_linux, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopback_echoes_tx_to_rx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters_count_line_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transmit_and_divisor_latch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thre_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receive_fifo_and_rda_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rda_outranks_thre, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out2_gates_irq_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backpressure_when_host_is_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wide_access_reads_high_bytes_as_ones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_restore_lowers_irq, setup, teardown),
        BAD_STATE_TEST(0),
        BAD_STATE_TEST(1),
        BAD_STATE_TEST(2),
        BAD_STATE_TEST(3),
        BAD_STATE_TEST(4),
        BAD_STATE_TEST(5),
        BAD_STATE_TEST(6),
        BAD_STATE_TEST(7),
        BAD_STATE_TEST(8),
    };
    _Static_assert(sizeof(bad_states) / sizeof(bad_states[0]) == 9, "a test per bad state");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
