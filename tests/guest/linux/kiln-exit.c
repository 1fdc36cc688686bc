/* kiln-exit: ends the VM from a Linux guest's user space with a status, through kiln's
 * test-exit port (0xf4): `kiln-exit 3` makes kiln exit 3. Needs root in the guest. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <unistd.h>

#define TEST_EXIT_PORT 0xf4

/* /dev/port: writing one byte at offset P is an outb to port P. */
static int exit_through_dev_port(unsigned char status)
{
    int fd = open("/dev/port", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = pwrite(fd, &status, 1, TEST_EXIT_PORT);
    int e = n == 1 ? 0 : -errno;
    close(fd);
    return e;
}

/* Without /dev/port (CONFIG_DEVPORT off): ask for the port and write it directly. */
static int exit_through_ioperm(unsigned char status)
{
    if (ioperm(TEST_EXIT_PORT, 1, 1) != 0)
        return -errno;
    outb(status, TEST_EXIT_PORT);
    return 0;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long status = argc == 2 ? strtol(argv[1], &end, 0) : -1;
    if (argc != 2 || !end || *end || status < 0 || status > 255) {
        fprintf(stderr, "usage: kiln-exit STATUS   (0-255; kiln exits with it)\n");
        return 2;
    }
    int e = exit_through_dev_port((unsigned char)status);
    if (e < 0)
        e = exit_through_ioperm((unsigned char)status);
    if (e < 0) {
        fprintf(stderr, "kiln-exit: cannot write port 0x%x: %s\n", TEST_EXIT_PORT, strerror(-e));
        return 1;
    }
    /* The VM is gone by now; if nothing listens at the port, say so. */
    sleep(1);
    fprintf(stderr, "kiln-exit: still running: no test-exit device at port 0x%x?\n",
            TEST_EXIT_PORT);
    return 1;
}
