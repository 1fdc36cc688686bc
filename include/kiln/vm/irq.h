/* An interrupt line as a device sees it: a GSI and a way to drive its level. The VM wires it
 * to KVM_IRQ_LINE; unit tests wire it to a recorder. */
#ifndef KILN_IRQ_H
#define KILN_IRQ_H

struct irq_line {
    void (*set_level)(void *opaque, unsigned gsi, int level);
    void *opaque;
    unsigned gsi;
};

static inline void irq_line_set(const struct irq_line *line, int level)
{
    line->set_level(line->opaque, line->gsi, level);
}

#endif
