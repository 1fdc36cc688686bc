/* 16550A UART: registers, 16-byte RX FIFO, loopback, and the IIR priority/IRQ rules.
 * TX has no FIFO to model: a byte goes straight to the backend when it is ready for it. */
#include <string.h>

#include "kiln/devices/serial.h"

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
static void update_irq(struct serial *serial)
{
    int level = pending_interrupt(serial) != IIR_NONE && (serial->mcr & MCR_OUT2);
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
    else if (serial->backend.tx_ready(serial->backend.opaque))
        serial->backend.tx(serial->backend.opaque, byte);
    else
        serial->tx_dropped++; /* the guest ignored THRE: a real UART would overwrite too */
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
        serial->ier = value & 0x0f;
        break;
    case REG_IIR:
        serial->fcr = value & 0xc9;
        if (value & FCR_CLEAR_RX) {
            serial->rx_count = 0;
            serial->rx_head = 0;
        }
        break;
    case REG_LCR:
        serial->lcr = value;
        break;
    case REG_MCR:
        serial->mcr = value & 0x1f;
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

const struct bus_ops serial_bus_ops = {.read = serial_bus_read, .write = serial_bus_write};

size_t serial_receive(struct serial *serial, const uint8_t *bytes, size_t len)
{
    pthread_mutex_lock(&serial->lock);
    size_t taken = 0;
    /* In loopback the line is disconnected from the outside world: hold host input back. */
    while (!(serial->mcr & MCR_LOOP) && taken < len && serial->rx_count < SERIAL_FIFO_SIZE)
        push_rx(serial, bytes[taken++]);
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
