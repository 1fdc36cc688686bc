/* i8042 stub: status reads say "nothing to read, ready for commands"; command 0xFE pulses
 * the CPU reset line, which for us ends the VM as a guest reset. */
#include "kiln/devices/i8042.h"

static void i8042_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
    for (unsigned i = 0; i < size; i++)
        data[i] = 0; /* status: output buffer empty, input buffer empty */
}

static void i8042_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
    struct i8042 *dev = opaque;
    if (offset == I8042_COMMAND_PORT - I8042_DATA_PORT && data[0] == I8042_CMD_RESET)
        stop_request(&dev->stop, VM_STOP_RESET, EXIT_GUEST_RESET,
                     "guest reset (i8042 reset command)");
}

const struct bus_ops i8042_bus_ops = {.read = i8042_read, .write = i8042_write};
