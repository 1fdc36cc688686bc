/* The control API's blocking client, for kiln ctl, kiln ps and tests: one request per
 * connection, every step bounded by a timeout. */
#ifndef KILN_API_CLIENT_H
#define KILN_API_CLIENT_H

#include <jansson.h>

#include "kiln/util/error.h"

/* One request; *status gets the HTTP status, *reply the parsed JSON body (NULL if empty).
 * Connect, send, and read are bounded by timeout_ms; every failure is one line in err
 * ("API socket PATH: connect: No such file or directory (is the VM running?)") and a
 * negative errno: a connect failure's own (-ECONNREFUSED, -ENOENT, ...), -ETIMEDOUT, or
 * -EPROTO for a reply that is not HTTP with a JSON body. */
int api_client_request(const char *socket_path, const char *method, const char *path,
                       json_t *body /* may be NULL; not stolen */, int timeout_ms, int *status,
                       json_t **reply, struct error *err);

#endif
