/* Guest kit serial console: polled COM1 (16550 at 0x3f8) and the puts/print helpers built
 * on it. No interrupts: every guest in the kit runs with IF clear. */
#include "guest.h"

#define COM1           0x3f8
#define REG_DATA       0 /* RBR/THR, DLL with DLAB */
#define REG_IER        1 /* DLM with DLAB */
#define REG_LCR        3
#define REG_MCR        4
#define REG_LSR        5
#define LCR_DLAB       0x80
#define LCR_8N1        0x03
#define MCR_DTR_RTS    0x03 /* OUT2 stays off: it would route the UART's IRQ to the PIC */
#define LSR_DR         0x01
#define LSR_THRE       0x20
#define DIVISOR_115200 1

/* Six writes: every port access is a VM exit, so nothing that is not needed. FCR is left
 * alone on purpose: changing the FIFO-enable bit clears the RX FIFO (QEMU does so), which
 * would drop input the host sent before the guest got here, and polling gains nothing
 * from the FIFO. */
void serial_init(void)
{
    outb(COM1 + REG_IER, 0);
    outb(COM1 + REG_LCR, LCR_DLAB);
    outb(COM1 + REG_DATA, DIVISOR_115200 & 0xff);
    outb(COM1 + REG_IER, DIVISOR_115200 >> 8);
    outb(COM1 + REG_LCR, LCR_8N1);
    outb(COM1 + REG_MCR, MCR_DTR_RTS);
}

/* Checks THRE before every byte rather than trusting a 16-byte FIFO after one check: kiln's
 * UART models no TX FIFO and drops a byte written while its backend is busy. */
void serial_putc(char c)
{
    while (!(inb(COM1 + REG_LSR) & LSR_THRE))
        ;
    outb(COM1 + REG_DATA, (uint8_t)c);
}

int serial_try_getc(void)
{
    if (!(inb(COM1 + REG_LSR) & LSR_DR))
        return -1;
    return inb(COM1 + REG_DATA);
}

int serial_getc(void)
{
    int c;
    while ((c = serial_try_getc()) < 0)
        ;
    return c;
}

void print(const char *s)
{
    while (*s)
        serial_putc(*s++);
}

int puts(const char *s)
{
    print(s);
    serial_putc('\n');
    return 0;
}
