/* Test-exit device: a guest write of a status ends the VM and becomes kiln's exit status
 * (like QEMU's isa-debug-exit, minus its (status << 1) | 1 encoding). */
#ifndef KILN_DEVICES_TEST_EXIT_H
#define KILN_DEVICES_TEST_EXIT_H

#include "kiln/vm/bus.h"
#include "kiln/vm/stop.h"

#define TEST_EXIT_PORT 0xf4
#define TEST_EXIT_SIZE 4

/* No guest-visible state, so nothing for a snapshot: reads are 0, a write ends the VM. */
struct test_exit {
    struct stop_notifier stop;
};

extern const struct bus_ops test_exit_bus_ops;

#endif
