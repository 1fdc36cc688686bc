/* Just enough of the i8042 keyboard controller for a guest to reset the machine the PC way
 * (command 0xFE on port 0x64); no keyboard or mouse behind it. */
#ifndef KILN_DEVICES_I8042_H
#define KILN_DEVICES_I8042_H

#include "kiln/vm/bus.h"
#include "kiln/vm/stop.h"

#define I8042_DATA_PORT    0x60
#define I8042_COMMAND_PORT 0x64
#define I8042_CMD_RESET    0xfe

/* No guest-visible state, so nothing for a snapshot: every read is 0 (nothing to read,
 * ready for commands) and the one command it takes ends the VM. */
struct i8042 {
    struct stop_notifier stop;
};

/* Register this range at I8042_DATA_PORT (len 5: 0x60..0x64). */
extern const struct bus_ops i8042_bus_ops;

#endif
