/* The control API's server on the VM's libuv loop: accepts connections, frames requests with
 * http_request.c, routes them, writes replies; every read and write is non-blocking and every
 * per-client resource is bounded (docs/api.md). */
#include "kiln/api/api_server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln/api/http_request.h"

/* Bytes read but not yet parsed: a whole request of the largest size. Reading pauses when it
 * is full (while a handler holds the connection's call, for instance). */
#define UNPARSED_MAX (HTTP_MAX_HEAD_BYTES + HTTP_MAX_BODY_BYTES)

enum connection_timer { TIMER_NONE, TIMER_IDLE, TIMER_REQUEST };

struct api_connection {
    struct api_server *server; /* NULL once the server has stopped */
    struct api_connection *prev, *next;
    uv_pipe_t pipe;
    uv_timer_t timer;
    int open_handles; /* close callbacks still to come before the connection is freed */
    bool closing;
    bool reading;
    bool counted;            /* counts against API_MAX_CONNECTIONS (a 503'd one does not) */
    bool peer_done;          /* the client sent EOF: answer what it asked, then close */
    bool close_after_writes; /* close once everything written has gone out */
    bool pumping;
    enum connection_timer timer_kind;
    size_t unread_reply_bytes;
    struct api_call *call; /* the request a handler is working on, NULL if none */
    char *unparsed;        /* UNPARSED_MAX bytes */
    size_t unparsed_len;
    struct http_request request;
};

struct api_call {
    struct api_connection *connection; /* NULL once the connection has closed */
    bool keep_alive;
    json_t *body;
    char method[HTTP_MAX_METHOD_BYTES + 1];
    char path[]; /* copied: the call may outlive the connection */
};

struct reply_write {
    uv_write_t req;
    struct api_connection *connection;
    size_t len;
    char data[];
};

static void pump(struct api_connection *c);
static void on_listener_closed(uv_handle_t *handle);
static void set_timer(struct api_connection *c, enum connection_timer kind);

static void on_handle_closed(uv_handle_t *handle)
{
    struct api_connection *c = handle->data;
    if (--c->open_handles > 0)
        return;
    http_request_reset(&c->request);
    free(c->unparsed);
    free(c);
}

static void connection_close(struct api_connection *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->call) {
        c->call->connection = NULL; /* the handler's later reply is then dropped */
        c->call = NULL;
    }
    struct api_server *s = c->server;
    if (s) {
        if (c->prev)
            c->prev->next = c->next;
        else
            s->connections = c->next;
        if (c->next)
            c->next->prev = c->prev;
        if (c->counted)
            s->served--;
        c->server = NULL;
    }
    /* Writes still queued end with UV_ECANCELED before these callbacks run. */
    uv_close((uv_handle_t *)&c->pipe, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_written(uv_write_t *req, int status)
{
    struct reply_write *w = (struct reply_write *)req;
    struct api_connection *c = w->connection;
    c->unread_reply_bytes -= w->len;
    free(w);
    if (status < 0 || (c->close_after_writes && c->unread_reply_bytes == 0))
        connection_close(c);
}

/* One whole response in one write: status line, headers, the body as compact JSON. */
static void send_response(struct api_connection *c, int status, json_t *body,
                          const char *extra_header, bool keep_alive)
{
    if (c->closing)
        return;
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    size_t text_len = text ? strlen(text) + 1 : 0; /* + the newline after it */
    if (!keep_alive || c->peer_done)
        c->close_after_writes = true;
    char head[512];
    int head_len = snprintf(
        head, sizeof(head), "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %zu\r\n%s\r\n", status,
        http_status_reason(status), text ? "Content-Type: application/json\r\n" : "",
        extra_header ? extra_header : "", extra_header ? "\r\n" : "", text_len,
        c->close_after_writes ? "Connection: close\r\n" : "");
    size_t len = (size_t)head_len + text_len;
    struct reply_write *w = malloc(sizeof(*w) + len);
    if (!w || c->unread_reply_bytes + len > API_MAX_UNREAD_REPLY_BYTES) {
        if (c->server)
            log_warn(c->server->log, "API: closing a connection: %s",
                     w ? "it does not read its replies" : "out of memory");
        free(w);
        free(text);
        connection_close(c);
        return;
    }
    memcpy(w->data, head, (size_t)head_len);
    if (text) {
        memcpy(w->data + head_len, text, text_len - 1);
        w->data[len - 1] = '\n';
    }
    free(text);
    w->connection = c;
    w->len = len;
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)len);
    c->unread_reply_bytes += len;
    int r = uv_write(&w->req, (uv_stream_t *)&c->pipe, &buf, 1, on_written);
    if (r < 0) {
        c->unread_reply_bytes -= len;
        free(w);
        connection_close(c);
    }
}

