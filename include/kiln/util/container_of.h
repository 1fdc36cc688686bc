/* container_of: from a pointer to a member back to the struct that embeds it, as device models
 * do from their embedded struct virtio_dev to themselves. */
#ifndef KILN_CONTAINER_OF_H
#define KILN_CONTAINER_OF_H

#include <stddef.h>

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#endif
