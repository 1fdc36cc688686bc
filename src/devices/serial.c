/* 16550A UART: registers, 16-byte RX FIFO, loopback, and the IIR priority/IRQ rules, and its
 * state for snapshots. TX has no FIFO to model: a byte goes straight to the backend. */
#include <errno.h>
#include <string.h>

#include "kiln/devices/serial.h"
#include "kiln/util/counter.h"

/* Register offsets and bits (PC16550D data sheet). */
enum {
    REG_DATA = 0, /* RBR / THR, or DLL with DLAB */
    REG_IER = 1,  /* or DLM with DLAB */
    REG_IIR = 2,  /* read: IIR; write: FCR */
    REG_LCR = 3,
    REG_MCR = 4,
    REG_LSR = 5,
    REG_MSR = 6,
    REG_SCR = 7,
};
#define IER_RDA          0x01
#define IER_THRE         0x02
#define IER_RLS          0x04
#define IIR_NONE         0x01
#define IIR_RLS          0x06
#define IIR_RDA          0x04
#define IIR_THRE         0x02
#define IIR_FIFO_ENABLED 0xc0
#define FCR_ENABLE       0x01
#define FCR_CLEAR_RX     0x02
#define LCR_DLAB         0x80
#define MCR_DTR          0x01
#define MCR_RTS          0x02
#define MCR_OUT1         0x04
#define MCR_OUT2         0x08
#define MCR_LOOP         0x10
#define LSR_DR           0x01
#define LSR_OE           0x02
#define LSR_THRE         0x20
#define LSR_TEMT         0x40
#define MSR_CTS          0x10
#define MSR_DSR          0x20
#define MSR_RI           0x40
#define MSR_DCD          0x80
#define MSR_DELTAS       0x0f /* DCTS, DDSR, TERI, DDCD */
/* The bits a register keeps of what the guest writes. */
#define IER_WRITABLE 0x0f
#define MCR_WRITABLE 0x1f
#define FCR_KEPT     0xc9 /* enable, DMA mode, RX trigger level; the clear bits act at once */

void serial_init(struct serial *serial, const struct serial_backend *backend,
                 const struct irq_line *irq)
{
    memset(serial, 0, sizeof(*serial));
    pthread_mutex_init(&serial->lock, NULL);
    serial->backend = *backend;
    serial->irq = *irq;
    serial->lcr = 0x03; /* 8N1 */
    serial->mcr = MCR_OUT2;
    serial->dll = 12; /* 9600 baud; only the guest's own code cares */
}

void serial_destroy(struct serial *serial)
{
    pthread_mutex_destroy(&serial->lock);
}

static bool tx_ready(const struct serial *serial)
{
    if (serial->mcr & MCR_LOOP)
        return serial->rx_count < SERIAL_FIFO_SIZE;
    return serial->backend.tx_ready(serial->backend.opaque);
}

static uint8_t line_status(const struct serial *serial)
{
    uint8_t lsr = 0;
    if (serial->rx_count > 0)
        lsr |= LSR_DR;
    if (serial->overrun)
        lsr |= LSR_OE;
    if (tx_ready(serial))
        lsr |= LSR_THRE | LSR_TEMT;
    return lsr;
}

/* Highest-priority pending source, as IIR reports it. */
static uint8_t pending_interrupt(const struct serial *serial)
{
    if ((serial->ier & IER_RLS) && serial->overrun)
        return IIR_RLS;
    if ((serial->ier & IER_RDA) && serial->rx_count > 0)
        return IIR_RDA;
    if ((serial->ier & IER_THRE) && serial->thr_interrupt_pending)
        return IIR_THRE;
    return IIR_NONE;
}

/* On a PC, OUT2 gates the UART's interrupt onto the ISA IRQ line. */
static int irq_level(const struct serial *serial)
{
    return pending_interrupt(serial) != IIR_NONE && (serial->mcr & MCR_OUT2);
}

static void update_irq(struct serial *serial)
{
    int level = irq_level(serial);
    if (level != serial->irq_level) {
        serial->irq_level = level;
        irq_line_set(&serial->irq, level);
    }
}

static void push_rx(struct serial *serial, uint8_t byte)
{
    if (serial->rx_count == SERIAL_FIFO_SIZE) {
        serial->overrun = true;
        return;
    }
    serial->rx_fifo[(serial->rx_head + serial->rx_count) % SERIAL_FIFO_SIZE] = byte;
    serial->rx_count++;
}

static uint8_t pop_rx(struct serial *serial)
{
    if (serial->rx_count == 0)
        return 0;
    uint8_t byte = serial->rx_fifo[serial->rx_head];
    serial->rx_head = (serial->rx_head + 1) % SERIAL_FIFO_SIZE;
    serial->rx_count--;
    if (!(serial->mcr & MCR_LOOP) && serial->backend.rx_space)
        serial->backend.rx_space(serial->backend.opaque);
    return byte;
}

