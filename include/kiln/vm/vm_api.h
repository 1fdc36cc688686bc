/* The control API's endpoints for one VM (docs/api.md): what GET /vm, pause, resume, shutdown,
 * reboot and counters do to it. The HTTP side is api/api_server.h; this is the VM's side. */
#ifndef KILN_VM_API_H
#define KILN_VM_API_H

#include "kiln/util/error.h"

struct vm;

/* Serves the API on vm->api_fd on the VM's loop (from vm_run, once the loop is ready). */
int vm_api_start(struct vm *vm, struct error *err);
/* Closes the server and its connections (the loop finishes closing them); safe if not started.
 * The listening socket itself stays open: main owns it across reboots. */
void vm_api_stop(struct vm *vm);

#endif
