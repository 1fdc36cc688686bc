/* A VM's CPUID (kiln/vm/vm_cpuid.h): the config's CPU template over KVM's supported table, and
 * the saved table a restored or migrated VM gets back after this host is checked to offer it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/vcpu/cpu_template.h"
#include "kiln/vcpu/vcpu.h"
#include "kiln/vm/vm_cpuid.h"

static size_t table_size(uint32_t nent)
{
    return sizeof(struct kvm_cpuid2) + (size_t)nent * sizeof(struct kvm_cpuid_entry2);
}

static struct kvm_cpuid2 *table_copy(const struct kvm_cpuid2 *table)
{
    struct kvm_cpuid2 *copy = malloc(table_size(table->nent));
    if (copy)
        memcpy(copy, table, table_size(table->nent));
    return copy;
}

int vm_cpuid_build(struct vm *vm, struct error *err)
{
    int r = cpuid_get_supported(vm->kvm.fd, &vm->supported_cpuid, err);
    if (r < 0)
        return r;
    vm->guest_cpuid = table_copy(vm->supported_cpuid);
    if (!vm->guest_cpuid)
        return error_fmt(err, -ENOMEM, "CPUID: out of memory");
    if (vm->state_follows) {
        cpu_template_init(&vm->cpu_template, "host");
        return 0;
    }
    const char *name = config_cpu_template(vm->config);
    r = cpu_template_load(&vm->cpu_template, name, err);
    if (r == 0)
        r = cpu_template_apply(&vm->cpu_template, vm->guest_cpuid, err);
    if (r == 0)
        log_info(&vm->log, "CPU template: %s", name);
    return r;
}

int vm_cpuid_save(const struct vm *vm, struct snap_writer *w, struct error *err)
{
    return snap_writer_add(w, VM_CPUID_SECTION, -1, vm->guest_cpuid,
                           (uint32_t)table_size(vm->guest_cpuid->nent), err);
}

static bool find_section(const struct snap_reader *reader, struct snap_section *out)
{
    for (uint32_t i = 0; snap_reader_section(reader, i, out) == 0; i++)
        if (strcmp(out->name, VM_CPUID_SECTION) == 0 && out->slot == -1)
            return true;
    return false;
}

bool vm_cpuid_saved(const struct snap_reader *reader)
{
    struct snap_section section;
    return find_section(reader, &section);
}

int vm_cpuid_load(struct vm *vm, const struct snap_reader *reader, struct error *err)
{
    struct snap_section section;
    if (!find_section(reader, &section))
        return 0;
    char label[sizeof(reader->label) + 32];
    snprintf(label, sizeof(label), "%s: section 'cpuid'", reader->label);
    int r = cpuid_table_check(section.data, section.size, label, err);
    if (r < 0)
        return r;
    const struct kvm_cpuid2 *saved = section.data; /* 8-byte aligned (snap_reader_section) */
    snprintf(label, sizeof(label), "%s: the saved VM", reader->label);
    r = cpuid_check_offered(saved, vm->supported_cpuid, label, err);
    if (r < 0)
        return r;
    struct kvm_cpuid2 *copy = table_copy(saved);
    if (!copy)
        return error_fmt(err, -ENOMEM, "out of memory");
    free(vm->guest_cpuid);
    vm->guest_cpuid = copy;
    vm->vcpu_env.cpuid = copy;
    for (unsigned i = 0; r == 0 && i < vm->nvcpus; i++)
        r = vcpu_set_cpuid(&vm->vcpus[i], copy, err);
    return r;
}