/* {"error": message}. JSON strings are UTF-8: a message that quotes a client's bytes may not
 * be, so those bytes become '?' rather than the reply losing its body. */
static json_t *error_body(const char *message)
{
    json_t *body = json_pack("{s:s}", "error", message);
    if (body)
        return body;
    char clean[1024];
    size_t i = 0;
    for (; message[i] && i + 1 < sizeof(clean); i++) {
        unsigned char byte = (unsigned char)message[i];
        clean[i] = byte >= 0x20 && byte < 0x7f ? (char)byte : '?';
    }
    clean[i] = '\0';
    return json_pack("{s:s}", "error", clean);
}

static void send_error(struct api_connection *c, int status, bool keep_alive,
                       const char *extra_header, const char *message)
{
    json_t *body = error_body(message);
    send_response(c, status, body, extra_header, keep_alive);
    json_decref(body);
}

static void on_timer(uv_timer_t *timer)
{
    struct api_connection *c = timer->data;
    if (c->timer_kind == TIMER_REQUEST && !c->close_after_writes && c->request.started) {
        char message[96];
        snprintf(message, sizeof(message), "request not complete within %llu ms of its first byte",
                 (unsigned long long)c->server->request_timeout_ms);
        send_error(c, 408, false, NULL, message);
        /* Again, now bounding how long the 408 may wait to be read. */
        c->timer_kind = TIMER_NONE;
        set_timer(c, TIMER_REQUEST);
        return;
    }
    connection_close(c); /* idle, or a client that does not take its last reply */
}

static void set_timer(struct api_connection *c, enum connection_timer kind)
{
    if (c->closing || c->timer_kind == kind)
        return;
    c->timer_kind = kind;
    if (kind == TIMER_NONE) {
        uv_timer_stop(&c->timer);
        return;
    }
    uint64_t ms = kind == TIMER_IDLE ? c->server->idle_timeout_ms : c->server->request_timeout_ms;
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct api_connection *c = handle->data;
    buf->base = c->unparsed + c->unparsed_len;
    buf->len = UNPARSED_MAX - c->unparsed_len;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct api_connection *c = stream->data;
    if (nread > 0) {
        c->unparsed_len += (size_t)nread;
    } else if (nread == UV_EOF) {
        c->peer_done = true;
    } else if (nread < 0) {
        connection_close(c);
        return;
    }
    pump(c);
}

/* Read while there is room for more and someone to read from. */
static void update_reading(struct api_connection *c)
{
    bool want =
        !c->closing && !c->peer_done && !c->close_after_writes && c->unparsed_len < UNPARSED_MAX;
    if (want && !c->reading)
        c->reading = uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) == 0;
    else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->pipe);
        c->reading = false;
    }
}

/* A route's path is matched exactly, except that a last segment that is a star ("*") stands
 * for any one non-empty segment: the disks' route matches "/vm/disks/data", not "/vm/disks/"
 * nor anything deeper. */
static bool path_matches(const char *pattern, const char *path)
{
    size_t len = strlen(pattern);
    if (len < 2 || strcmp(pattern + len - 2, "/*") != 0)
        return strcmp(pattern, path) == 0;
    const char *segment = path + len - 1;
    return strncmp(pattern, path, len - 1) == 0 && *segment && !strchr(segment, '/');
}

