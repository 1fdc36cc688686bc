/* Power registers: S5 written to the sleep control register powers the VM off, the reset
 * value written to the reset register resets it; other sleep states are refused (logged once). */
#include "kiln/devices/pm.h"
#include "kiln/vm/platform.h"

static void pm_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
    for (unsigned i = 0; i < size; i++)
        data[i] = 0; /* never asleep, so never "woken" */
}

static void sleep_control(struct pm *pm, uint8_t value)
{
    if (!(value & PLATFORM_SLEEP_ENABLE))
        return;
    unsigned type = (value & PLATFORM_SLEEP_TYPE_MASK) >> PLATFORM_SLEEP_TYPE_SHIFT;
    if (type == PLATFORM_SLEEP_TYPE_S5) {
        stop_request(&pm->stop, VM_STOP_POWER_OFF, 0, "guest powered off");
        return;
    }
    if (__atomic_exchange_n(&pm->unsupported_logged, 1, __ATOMIC_RELAXED) == 0)
        log_warn(pm->log, "guest asked for sleep type %u; only S5 (power off, type %d) exists",
                 type, PLATFORM_SLEEP_TYPE_S5);
}

static void pm_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
    struct pm *pm = opaque;
    uint64_t port = PLATFORM_PM_PORT + offset;
    if (port == PLATFORM_PM_SLEEP_CONTROL)
        sleep_control(pm, data[0]);
    else if (port == PLATFORM_PM_RESET && data[0] == PLATFORM_PM_RESET_VALUE)
        stop_request(&pm->stop, VM_STOP_RESET, EXIT_GUEST_RESET,
                     "guest reset (ACPI reset register)");
}

const struct bus_ops pm_bus_ops = {.read = pm_read, .write = pm_write};
