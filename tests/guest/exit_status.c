/* exit-status.elf: checks that a VMM passes the command line through and turns a guest's
 * test-exit write into its own exit status. Exits with status=N from the command line. */
#include "runtime/guest.h"

int guest_main(void)
{
    uint32_t status;
    if (cmdline_get_u32("status", &status) != 0) {
        printf("exit-status: missing or invalid status=N on the command line \"%s\"\n",
               cmdline_all());
        return GUEST_EXIT_FAIL;
    }
    printf("exit-status: exiting with status %u\n", status);
    return (int)status;
}
