/* struct vm_config: the one validated description of a VM, filled by the CLI (and later YAML).
 * Strings are owned (heap copies) so the config outlives argv or a parsed file. */
#ifndef KILN_CONFIG_H
#define KILN_CONFIG_H

#include <stdint.h>

#include "kiln/error.h"
#include "kiln/log.h"

enum console_kind { CONSOLE_STDIO, CONSOLE_FILE, CONSOLE_NONE };

#define CONFIG_DEFAULT_MEMORY (256ULL << 20)
#define CONFIG_MIN_MEMORY     (4ULL << 20)
#define CONFIG_MAX_MEMORY     (1ULL << 40)
#define CONFIG_DEFAULT_CPUS   1
#define CONFIG_MAX_CPUS       254 /* 8-bit xAPIC IDs; 0xff is broadcast */

struct vm_config {
    char *kernel_path;
    char *initrd_path; /* NULL: no initrd */
    char *cmdline;     /* never NULL after config_init: "" by default */
    unsigned cpus;
    uint64_t memory_bytes;
    enum console_kind console;
    char *console_path; /* for CONSOLE_FILE */
    enum log_level log_level;
};

void config_init(struct vm_config *cfg);
void config_free(struct vm_config *cfg);

/* Parses SIZE: a decimal number with an optional K, M or G suffix (powers of 1024), e.g.
 * "512M". Returns 0 or -EINVAL (bad syntax) / -ERANGE (overflows 64 bits). */
int config_parse_size(const char *text, uint64_t *bytes);

/* Checks the whole config: required fields, ranges, files that must exist. */
int config_validate(const struct vm_config *cfg, struct error *err);

#endif
