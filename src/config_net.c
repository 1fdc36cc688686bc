/* --net values: tap=NAME[,mac=MAC] parsed into struct net_config, the tap/mac checks YAML nets
 * share, and the stable default MAC a device gets when the user names none. */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/config.h"

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "52:54:00:12:34:56": six pairs of hex digits separated by colons. */
static bool parse_mac(const char *text, uint8_t mac[6])
{
    for (int i = 0; i < 6; i++) {
        int hi = hex_digit(text[0]), lo = hi < 0 ? -1 : hex_digit(text[1]);
        if (lo < 0 || text[2] != (i == 5 ? '\0' : ':'))
            return false;
        mac[i] = (uint8_t)(hi << 4 | lo);
        text += 3;
    }
    return true;
}

int config_net_set_tap(struct net_config *net, const char *subject, const char *text,
                       struct error *err)
{
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

int config_net_set_mac(struct net_config *net, const char *subject, const char *example_prefix,
                       const char *text, struct error *err)
{
    uint8_t mac[6];
    if (!parse_mac(text, mac))
        return error_fmt(err, -EINVAL,
                         "%s is not a MAC address (expected six hex pairs such as "
                         "%s02:00:00:00:00:01)",
                         subject, example_prefix);
    if (mac[0] & 1)
        return error_fmt(err, -EINVAL,
                         "%s is a multicast address (expected a unicast MAC: the first byte even)",
                         subject);
    memcpy(net->mac, mac, sizeof(mac));
    net->mac_given = true;
    return 0;
}

static int net_option(struct net_config *net, const char *option, const char *spec_quoted,
                      struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE], subject[2 * CONFIG_QUOTE_SIZE + 16];
    config_quote(option, quoted, sizeof(quoted));
    snprintf(subject, sizeof(subject), "--net: '%s' in '%s'", quoted, spec_quoted);
    if (strncmp(option, "tap=", 4) == 0)
        return config_net_set_tap(net, subject, option + 4, err);
    if (strncmp(option, "mac=", 4) == 0)
        return config_net_set_mac(net, subject, "mac=", option + 4, err);
    return error_fmt(err, -EINVAL,
                     "--net: unknown option '%s' in '%s' (expected tap=NAME or mac=MAC)", quoted,
                     spec_quoted);
}

int config_parse_net(const char *spec, struct net_config *net, struct error *err)
{
    memset(net, 0, sizeof(*net));
    char spec_quoted[CONFIG_QUOTE_SIZE];
    config_quote(spec, spec_quoted, sizeof(spec_quoted));
    char *copy = strdup(spec);
    if (!copy)
        return error_fmt(err, -ENOMEM, "out of memory");
    int r = 0;
    for (char *rest = copy; r == 0 && rest;) {
        char *option = strsep(&rest, ",");
        r = net_option(net, option, spec_quoted, err);
    }
    free(copy);
    if (r == 0 && !net->tap)
        r = error_fmt(err, -EINVAL,
                      "--net: '%s' names no TAP interface (expected " CONFIG_NET_SPEC ")",
                      spec_quoted);
    if (r < 0)
        config_free_net(net);
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
