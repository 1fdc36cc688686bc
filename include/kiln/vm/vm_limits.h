/* The rate limits of a running VM's devices: the config as the VM runs it (the limits the API
 * set since it started included), which snapshots and migrations save. */
#ifndef KILN_VM_LIMITS_H
#define KILN_VM_LIMITS_H

#include <stdio.h>

#include "kiln/config/config.h"
#include "kiln/util/error.h"

struct vm;

/* vm->config with each device's limits as they are now, in *view: a shallow copy whose
 * strings are vm->config's. Release it with vm_running_config_release, never config_free.
 * Any thread (each device's lock is taken to read its limits). 0 or -ENOMEM. */
int vm_running_config(struct vm *vm, struct vm_config *view);
void vm_running_config_release(struct vm_config *view);
/* config_yaml_emit of the running config. */
int vm_running_config_emit(struct vm *vm, FILE *out, struct error *err);

#endif
