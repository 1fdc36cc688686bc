/* The keys of a network device (the YAML nets: entry and the --net tap=NAME[,mac=MAC] options
 * alike) and their checks, and the stable default MAC a device gets when the user names none. */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "kiln/util/bytes.h"
#include "kiln/config/config_limit.h"
#include "kiln/config/config_settings.h"

/* "52:54:00:12:34:56": six pairs of hex digits separated by colons. */
static bool parse_mac(const char *text, uint8_t mac[6])
{
    for (int i = 0; i < 6; i++) {
        int hi = bytes_hex_digit(text[0]), lo = hi < 0 ? -1 : bytes_hex_digit(text[1]);
        if (lo < 0 || text[2] != (i == 5 ? '\0' : ':'))
            return false;
        mac[i] = (uint8_t)(hi << 4 | lo);
        text += 3;
    }
    return true;
}

#define TAP_EXPECTED "the name of a TAP interface"
#define MAC_EXPECTED "a MAC such as 02:00:00:00:00:01"

static int set_tap(void *device, const char *subject, const char *text, struct error *err)
{
    struct net_config *net = device;
    size_t len = strlen(text);
    if (len == 0 || len >= IFNAMSIZ || strchr(text, '/'))
        return error_fmt(err, -EINVAL,
                         "%s is not an interface name (expected 1 to %d bytes, no '/')", subject,
                         IFNAMSIZ - 1);
    char *copy = strdup(text);
    if (!copy)
        return error_fmt(err, -ENOMEM, "out of memory");
    free(net->tap);
    net->tap = copy;
    return 0;
}

static int set_mac(void *device, const char *subject, const char *text, struct error *err)
{
    struct net_config *net = device;
    uint8_t mac[6];
    if (!parse_mac(text, mac))
        return error_fmt(err, -EINVAL,
                         "%s is not a MAC address (expected six hex pairs such as "
                         "02:00:00:00:00:01)",
                         subject);
    if (mac[0] & 1)
        return error_fmt(err, -EINVAL,
                         "%s is a multicast address (expected a unicast MAC: the first byte even)",
                         subject);
    memcpy(net->mac, mac, sizeof(mac));
    net->mac_given = true;
    return 0;
}

static int get_tap(const void *device, char **text)
{
    return config_text(((const struct net_config *)device)->tap, text);
}

/* A derived MAC is left out, so it stays derived (from the VM's name) when the text is loaded. */
static int get_mac(const void *device, char **text)
{
    const struct net_config *net = device;
    if (!net->mac_given)
        return config_text(NULL, text);
    char mac[18];
    snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", net->mac[0], net->mac[1],
             net->mac[2], net->mac[3], net->mac[4], net->mac[5]);
    return config_text(mac, text);
}

/* rx-bw=, rx-pps=... (host to guest) and tx-... (guest to host): config_limit.c. */
static int set_rx_bw(void *device, const char *subject, const char *text, struct error *err)
{
    return config_limit_set(&((struct net_config *)device)->rx_limit, CONFIG_LIMIT_BW, subject,
                            text, err);
}

static int get_rx_bw(const void *device, char **text)
{
    return config_limit_get(&((const struct net_config *)device)->rx_limit, CONFIG_LIMIT_BW, text);
}

static int set_rx_bw_burst(void *device, const char *subject, const char *text, struct error *err)
{
    return config_limit_set(&((struct net_config *)device)->rx_limit, CONFIG_LIMIT_BW_BURST,
                            subject, text, err);
}

static int get_rx_bw_burst(const void *device, char **text)
{
    return config_limit_get(&((const struct net_config *)device)->rx_limit, CONFIG_LIMIT_BW_BURST,
                            text);
}

static int set_rx_ops(void *device, const char *subject, const char *text, struct error *err)
{
    return config_limit_set(&((struct net_config *)device)->rx_limit, CONFIG_LIMIT_OPS, subject,
                            text, err);
}

static int get_rx_ops(const void *device, char **text)
{
    return config_limit_get(&((const struct net_config *)device)->rx_limit, CONFIG_LIMIT_OPS, text);
}

static int set_rx_ops_burst(void *device, const char *subject, const char *text, struct error *err)
{
    return config_limit_set(&((struct net_config *)device)->rx_limit, CONFIG_LIMIT_OPS_BURST,
                            subject, text, err);
}

static int get_rx_ops_burst(const void *device, char **text)
{
    return config_limit_get(&((const struct net_config *)device)->rx_limit, CONFIG_LIMIT_OPS_BURST,
                            text);
}

static int set_tx_bw(void *device, const char *subject, const char *text, struct error *err)
{
    return config_limit_set(&((struct net_config *)device)->tx_limit, CONFIG_LIMIT_BW, subject,
                            text, err);
}

static int get_tx_bw(const void *device, char **text)
{
    return config_limit_get(&((const struct net_config *)device)->tx_limit, CONFIG_LIMIT_BW, text);
}

static int set_tx_bw_burst(void *device, const char *subject, const char *text, struct error *err)
{
    return config_limit_set(&((struct net_config *)device)->tx_limit, CONFIG_LIMIT_BW_BURST,
                            subject, text, err);
}

static int get_tx_bw_burst(const void *device, char **text)
{
    return config_limit_get(&((const struct net_config *)device)->tx_limit, CONFIG_LIMIT_BW_BURST,
                            text);
}

static int set_tx_ops(void *device, const char *subject, const char *text, struct error *err)
{
    return config_limit_set(&((struct net_config *)device)->tx_limit, CONFIG_LIMIT_OPS, subject,
                            text, err);
}

