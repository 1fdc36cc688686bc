/* serial-echo.elf: checks a VMM's serial input path. Echoes every byte received on COM1
 * until 'q' or Ctrl-D (neither is echoed), then says goodbye and exits 0. */
#include "runtime/guest.h"

#define END_OF_TRANSMISSION 0x04

int guest_main(void)
{
    puts("serial-echo: ready");
    char last = '\n';
    for (;;) {
        char c = (char)serial_getc();
        if (c == 'q' || c == END_OF_TRANSMISSION)
            break;
        serial_putc(c);
        last = c;
    }
    /* Starts the goodbye on its own line so a host can match it as a whole line. */
    if (last != '\n')
        serial_putc('\n');
    puts("serial-echo: bye");
    return GUEST_EXIT_PASS;
}