/* The methods a path has, for 405's Allow header; false if no route has the path. */
static bool allowed_methods(const struct api_server *s, const char *path, char *out, size_t len)
{
    size_t used = (size_t)snprintf(out, len, "Allow: ");
    bool found = false;
    for (size_t i = 0; i < s->nroutes; i++) {
        if (!path_matches(s->routes[i].path, path))
            continue;
        int n = snprintf(out + used, len - used, "%s%s", found ? ", " : "", s->routes[i].method);
        if (n > 0 && (size_t)n < len - used)
            used += (size_t)n;
        found = true;
    }
    return found;
}

/* A whole request has arrived: route it, or answer the error. */
static void dispatch(struct api_connection *c)
{
    struct api_server *s = c->server;
    struct http_request *r = &c->request;
    bool keep_alive = r->keep_alive;
    set_timer(c, TIMER_NONE);

    const struct api_route *route = NULL;
    for (size_t i = 0; i < s->nroutes && !route; i++)
        if (path_matches(s->routes[i].path, r->path) && strcmp(s->routes[i].method, r->method) == 0)
            route = &s->routes[i];
    char message[HTTP_MAX_HEAD_BYTES + 64];
    if (!route) {
        char allow[256];
        if (allowed_methods(s, r->path, allow, sizeof(allow))) {
            snprintf(message, sizeof(message), "%s %s: method not allowed (%s)", r->method, r->path,
                     allow);
            send_error(c, 405, keep_alive, allow, message);
        } else {
            snprintf(message, sizeof(message), "%s %s: no such endpoint", r->method, r->path);
            send_error(c, 404, keep_alive, NULL, message);
        }
        http_request_reset(r);
        return;
    }

    json_t *body = NULL;
    if (r->body_len) {
        json_error_t json_error;
        body = json_loadb(r->body, r->body_len, JSON_DECODE_ANY, &json_error);
        if (!body) {
            snprintf(message, sizeof(message),
                     "request body: invalid JSON at line %d column %d: %s", json_error.line,
                     json_error.column, json_error.text);
            send_error(c, 400, keep_alive, NULL, message);
            http_request_reset(r);
            return;
        }
    }
    size_t path_len = strlen(r->path);
    struct api_call *call = calloc(1, sizeof(*call) + path_len + 1);
    if (!call) {
        json_decref(body);
        send_error(c, 500, false, NULL, "out of memory");
        http_request_reset(r);
        return;
    }
    call->connection = c;
    call->keep_alive = keep_alive;
    call->body = body;
    memcpy(call->method, r->method, sizeof(call->method));
    memcpy(call->path, r->path, path_len + 1);
    http_request_reset(r);
    c->call = call;
    route->handle(s->opaque, call);
}

/* Parses what has been read, one request at a time: the next waits until the call before it
 * has been replied to, so replies go out in order. */
static void pump(struct api_connection *c)
{
    if (c->pumping)
        return; /* a handler replied at once, inside dispatch: the loop below goes on */
    c->pumping = true;
    while (!c->closing && !c->call && !c->close_after_writes && c->unparsed_len) {
        size_t used = 0;
        enum http_parse_status status =
            http_request_feed(&c->request, c->unparsed, c->unparsed_len, &used);
        memmove(c->unparsed, c->unparsed + used, c->unparsed_len - used);
        c->unparsed_len -= used;
        if (status == HTTP_PARSE_ERROR)
            send_error(c, c->request.error_status, false, NULL, c->request.error);
        else if (status == HTTP_PARSE_DONE)
            dispatch(c);
        else
            break;
    }
    c->pumping = false;
    if (c->closing)
        return;
    if (c->peer_done && !c->call) {
        /* Nothing more can come: close once the replies are out. */
        c->close_after_writes = true;
        if (c->unread_reply_bytes == 0) {
            connection_close(c);
            return;
        }
    }
    update_reading(c);
    if (c->call)
        set_timer(c, TIMER_NONE);
    else if (c->close_after_writes || c->request.started)
        set_timer(c, TIMER_REQUEST);
    else
        set_timer(c, TIMER_IDLE);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct api_server *s = listener->data;
    if (status < 0) {
        log_warn(s->log, "API: accepting a connection: %s", uv_strerror(status));
        return;
    }
    struct api_connection *c = calloc(1, sizeof(*c));
    char *unparsed = malloc(UNPARSED_MAX);
    if (!c || !unparsed) {
        free(c);
        free(unparsed);
        /* Take the connection off the queue anyway, or libuv stops watching the listener. */
        uv_pipe_t *refused = malloc(sizeof(*refused));
        if (refused && uv_pipe_init(s->loop, refused, 0) == 0) {
            uv_accept(listener, (uv_stream_t *)refused);
            uv_close((uv_handle_t *)refused, on_listener_closed);
        } else {
            free(refused);
        }
        log_warn(s->log, "API: out of memory for a new connection");
        return;
    }
    c->unparsed = unparsed;
    c->server = s;
    uv_pipe_init(s->loop, &c->pipe, 0);
    uv_timer_init(s->loop, &c->timer);
    c->pipe.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    c->next = s->connections;
    if (c->next)
        c->next->prev = c;
    s->connections = c;
    if (uv_accept(listener, (uv_stream_t *)&c->pipe) < 0) {
        connection_close(c);
        return;
    }
    if (s->served >= API_MAX_CONNECTIONS) {
        char message[96];
        snprintf(message, sizeof(message), "too many connections (the limit is %d)",
                 API_MAX_CONNECTIONS);
        send_error(c, 503, false, NULL, message);
        if (!c->closing)
            set_timer(c, TIMER_REQUEST); /* bounds how long it waits to be read */
        return;
    }
    c->counted = true;
    s->served++;
    pump(c);
}

