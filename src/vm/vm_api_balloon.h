/* The control API's balloon endpoints (docs/api.md): GET and PUT /vm/balloon, and the
 * "balloon" summary GET /vm shows. */
#ifndef KILN_VM_API_BALLOON_H
#define KILN_VM_API_BALLOON_H

#include <jansson.h>

#include "kiln/api/api_server.h"

struct vm;

void vm_api_get_balloon(void *opaque, struct api_call *call);
void vm_api_put_balloon(void *opaque, struct api_call *call);
/* {"target_mib", "actual_mib"}, or NULL for a VM without a balloon. */
json_t *vm_api_balloon_summary(struct vm *vm);

#endif
