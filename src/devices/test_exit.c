/* Test-exit port: the status a guest writes (1, 2 or 4 bytes) ends the VM with that status.
 * kiln exits with status & 0xff, as any process exit status is 8 bits. */
#include <stdio.h>

#include "kiln/devices/test_exit.h"

static void test_exit_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
    for (unsigned i = 0; i < size; i++)
        data[i] = 0;
}

static void test_exit_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
    struct test_exit *dev = opaque;
    uint32_t status = 0;
    for (unsigned i = 0; i < size && i < 4; i++)
        status |= (uint32_t)data[i] << (8 * i);
    char message[64];
    snprintf(message, sizeof(message), "guest exited with status %u", status);
    stop_request(&dev->stop, VM_STOP_TEST_EXIT, (int)(status & 0xff), message);
}

const struct bus_ops test_exit_bus_ops = {.read = test_exit_read, .write = test_exit_write};
