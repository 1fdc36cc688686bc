/* The reset-vector stub: `mov al, 0xfe; out 0x64, al` (the i8042's pulse-reset command, which
 * kiln's i8042 turns into a VM reset), then `hlt` in a loop. These encodings mean the same in
 * real, protected and long mode, so it works however the guest gets there. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "kiln/vm/platform.h"
#include "kiln/boot/reset_vector.h"

static const uint8_t reset_stub[PLATFORM_RESET_VECTOR_SIZE] = {
    0xb0, 0xfe, /* mov al, 0xfe */
    0xe6, 0x64, /* out 0x64, al */
    0xf4,       /* hlt */
    0xeb, 0xfd, /* jmp back to the hlt */
};

int reset_vector_write(const struct guest_mem *mem, struct error *err)
{
    if (guest_mem_write(mem, PLATFORM_RESET_VECTOR, reset_stub, sizeof(reset_stub)) < 0)
        return error_fmt(err, -EFAULT, "guest memory does not cover the reset vector at 0x%llx",
                         (unsigned long long)PLATFORM_RESET_VECTOR);
    return 0;
}
