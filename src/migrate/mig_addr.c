/* Migration addresses: "unix:PATH", "tcp:HOST:PORT" and "tcp:[V6]:PORT" into a struct mig_addr,
 * numeric only for the VMM (no name lookups under seccomp), with names resolved for kiln ctl. */
#include "kiln/migrate/mig_addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define EXPECTED "expected unix:PATH or tcp:HOST:PORT"

static bool is_numeric_host(const char *host)
{
    unsigned char scratch[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, scratch) == 1 || inet_pton(AF_INET6, host, scratch) == 1;
}

/* "1".."65535", digits only: "+1", " 1" and "0x10" are refused like "0" and "70000". */
static int parse_port(const char *text, const char *port, uint16_t *out, struct error *err)
{
    if (*port == '\0')
        return error_fmt(err, -EINVAL, "migration address '%s': no port (%s)", text, EXPECTED);
    unsigned long value = 0;
    for (const char *c = port; *c; c++) {
        if (*c < '0' || *c > '9' || value > 65535)
            return error_fmt(err, -EINVAL,
                             "migration address '%s': port '%s' is not a number from 1 to 65535",
                             text, port);
        value = value * 10 + (unsigned long)(*c - '0');
    }
    if (value < 1 || value > 65535)
        return error_fmt(err, -EINVAL,
                         "migration address '%s': port '%s' is not a number from 1 to 65535", text,
                         port);
    *out = (uint16_t)value;
    return 0;
}

static int parse_unix(const char *text, const char *path, struct mig_addr *out, struct error *err)
{
    if (*path == '\0')
        return error_fmt(err, -EINVAL, "migration address '%s': expected unix:PATH with a PATH",
                         text);
    size_t len = strlen(path);
    if (len >= sizeof(out->path))
        return error_fmt(err, -ENAMETOOLONG,
                         "migration address '%s': the path is %zu bytes, a socket path is at "
                         "most %zu",
                         text, len, sizeof(out->path) - 1);
    out->kind = MIG_ADDR_UNIX;
    memcpy(out->path, path, len + 1);
    return 0;
}

/* rest is what follows "tcp:": "HOST:PORT" or "[V6]:PORT". */
static int parse_tcp(const char *text, const char *rest, bool names_allowed, struct mig_addr *out,
                     struct error *err)
{
    const char *host = rest, *host_end, *port;
    if (*rest == '[') {
        host = rest + 1;
        host_end = strchr(host, ']');
        if (!host_end || host_end[1] != ':')
            return error_fmt(err, -EINVAL, "migration address '%s': expected tcp:[IPV6]:PORT",
                             text);
        port = host_end + 2;
    } else {
        host_end = strrchr(rest, ':');
        if (!host_end)
            return error_fmt(err, -EINVAL, "migration address '%s': no port (%s)", text, EXPECTED);
        if (memchr(rest, ':', (size_t)(host_end - rest)))
            return error_fmt(err, -EINVAL,
                             "migration address '%s': an IPv6 address needs brackets "
                             "(expected tcp:[IPV6]:PORT)",
                             text);
        port = host_end + 1;
    }
    size_t host_len = (size_t)(host_end - host);
    if (host_len == 0)
        return error_fmt(err, -EINVAL, "migration address '%s': no host (%s)", text, EXPECTED);
    if (host_len >= sizeof(out->host))
        return error_fmt(err, -ENAMETOOLONG,
                         "migration address '%s': the host is %zu bytes, at most %zu", text,
                         host_len, sizeof(out->host) - 1);
    int r = parse_port(text, port, &out->port, err);
    if (r < 0)
        return r;
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    bool bracketed = *rest == '[';
    unsigned char scratch[sizeof(struct in6_addr)];
    if (bracketed && inet_pton(AF_INET6, out->host, scratch) != 1)
        return error_fmt(err, -EINVAL, "migration address '%s': '%s' is not a numeric IPv6 address",
                         text, out->host);
    if (!bracketed && !names_allowed && inet_pton(AF_INET, out->host, scratch) != 1)
        return error_fmt(err, -EINVAL,
                         "migration address '%s': '%s' is not a numeric IPv4 or [IPv6] address "
                         "(host names are resolved by kiln ctl, not by the VM)",
                         text, out->host);
    out->kind = MIG_ADDR_TCP;
    return 0;
}

static int parse(const char *text, bool names_allowed, struct mig_addr *out, struct error *err)
{
    memset(out, 0, sizeof(*out));
    if (!text)
        text = "";
    size_t len = strlen(text);
    if (len >= sizeof(out->text))
        return error_fmt(err, -ENAMETOOLONG, "migration address '%.40s...': %zu bytes, at most %zu",
                         text, len, sizeof(out->text) - 1);
    memcpy(out->text, text, len + 1);
    if (strncmp(text, "unix:", 5) == 0)
        return parse_unix(text, text + 5, out, err);
    if (strncmp(text, "tcp:", 4) == 0)
        return parse_tcp(text, text + 4, names_allowed, out, err);
    return error_fmt(err, -EINVAL, "migration address '%s': %s", text, EXPECTED);
}

int mig_addr_parse(const char *text, struct mig_addr *out, struct error *err)
{
    return parse(text, false, out, err);
}

int mig_addr_resolve(const char *text, struct mig_addr *out, struct error *err)
{
    int r = parse(text, true, out, err);
    if (r < 0 || out->kind != MIG_ADDR_TCP || is_numeric_host(out->host))
        return r;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *found = NULL;
    int g = getaddrinfo(out->host, NULL, &hints, &found);
    if (g != 0)
        return error_fmt(err, -EHOSTUNREACH, "migration address '%s': cannot resolve '%s': %s",
                         text, out->host, gai_strerror(g));
    const void *raw = found->ai_family == AF_INET6
                          ? (const void *)&((struct sockaddr_in6 *)found->ai_addr)->sin6_addr
                          : (const void *)&((struct sockaddr_in *)found->ai_addr)->sin_addr;
    const char *ok = inet_ntop(found->ai_family, raw, out->host, sizeof(out->host));
    freeaddrinfo(found);
    if (!ok)
        return error_fmt(err, -errno, "migration address '%s': inet_ntop: %s", text,
                         strerror(errno));
    return 0;
}

int mig_addr_format(const struct mig_addr *a, char *buf, size_t size)
{
    int n;
    if (a->kind == MIG_ADDR_UNIX)
        n = snprintf(buf, size, "unix:%s", a->path);
    else if (strchr(a->host, ':'))
        n = snprintf(buf, size, "tcp:[%s]:%u", a->host, (unsigned)a->port);
    else
        n = snprintf(buf, size, "tcp:%s:%u", a->host, (unsigned)a->port);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}
