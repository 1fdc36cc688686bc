/* Opening a TAP interface through /dev/net/tun: IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, the
 * version 1 virtio-net header size, no offloads (the device offers none yet). */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kiln/config/config.h"
#include "kiln/host/tap.h"

#define TUN_DEVICE "/dev/net/tun"

int tap_open(const char *name, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE];
    config_quote(name, quoted, sizeof(quoted));
    int fd = open(TUN_DEVICE, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return error_fmt(err, -e,
                             "--net: %s does not exist (expected the tun module: "
                             "modprobe tun)",
                             TUN_DEVICE);
        return error_fmt(err, -e, "--net: cannot open %s: %s", TUN_DEVICE, strerror(e));
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        close(fd);
        if (e == EBUSY)
            return error_fmt(err, -e,
                             "--net: TAP '%s' is busy (another process has it open; "
                             "expected a free or new TAP)",
                             quoted);
        if (e == EPERM)
            return error_fmt(err, -e,
                             "--net: no permission to open or create TAP '%s' (expected "
                             "CAP_NET_ADMIN, or a TAP created for this user: ip tuntap add dev "
                             "%s mode tap user $USER)",
                             quoted, quoted);
        if (e == EINVAL)
            return error_fmt(err, -e,
                             "--net: '%s' exists but is not a TAP with a virtio-net "
                             "header (expected a tap interface)",
                             quoted);
        return error_fmt(err, -e, "--net: TAP '%s': %s", quoted, strerror(e));
    }
    int hdr_size = sizeof(struct virtio_net_hdr_v1);
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_size) < 0 || ioctl(fd, TUNSETOFFLOAD, 0) < 0) {
        int e = errno;
        close(fd);
        return error_fmt(err, -e, "--net: TAP '%s': cannot set the virtio-net header: %s", quoted,
                         strerror(e));
    }
    return fd;
}