static void transmit(struct serial *serial, uint8_t byte)
{
    if (serial->mcr & MCR_LOOP)
        push_rx(serial, byte);
    else if (serial->backend.tx_ready(serial->backend.opaque)) {
        serial->backend.tx(serial->backend.opaque, byte);
        counter_add(&serial->counters.tx_bytes, 1);
    } else {
        /* The guest ignored THRE: a real UART would overwrite too. */
        counter_add(&serial->counters.tx_dropped, 1);
    }
    serial->thr_interrupt_pending = tx_ready(serial);
}

static uint8_t modem_status(const struct serial *serial)
{
    if (!(serial->mcr & MCR_LOOP))
        return MSR_DCD | MSR_DSR | MSR_CTS | serial->msr_deltas;
    uint8_t msr = 0;
    if (serial->mcr & MCR_RTS)
        msr |= MSR_CTS;
    if (serial->mcr & MCR_DTR)
        msr |= MSR_DSR;
    if (serial->mcr & MCR_OUT1)
        msr |= MSR_RI;
    if (serial->mcr & MCR_OUT2)
        msr |= MSR_DCD;
    return msr;
}

static uint8_t read_register(struct serial *serial, uint64_t offset)
{
    bool dlab = serial->lcr & LCR_DLAB;
    switch (offset) {
    case REG_DATA:
        return dlab ? serial->dll : pop_rx(serial);
    case REG_IER:
        return dlab ? serial->dlm : serial->ier;
    case REG_IIR: {
        uint8_t iir = pending_interrupt(serial);
        if (iir == IIR_THRE)
            serial->thr_interrupt_pending = false; /* reading IIR acknowledges THR empty */
        return iir | ((serial->fcr & FCR_ENABLE) ? IIR_FIFO_ENABLED : 0);
    }
    case REG_LCR:
        return serial->lcr;
    case REG_MCR:
        return serial->mcr;
    case REG_LSR: {
        uint8_t lsr = line_status(serial);
        serial->overrun = false; /* reading LSR clears the error bits */
        return lsr;
    }
    case REG_MSR: {
        uint8_t msr = modem_status(serial);
        serial->msr_deltas = 0;
        return msr;
    }
    default:
        return serial->scr;
    }
}

static void write_register(struct serial *serial, uint64_t offset, uint8_t value)
{
    bool dlab = serial->lcr & LCR_DLAB;
    switch (offset) {
    case REG_DATA:
        if (dlab)
            serial->dll = value;
        else
            transmit(serial, value);
        break;
    case REG_IER:
        if (dlab) {
            serial->dlm = value;
            break;
        }
        /* Enabling the THRE interrupt while THR is empty raises it at once (8250 behaviour
         * drivers test for). */
        if (!(serial->ier & IER_THRE) && (value & IER_THRE) && tx_ready(serial))
            serial->thr_interrupt_pending = true;
        serial->ier = value & IER_WRITABLE;
        break;
    case REG_IIR:
        serial->fcr = value & FCR_KEPT;
        if (value & FCR_CLEAR_RX) {
            serial->rx_count = 0;
            serial->rx_head = 0;
        }
        break;
    case REG_LCR:
        serial->lcr = value;
        break;
    case REG_MCR:
        serial->mcr = value & MCR_WRITABLE;
        break;
    case REG_LSR:
    case REG_MSR:
        break; /* read-only (factory test writes are ignored) */
    default:
        serial->scr = value;
        break;
    }
}

static void serial_bus_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
    struct serial *serial = opaque;
    pthread_mutex_lock(&serial->lock);
    data[0] = read_register(serial, offset);
    for (unsigned i = 1; i < size; i++)
        data[i] = 0xff; /* registers are 8 bits wide */
    update_irq(serial);
    pthread_mutex_unlock(&serial->lock);
}

static void serial_bus_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
    struct serial *serial = opaque;
    pthread_mutex_lock(&serial->lock);
    write_register(serial, offset, data[0]);
    update_irq(serial);
    pthread_mutex_unlock(&serial->lock);
}

void serial_counters(const struct serial *serial, struct serial_counters *out)
{
    out->rx_bytes = counter_read(&serial->counters.rx_bytes);
    out->tx_bytes = counter_read(&serial->counters.tx_bytes);
    out->tx_dropped = counter_read(&serial->counters.tx_dropped);
}

const struct bus_ops serial_bus_ops = {.read = serial_bus_read, .write = serial_bus_write};

size_t serial_receive(struct serial *serial, const uint8_t *bytes, size_t len)
{
    pthread_mutex_lock(&serial->lock);
    size_t taken = 0;
    /* In loopback the line is disconnected from the outside world: hold host input back. */
    while (!(serial->mcr & MCR_LOOP) && taken < len && serial->rx_count < SERIAL_FIFO_SIZE)
        push_rx(serial, bytes[taken++]);
    counter_add(&serial->counters.rx_bytes, taken);
    update_irq(serial);
    pthread_mutex_unlock(&serial->lock);
    return taken;
}

