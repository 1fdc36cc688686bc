/* The allow-lists behind the sandbox: for each kind of thread, the system calls it may make,
 * with argument checks where they are cheap and meaningful (ioctl by request, no PROT_EXEC). */
#ifndef KILN_SECCOMP_POLICY_H
#define KILN_SECCOMP_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/sandbox/sandbox.h"

enum sandbox_arg_check {
    SANDBOX_ANY_ARGS,
    SANDBOX_ARG_EQUALS, /* args[arg] == value */
    SANDBOX_ARG_MASKED, /* (args[arg] & mask) == value */
};

struct sandbox_rule {
    int syscall; /* its number, SCMP_SYS(name) */
    enum sandbox_arg_check check;
    unsigned arg;
    uint64_t mask;
    uint64_t value;
    /* The call fails with ENOSYS instead of being allowed (clone3, so glibc falls back to
     * clone, whose flags a filter can read). */
    int fail_enosys;
    const char *why;
};

/* A named group of rules, e.g. "runtime" (what glibc and libuv need on any thread). */
struct sandbox_rule_list {
    const char *name;
    const struct sandbox_rule *rules;
    size_t count;
};

#define SANDBOX_MAX_LISTS 8

/* The lists that make up kind's filter with these needs (enum sandbox_need); returns how many
 * it put in lists (at most SANDBOX_MAX_LISTS). */
size_t sandbox_policy(enum sandbox_thread kind, unsigned needs,
                      const struct sandbox_rule_list *lists[SANDBOX_MAX_LISTS]);

#endif
