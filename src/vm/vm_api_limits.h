/* The control API's rate limit endpoints (docs/api.md): PATCH /vm/disks/ID, /vm/nets/ID and
 * /vm/rng, each changing a device's limits while the VM runs. */
#ifndef KILN_VM_API_LIMITS_H
#define KILN_VM_API_LIMITS_H

#include "kiln/api/api_server.h"

void vm_api_patch_disk(void *opaque, struct api_call *call);
void vm_api_patch_net(void *opaque, struct api_call *call);
void vm_api_patch_rng(void *opaque, struct api_call *call);

#endif