void serial_tx_ready_again(struct serial *serial)
{
    pthread_mutex_lock(&serial->lock);
    if (tx_ready(serial))
        serial->thr_interrupt_pending = true;
    update_irq(serial);
    pthread_mutex_unlock(&serial->lock);
}

void serial_save(const struct serial *serial, struct serial_state *out)
{
    /* The lock is the one thing save changes; the device itself is read-only here. */
    pthread_mutex_t *lock = (pthread_mutex_t *)&serial->lock;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(lock);
    out->ier = serial->ier;
    out->lcr = serial->lcr;
    out->mcr = serial->mcr;
    out->scr = serial->scr;
    out->dll = serial->dll;
    out->dlm = serial->dlm;
    out->fcr = serial->fcr;
    out->msr_deltas = serial->msr_deltas;
    out->overrun = serial->overrun;
    out->thr_interrupt_pending = serial->thr_interrupt_pending;
    /* Oldest byte first: where the ring happened to start is not guest-visible. */
    out->rx_count = (uint8_t)serial->rx_count;
    for (unsigned i = 0; i < serial->rx_count; i++)
        out->rx_fifo[i] = serial->rx_fifo[(serial->rx_head + i) % SERIAL_FIFO_SIZE];
    pthread_mutex_unlock(lock);
}

/* A register holding a bit the guest can never set there. */
static int check_mask(const char *field, uint8_t value, uint8_t allowed, struct error *err)
{
    if (value & ~allowed)
        return error_fmt(err, -EINVAL, "serial state: %s is 0x%02x (expected only bits 0x%02x set)",
                         field, value, allowed);
    return 0;
}

static int check_flag(const char *field, uint8_t value, struct error *err)
{
    if (value > 1)
        return error_fmt(err, -EINVAL, "serial state: %s is %u (expected 0 or 1)", field, value);
    return 0;
}

static int check_state(const struct serial_state *in, struct error *err)
{
    int r = check_mask("ier", in->ier, IER_WRITABLE, err);
    if (r == 0)
        r = check_mask("mcr", in->mcr, MCR_WRITABLE, err);
    if (r == 0)
        r = check_mask("fcr", in->fcr, FCR_KEPT, err);
    if (r == 0)
        r = check_mask("msr_deltas", in->msr_deltas, MSR_DELTAS, err);
    if (r == 0)
        r = check_flag("overrun", in->overrun, err);
    if (r == 0)
        r = check_flag("thr_interrupt_pending", in->thr_interrupt_pending, err);
    if (r < 0)
        return r;
    if (in->rx_count > SERIAL_FIFO_SIZE)
        return error_fmt(err, -EINVAL,
                         "serial state: rx_count is %u (expected at most %d, the RX FIFO size)",
                         in->rx_count, SERIAL_FIFO_SIZE);
    if (in->pad != 0)
        return error_fmt(err, -EINVAL, "serial state: pad is 0x%02x (expected 0)", in->pad);
    /* Save zeroes the free slots: anything else there means the bytes were not ours. */
    for (unsigned i = in->rx_count; i < SERIAL_FIFO_SIZE; i++) {
        if (in->rx_fifo[i] != 0)
            return error_fmt(err, -EINVAL,
                             "serial state: rx_fifo[%u] is 0x%02x past rx_count %u (expected 0)", i,
                             in->rx_fifo[i], in->rx_count);
    }
    return 0;
}

int serial_restore(struct serial *serial, const struct serial_state *in, struct error *err)
{
    int r = check_state(in, err);
    if (r < 0)
        return r;
    pthread_mutex_lock(&serial->lock);
    serial->ier = in->ier;
    serial->lcr = in->lcr;
    serial->mcr = in->mcr;
    serial->scr = in->scr;
    serial->dll = in->dll;
    serial->dlm = in->dlm;
    serial->fcr = in->fcr;
    serial->msr_deltas = in->msr_deltas;
    serial->overrun = in->overrun;
    serial->thr_interrupt_pending = in->thr_interrupt_pending;
    memcpy(serial->rx_fifo, in->rx_fifo, sizeof(serial->rx_fifo));
    serial->rx_head = 0;
    serial->rx_count = in->rx_count;
    /* Drive the line even if the level looks unchanged: whatever it was wired to may hold
     * another level than this device last recorded. */
    serial->irq_level = irq_level(serial);
    irq_line_set(&serial->irq, serial->irq_level);
    /* The host side may have stopped feeding us while the old FIFO was full. */
    if (serial->rx_count < SERIAL_FIFO_SIZE && !(serial->mcr & MCR_LOOP) &&
        serial->backend.rx_space)
        serial->backend.rx_space(serial->backend.opaque);
    pthread_mutex_unlock(&serial->lock);
    return 0;
}
