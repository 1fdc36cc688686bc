/* hello.elf: the smallest end-to-end check of a VMM's PVH boot, serial output and test-exit
 * port. Prints one fixed line and exits 0. */
#include "runtime/guest.h"

int guest_main(void)
{
    puts("Hello from the kiln guest kit");
    return GUEST_EXIT_PASS;
}
