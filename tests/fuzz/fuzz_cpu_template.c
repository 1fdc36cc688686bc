/* libFuzzer target for CPU template files (kiln/vcpu/cpu_template.h): any bytes must load
 * without a crash, leak or hang, every refusal is one line naming the file, and a template
 * that loads applies to a CPUID table (or is refused in one line) without touching any
 * entry it does not name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/vcpu/cpu_template.h"

#define NAME "fuzz.yaml"

/* A small table with the leaves templates change most, and one they may not. */
static const struct kvm_cpuid_entry2 host_entries[] = {
    {.function = 1, .ecx = 0xf7fa3223, .edx = 0x178bfbff},
    {.function = 7, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .ebx = 0x219d07ab},
    {.function = 0xd, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 7, .ecx = 0x340},
    {.function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b},
    {.function = 0x40000001, .eax = 0x01007efb},
    {.function = 0x80000001, .ecx = 0x121, .edx = 0x2c100800},
};
#define HOST_COUNT (sizeof(host_entries) / sizeof(host_entries[0]))
#define SIGNATURE  3 /* host_entries[3] */

static void check_message(const struct error *err)
{
    if (strncmp(err->msg, NAME, strlen(NAME)) != 0 || strchr(err->msg, '\n'))
        abort(); /* names the file, one line */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cpu_template t;
    struct error err = {{0}};
    if (cpu_template_load_buffer(&t, NAME, data, size, &err) < 0) {
        check_message(&err);
        return 0;
    }
    struct kvm_cpuid2 *table = calloc(1, sizeof(*table) + sizeof(host_entries));
    if (!table)
        abort();
    table->nent = HOST_COUNT;
    memcpy(table->entries, host_entries, sizeof(host_entries));
    if (cpu_template_apply(&t, table, &err) < 0) {
        check_message(&err);
    } else {
        for (unsigned i = 0; i < HOST_COUNT; i++) {
            if (table->entries[i].function != host_entries[i].function ||
                table->entries[i].index != host_entries[i].index ||
                table->entries[i].flags != host_entries[i].flags)
                abort(); /* a template changes values, never which leaves there are */
        }
        if (memcmp(&table->entries[SIGNATURE], &host_entries[SIGNATURE], sizeof(host_entries[0])) !=
            0)
            abort(); /* KVM's signature is never changed */
    }
    free(table);
    cpu_template_free(&t);
    return 0;
}
