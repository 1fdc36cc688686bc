/* The control API's migration endpoints (docs/api.md): PUT /vm/migrate, PUT /vm/migrate/cancel,
 * and the "migration" object GET /vm shows. */
#ifndef KILN_VM_API_MIGRATE_H
#define KILN_VM_API_MIGRATE_H

#include <jansson.h>

#include "kiln/api/api_server.h"

void vm_api_put_migrate(void *opaque, struct api_call *call);
void vm_api_put_migrate_cancel(void *opaque, struct api_call *call);
/* The last migration's progress, or NULL if this VM has not been migrated. */
json_t *vm_api_migration_json(struct vm *vm);

#endif
