/* TAP interfaces for virtio-net: open an existing one by name or create it, with the
 * virtio-net header (IFF_VNET_HDR) in front of every frame, non-blocking. */
#ifndef KILN_DEVICES_TAP_H
#define KILN_DEVICES_TAP_H

#include "kiln/util/error.h"

/* Returns the TAP's fd (O_NONBLOCK, vnet header size 12: struct virtio_net_hdr_v1), or a
 * negative errno with one line in err: no /dev/net/tun, no permission, busy, bad name. */
int tap_open(const char *name, struct error *err);

#endif
