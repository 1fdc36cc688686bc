/* Running a guest function at CPL3 (user mode), where our hosts execute guest code natively
 * instead of in KVM's ring-0 emulator: for benchmark loops that only touch memory and MMIO. */
#ifndef KILN_GUEST_USER_H
#define KILN_GUEST_USER_H

#include <stdint.h>

/* Runs fn(arg) at CPL3 on a stack of its own and returns (at CPL0) when fn returns. fn may
 * read and write all memory, MMIO included, and use rdtsc; it may not use port I/O, hlt or
 * cli (they fault), nor print. A fault other than fn's own return is reported and exits. */
void user_run(void (*fn)(void *), void *arg);

#endif
