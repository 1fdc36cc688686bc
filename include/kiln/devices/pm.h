/* ACPI hardware-reduced power registers (sleep control, sleep status, reset) in I/O space:
 * how an ACPI guest powers off (S5) or resets, as the FADT tells it. */
#ifndef KILN_DEVICES_PM_H
#define KILN_DEVICES_PM_H

#include "kiln/vm/bus.h"
#include "kiln/util/log.h"
#include "kiln/vm/stop.h"

/* No guest-visible state, so nothing for a snapshot: all three registers read 0 and writes
 * only act (power off, reset). unsupported_logged is the host's log-once flag. */
struct pm {
    struct stop_notifier stop;
    const struct log *log;
    int unsupported_logged; /* atomically: one line for sleep states we do not offer */
};

/* Register at PLATFORM_PM_PORT, length PLATFORM_PM_PORT_COUNT. */
extern const struct bus_ops pm_bus_ops;

#endif