/* Frees a handle of its own allocation: the listener, or a connection refused for memory. */
static void on_listener_closed(uv_handle_t *handle)
{
    free(handle);
}

int api_server_start(struct api_server *s, uv_loop_t *loop, int listen_fd,
                     const struct api_route *routes, size_t nroutes, void *opaque,
                     const struct log *log, struct error *err)
{
    if (!s->request_timeout_ms)
        s->request_timeout_ms = API_REQUEST_TIMEOUT_MS;
    if (!s->idle_timeout_ms)
        s->idle_timeout_ms = API_IDLE_TIMEOUT_MS;
    s->loop = loop;
    s->routes = routes;
    s->nroutes = nroutes;
    s->opaque = opaque;
    s->log = log;
    s->connections = NULL;
    s->served = 0;
    s->listener = calloc(1, sizeof(*s->listener));
    if (!s->listener)
        return error_fmt(err, -ENOMEM, "API server: out of memory");
    int r = uv_pipe_init(loop, s->listener, 0);
    if (r == 0)
        r = uv_pipe_open(s->listener, listen_fd);
    if (r < 0) {
        free(s->listener);
        s->listener = NULL;
        close(listen_fd);
        return error_fmt(err, r, "API server: using the listening socket: %s", uv_strerror(r));
    }
    s->listener->data = s;
    r = uv_listen((uv_stream_t *)s->listener, API_MAX_CONNECTIONS, on_connection);
    if (r < 0) {
        uv_close((uv_handle_t *)s->listener, on_listener_closed); /* closes listen_fd */
        s->listener = NULL;
        return error_fmt(err, r, "API server: listen: %s", uv_strerror(r));
    }
    return 0;
}

void api_server_stop(struct api_server *s)
{
    if (!s->listener)
        return;
    uv_close((uv_handle_t *)s->listener, on_listener_closed);
    s->listener = NULL;
    while (s->connections)
        connection_close(s->connections); /* unlinks it */
}

const char *api_call_method(const struct api_call *call)
{
    return call->method;
}

const char *api_call_path(const struct api_call *call)
{
    return call->path;
}

json_t *api_call_body(const struct api_call *call)
{
    return call->body;
}

void api_call_reply(struct api_call *call, int status, json_t *body)
{
    struct api_connection *c = call->connection;
    if (c) {
        c->call = NULL;
        send_response(c, status, body, NULL, call->keep_alive);
        pump(c);
    }
    json_decref(body);
    json_decref(call->body);
    free(call);
}

void api_call_error(struct api_call *call, int status, const char *fmt, ...)
{
    char message[512];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof(message), fmt, args);
    va_end(args);
    api_call_reply(call, status, error_body(message));
}
