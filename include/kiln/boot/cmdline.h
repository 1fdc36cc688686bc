/* Kernel command-line editing shared by host-compat (its extra options) and virtio discovery
 * (virtio_mmio.device= entries): options go before a "--" that starts init's arguments. */
#ifndef KILN_CMDLINE_H
#define KILN_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>

struct cmdline_note {
    char added[512]; /* the options inserted, space-separated; "" if none */
    char kept[128];  /* names of options the user had already set (unless_set), e.g. "lpj" */
};

/* *out = user_cmdline with options inserted (before a "--" word, else at the end). With
 * unless_set, an option whose name the user's kernel options already set is left out (the
 * user's value wins; names compare with '-' and '_' alike, as the kernel's parameq() does).
 * *out is malloc'd. Returns 0 or -ENOMEM. note may be NULL. */
int cmdline_add_options(const char *user_cmdline, const char *const *options, size_t n,
                        bool unless_set, char **out, struct cmdline_note *note);

/* Whether the kernel part of cmdline sets an option with option's name ("acpi=off": "acpi"). */
bool cmdline_sets(const char *cmdline, const char *option);

#endif
