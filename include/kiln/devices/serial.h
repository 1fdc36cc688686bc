/* 16550A UART model (COM1): the register set, FIFO and interrupt rules Linux's 8250 driver
 * and the guest kit rely on. Transport-agnostic: bytes and the IRQ line go through a backend. */
#ifndef KILN_DEVICES_SERIAL_H
#define KILN_DEVICES_SERIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/vm/bus.h"
#include "kiln/util/error.h"
#include "kiln/vm/irq.h"
#include "kiln/vm/platform.h"

#define SERIAL_FIFO_SIZE 16

/* What the UART's line is wired to. The callbacks run with the UART lock held: they must not
 * call back into the UART. */
struct serial_backend {
    bool (*tx_ready)(void *opaque);         /* can the host side take a byte now? */
    void (*tx)(void *opaque, uint8_t byte); /* the guest sent a byte */
    void (*rx_space)(void *opaque);         /* the RX FIFO has room again */
    void *opaque;
};

/* Bytes through the UART's line (kiln's statistics, not state): rx from the host into the RX
 * FIFO, tx from THR to the host side; tx_dropped, bytes the guest wrote while we reported THR
 * not empty. Loopback bytes never reach the line and count in neither. */
struct serial_counters {
    uint64_t rx_bytes, tx_bytes, tx_dropped;
};

struct serial {
    pthread_mutex_t lock;
    struct serial_backend backend;
    struct irq_line irq;
    uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
    uint8_t msr_deltas;
    bool overrun;
    bool thr_interrupt_pending; /* THR-empty interrupt, cleared by reading IIR or writing THR */
    int irq_level;
    uint8_t rx_fifo[SERIAL_FIFO_SIZE];
    unsigned rx_head, rx_count;
    struct serial_counters counters; /* kiln/util/counter.h: bumped under the lock */
};

void serial_init(struct serial *serial, const struct serial_backend *backend,
                 const struct irq_line *irq);
void serial_destroy(struct serial *serial);

/* Bus callbacks for the 8 registers at PLATFORM_COM1_PORT. */
extern const struct bus_ops serial_bus_ops;

/* Any thread, without the lock. */
void serial_counters(const struct serial *serial, struct serial_counters *out);

/* Host -> guest bytes: queues up to the FIFO's free space, returns how many were taken. */
size_t serial_receive(struct serial *serial, const uint8_t *bytes, size_t len);

/* The host side can take bytes again after tx_ready() said no: raise THR-empty if enabled. */
void serial_tx_ready_again(struct serial *serial);

/* What the guest can observe of the UART, as plain bytes for a snapshot: the registers, the
 * RX FIFO oldest byte first (slots past rx_count zero) and the two pending conditions. Not
 * here: the IRQ level (restore recomputes it from these and drives the line), the backend and
 * the counters (host side). Every field is a byte, so there is no padding to leak. */
struct serial_state {
    uint8_t ier, lcr, mcr, scr;
    uint8_t dll, dlm, fcr, msr_deltas;
    uint8_t overrun;               /* 0 or 1: LSR.OE until the guest reads LSR */
    uint8_t thr_interrupt_pending; /* 0 or 1: THR-empty interrupt not yet acknowledged */
    uint8_t rx_count;              /* bytes in rx_fifo, at most SERIAL_FIFO_SIZE */
    uint8_t pad;                   /* zero */
    uint8_t rx_fifo[SERIAL_FIFO_SIZE];
};
_Static_assert(sizeof(struct serial_state) == 12 + SERIAL_FIFO_SIZE, "serial_state: no padding");

/* Copies the guest-visible state out, under the UART lock. */
void serial_save(const struct serial *serial, struct serial_state *out);
/* Checks every field of in (a snapshot may be corrupt or hostile) and only then loads it and
 * drives the IRQ line to the level the loaded state implies. -EINVAL with one line in err
 * naming the field, the device unchanged, if any value is impossible for this UART. */
int serial_restore(struct serial *serial, const struct serial_state *in, struct error *err);

#endif