static int get_tx_ops(const void *device, char **text)
{
    return config_limit_get(&((const struct net_config *)device)->tx_limit, CONFIG_LIMIT_OPS, text);
}

static int set_tx_ops_burst(void *device, const char *subject, const char *text, struct error *err)
{
    return config_limit_set(&((struct net_config *)device)->tx_limit, CONFIG_LIMIT_OPS_BURST,
                            subject, text, err);
}

static int get_tx_ops_burst(const void *device, char **text)
{
    return config_limit_get(&((const struct net_config *)device)->tx_limit, CONFIG_LIMIT_OPS_BURST,
                            text);
}

static const struct config_device_key net_keys[] = {
    {"tap", NULL, "NAME", TAP_EXPECTED, set_tap, get_tap, CONFIG_SETTING_TEXT},
    {"mac", NULL, "MAC", MAC_EXPECTED, set_mac, get_mac, CONFIG_SETTING_TEXT},
    {"rx-bw", NULL, "RATE", CONFIG_LIMIT_BW_EXPECTED, set_rx_bw, get_rx_bw, 0},
    {"rx-bw-burst", NULL, "SIZE", CONFIG_LIMIT_BW_BURST_EXPECTED, set_rx_bw_burst, get_rx_bw_burst,
     0},
    {"rx-pps", NULL, "RATE", CONFIG_LIMIT_OPS_EXPECTED, set_rx_ops, get_rx_ops, 0},
    {"rx-pps-burst", NULL, "N", CONFIG_LIMIT_OPS_BURST_EXPECTED, set_rx_ops_burst, get_rx_ops_burst,
     0},
    {"tx-bw", NULL, "RATE", CONFIG_LIMIT_BW_EXPECTED, set_tx_bw, get_tx_bw, 0},
    {"tx-bw-burst", NULL, "SIZE", CONFIG_LIMIT_BW_BURST_EXPECTED, set_tx_bw_burst, get_tx_bw_burst,
     0},
    {"tx-pps", NULL, "RATE", CONFIG_LIMIT_OPS_EXPECTED, set_tx_ops, get_tx_ops, 0},
    {"tx-pps-burst", NULL, "N", CONFIG_LIMIT_OPS_BURST_EXPECTED, set_tx_ops_burst, get_tx_ops_burst,
     0},
};

const struct config_device_keys config_net_keys = {
    .flag = "--net",
    .list_key = "nets",
    .what = "network devices",
    .spec = CONFIG_NET_SPEC,
    .keys = net_keys,
    .count = sizeof(net_keys) / sizeof(net_keys[0]),
    .positional = false,
};

int config_parse_net(const char *spec, struct net_config *net, struct error *err)
{
    memset(net, 0, sizeof(*net));
    int r = config_parse_device_spec(&config_net_keys, spec, net, err);
    if (r < 0)
        config_free_net(net);
    return r;
}

int config_set_net(struct vm_config *cfg, const char *label, const char *text, struct error *err)
{
    struct net_config net;
    int r = config_parse_net(text, &net, err);
    if (r == 0 && (r = config_add_net(cfg, &net, err)) < 0)
        config_free_net(&net);
    return r;
}

void config_free_net(struct net_config *net)
{
    free(net->tap);
    memset(net, 0, sizeof(*net));
}

int config_add_net(struct vm_config *cfg, const struct net_config *net, struct error *err)
{
    struct net_config *nets = realloc(cfg->nets, (cfg->nnets + 1) * sizeof(*nets));
    if (!nets)
        return error_fmt(err, -ENOMEM, "out of memory");
    cfg->nets = nets;
    cfg->nets[cfg->nnets++] = *net;
    return 0;
}

void config_net_mac(const struct vm_config *cfg, unsigned index, uint8_t mac[6])
{
    const struct net_config *net = &cfg->nets[index];
    if (net->mac_given)
        memcpy(mac, net->mac, 6);
    else
        config_default_mac(cfg->name ? cfg->name : net->tap, index, mac);
}

void config_default_mac(const char *key, unsigned index, uint8_t mac[6])
{
    /* FNV-1a over the key and index: stable across boots, different per VM (or TAP). */
    uint32_t hash = 2166136261u;
    for (const char *p = key; *p; p++)
        hash = (hash ^ (uint8_t)*p) * 16777619u;
    hash = (hash ^ index) * 16777619u;
    mac[0] = 0x02; /* locally administered, unicast */
    mac[1] = 0x4b; /* 'K' */
    mac[2] = (uint8_t)(hash >> 24);
    mac[3] = (uint8_t)(hash >> 16);
    mac[4] = (uint8_t)(hash >> 8);
    mac[5] = (uint8_t)hash;
}

int config_net_clone_macs(struct vm_config *cfg, bool keep_given, bool new_name, struct error *err)
{
    for (unsigned i = 0; i < cfg->nnets; i++) {
        struct net_config *net = &cfg->nets[i];
        if (keep_given && net->mac_given)
            continue;
        if (new_name && cfg->name) {
            config_default_mac(cfg->name, i, net->mac);
        } else {
            /* kiln's prefix, like a derived MAC, then 32 random bits. */
            net->mac[0] = 0x02;
            net->mac[1] = 0x4b;
            if (getrandom(net->mac + 2, 4, 0) != 4)
                return error_fmt(err, -EIO, "--clone: no random bytes for a MAC: %s",
                                 strerror(errno));
        }
        net->mac_given = true;
    }
    return 0;
}
