/* libFuzzer target for the kernel loaders: each input is a kernel file (ELF vmlinux, PVH ELF
 * with its Xen note, bzImage, or neither) given to boot_load() as a user would give it. Besides
 * the sanitizers, every refusal must carry a message, and a load must enter inside guest RAM. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kiln/boot/boot.h"
#include "kiln/boot/layout.h"

#define RAM_BYTES (32u << 20)

/* boot_load() reads a path; a memfd rewritten per input keeps the file in memory. */
struct harness {
    struct guest_mem mem;
    int fd;
    char path[64];
};

static void harness_open(struct harness *h)
{
    h->fd = memfd_create("kiln-fuzz-kernel", MFD_CLOEXEC);
    if (h->fd < 0 || guest_mem_init(&h->mem, RAM_BYTES, NULL) < 0)
        abort();
    snprintf(h->path, sizeof(h->path), "/proc/self/fd/%d", h->fd);
}

static void write_kernel(struct harness *h, const uint8_t *data, size_t size)
{
    if (ftruncate(h->fd, 0) < 0 || pwrite(h->fd, data, size, 0) != (ssize_t)size)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct harness h = {.fd = -1};
    if (h.fd < 0)
        harness_open(&h);
    write_kernel(&h, data, size);
    struct boot_config cfg = {.kernel_path = h.path, .cmdline = "console=ttyS0"};
    struct boot_entry entry;
    struct error err = {{0}};
    int rc = boot_load(&h.mem, &cfg, &entry, &err);
    if (rc < 0 && !err.msg[0])
        abort(); /* a refusal without a message */
    if (rc == 0 && (entry.rip >= RAM_BYTES || !entry.format))
        abort();
    return 0;
}
