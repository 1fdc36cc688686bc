/* The control API's server: HTTP/1.1 + JSON on a Unix socket, served from the VM's libuv loop
 * without ever blocking it. Routes map a method and path to a handler; a handler replies at
 * once or keeps its call and replies from a later loop callback. docs/api.md has the limits. */
#ifndef KILN_API_SERVER_H
#define KILN_API_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "kiln/util/error.h"
#include "kiln/util/log.h"

/* A request that does not arrive whole this long after its first byte: 408 and close. */
#define API_REQUEST_TIMEOUT_MS 5000
/* A keep-alive connection with no request for this long is closed. */
#define API_IDLE_TIMEOUT_MS 60000
/* Connections served at once; one more is answered 503 and closed. */
#define API_MAX_CONNECTIONS 16
/* Replies a client has not read yet, per connection; past it the connection is closed. */
#define API_MAX_UNREAD_REPLY_BYTES (1024 * 1024)

struct api_call; /* one request, owned by the server until replied to */

struct api_route {
    const char *method; /* "GET", "PUT", "PATCH" */
    const char *path;   /* exact match, e.g. "/vm/pause"; a last segment that is a star
                           ("*") matches any one segment: api_call_path gives the whole path */
    void (*handle)(void *opaque, struct api_call *call);
};

struct api_connection;

/* Zero it before api_server_start (tests may then lower the timeouts). It holds no libuv
 * handle itself, so it may be freed right after api_server_stop. */
struct api_server {
    uint64_t request_timeout_ms; /* 0: API_REQUEST_TIMEOUT_MS */
    uint64_t idle_timeout_ms;    /* 0: API_IDLE_TIMEOUT_MS */

    /* Set by api_server_start. */
    uv_loop_t *loop;
    uv_pipe_t *listener; /* malloc'd: freed by its close callback */
    const struct api_route *routes;
    size_t nroutes;
    void *opaque;
    const struct log *log;
    struct api_connection *connections; /* every open connection, a doubly linked list */
    unsigned served;                    /* connections counted against API_MAX_CONNECTIONS */
};

/* Serves on an already-bound, listening Unix socket fd (see api_socket_bind) on `loop`.
 * routes: an array of nroutes entries (kept, not copied); opaque goes to every handler.
 * The server owns listen_fd from this call on: api_server_stop closes it, and so does a
 * failed start. The socket's file is the caller's to unlink. Writes to a client that went away
 * need SIGPIPE ignored, as kiln's main() does. */
int api_server_start(struct api_server *s, uv_loop_t *loop, int listen_fd,
                     const struct api_route *routes, size_t nroutes, void *opaque,
                     const struct log *log, struct error *err);

/* Closes the listener and every connection; the loop then runs their close callbacks. Calls
 * a handler still holds stay valid: replying to one later sends nothing and frees it. */
void api_server_stop(struct api_server *s);

const char *api_call_method(const struct api_call *call);
const char *api_call_path(const struct api_call *call);
json_t *api_call_body(const struct api_call *call); /* parsed JSON body, or NULL if none */

/* Reply now or later (from any later callback on the server's loop). Steals `body` (may be
 * NULL: no body, e.g. 204). If the client went away meanwhile, the reply is dropped and the
 * call freed. The call must not be used after. */
void api_call_reply(struct api_call *call, int status, json_t *body);

/* {"error": "<message>"} with that status, printf-style. */
void api_call_error(struct api_call *call, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
