/* The control API's client: connect to a VM's socket, send one request, read its reply, all
 * on a non-blocking socket with poll() so a VM that does not answer cannot hang the caller. */
#include "kiln/api/api_client.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A reply larger than this is refused: the API's replies are small JSON objects. */
#define REPLY_MAX_BYTES (4 * 1024 * 1024)

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd until the deadline: 0, or -ETIMEDOUT. */
static int wait_for(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -errno;
    }
}

static int connect_to(const char *path, long long deadline, int *fd_out, struct error *err)
{
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(address.sun_path))
        return error_fmt(err, -ENAMETOOLONG, "API socket %s: path too long (limit %zu bytes)", path,
                         sizeof(address.sun_path) - 1);
    strcpy(address.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return error_fmt(err, -errno, "API socket %s: socket: %s", path, strerror(errno));
    /* A full backlog answers EAGAIN at once on a Unix socket: try again until the deadline. */
    while (connect(fd, (struct sockaddr *)&address, sizeof(address)) < 0) {
        int e = errno;
        if (e == EAGAIN && deadline - now_ms() > 0) {
            usleep(10000);
            continue;
        }
        close(fd);
        if (e == EAGAIN)
            return error_fmt(err, -ETIMEDOUT, "API socket %s: connect: timed out", path);
        return error_fmt(err, -e, "API socket %s: connect: %s%s", path, strerror(e),
                         e == ENOENT || e == ECONNREFUSED ? " (is the VM running?)" : "");
    }
    *fd_out = fd;
    return 0;
}

/* Sends everything; a peer that closes first (EPIPE) may have answered already: -EPIPE lets
 * the caller read that answer. */
static int send_all(int fd, const char *data, size_t len, long long deadline)
{
    while (len) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            int r = wait_for(fd, POLLOUT, deadline);
            if (r < 0)
                return r;
        } else {
            return n < 0 ? -errno : -EPIPE;
        }
    }
    return 0;
}

/* The head's end (just past the blank line), or NULL if it has not all arrived. */
static const char *head_end(const char *text, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (text[i] == '\n' && text[i + 1] == '\n')
            return text + i + 2;
        if (i + 3 < len && memcmp(text + i, "\r\n\r\n", 4) == 0)
            return text + i + 4;
    }
    return NULL;
}

/* Content-Length from the head, or -1 if there is none. */
static long long content_length(const char *head, const char *end)
{
    for (const char *line = head; line < end;) {
        const char *next = memchr(line, '\n', (size_t)(end - line));
        if (!next)
            break;
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            return strtoll(line + 15, NULL, 10);
        line = next + 1;
    }
    return -1;
}

struct reply_buffer {
    char *data;
    size_t len, cap;
};

/* Reads until the head and Content-Length bytes of body (or EOF without a length). */
static int read_reply(int fd, struct reply_buffer *b, long long deadline, const char **body,
                      size_t *body_len)
{
    for (;;) {
        const char *end = head_end(b->data ? b->data : "", b->len);
        if (end) {
            long long length = content_length(b->data, end);
            size_t have = b->len - (size_t)(end - b->data);
            if (length >= 0 && have >= (size_t)length) {
                *body = end;
                *body_len = (size_t)length;
                return 0;
            }
        }
        if (b->len + 4096 > b->cap) {
            if (b->cap >= REPLY_MAX_BYTES)
                return -EMSGSIZE;
            size_t cap = b->cap ? b->cap * 2 : 8192;
            char *data = realloc(b->data, cap + 1);
            if (!data)
                return -ENOMEM;
            b->data = data;
            b->cap = cap;
        }
        ssize_t n = recv(fd, b->data + b->len, b->cap - b->len, 0);
        if (n > 0) {
            b->len += (size_t)n;
            b->data[b->len] = '\0';
        } else if (n == 0) {
            if (!end)
                return -EPROTO;
            /* No Content-Length: the body runs to the end of the connection. */
            *body = end;
            *body_len = b->len - (size_t)(end - b->data);
            return content_length(b->data, end) < 0 ? 0 : -EPROTO;
        } else if (errno == EAGAIN || errno == EINTR) {
            int r = wait_for(fd, POLLIN, deadline);
            if (r < 0)
                return r;
        } else {
            return -errno;
        }
    }
}

/* How much of text to quote in a message: its first line, at most max bytes. */
static int first_line_length(const char *text, size_t max)
{
    size_t len = strcspn(text, "\r\n");
    return (int)(len < max ? len : max);
}

static int parse_reply(const char *path, const char *text, const char *body, size_t body_len,
                       int *status, json_t **reply, struct error *err)
{
    int code = 0;
    if (sscanf(text, "HTTP/1.%*1[01] %3d", &code) != 1 || code < 100 || code > 599)
        return error_fmt(err, -EPROTO, "API socket %s: the reply is not HTTP (it starts '%.*s')",
                         path, first_line_length(text, 20), text);
    *status = code;
    *reply = NULL;
    if (body_len == 0)
        return 0;
    json_error_t json_error;
    *reply = json_loadb(body, body_len, JSON_DECODE_ANY, &json_error);
    if (!*reply)
        return error_fmt(err, -EPROTO,
                         "API socket %s: reply body: invalid JSON at line %d column %d: %s", path,
                         json_error.line, json_error.column, json_error.text);
    return 0;
}

int api_client_request(const char *socket_path, const char *method, const char *path, json_t *body,
                       int timeout_ms, int *status, json_t **reply, struct error *err)
{
    long long deadline = now_ms() + timeout_ms;
    *reply = NULL;
    char *body_text = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (body && !body_text)
        return error_fmt(err, -ENOMEM, "API request: encoding the body failed");
    size_t body_len = body_text ? strlen(body_text) : 0;
    size_t request_len = strlen(method) + strlen(path) + body_len + 200;
    char *request = malloc(request_len);
    if (!request) {
        free(body_text);
        return error_fmt(err, -ENOMEM, "API request: out of memory");
    }
    int n = snprintf(request, request_len,
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%s"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, body_text ? "Content-Type: application/json\r\n" : "", body_len,
                     body_text ? body_text : "");
    free(body_text);

    int fd = -1;
    int r = connect_to(socket_path, deadline, &fd, err);
    if (r < 0) {
        free(request);
        return r;
    }
    int sent = send_all(fd, request, (size_t)n, deadline);
    free(request);
    if (sent == -ETIMEDOUT) {
        close(fd);
        return error_fmt(err, -ETIMEDOUT,
                         "API socket %s: sending the request: timed out after "
                         "%d ms",
                         socket_path, timeout_ms);
    }
    /* Other send errors: the server may have answered and closed (413, 400): read on. */
    struct reply_buffer buffer = {0};
    const char *reply_body = NULL;
    size_t reply_body_len = 0;
    r = read_reply(fd, &buffer, deadline, &reply_body, &reply_body_len);
    close(fd);
    if (r == 0)
        r = parse_reply(socket_path, buffer.data, reply_body, reply_body_len, status, reply, err);
    else if (r == -ETIMEDOUT)
        error_fmt(err, r, "API socket %s: no reply within %d ms", socket_path, timeout_ms);
    else if (r == -EPROTO && buffer.len && strncmp(buffer.data, "HTTP/", 5) != 0)
        error_fmt(err, r, "API socket %s: the reply is not HTTP (it starts '%.*s')", socket_path,
                  first_line_length(buffer.data, 20), buffer.data);
    else if (r == -EPROTO)
        error_fmt(err, r, "API socket %s: the connection closed before a whole HTTP reply",
                  socket_path);
    else if (sent < 0 && buffer.len == 0)
        error_fmt(err, sent, "API socket %s: sending the request: %s", socket_path,
                  strerror(-sent));
    else
        error_fmt(err, r, "API socket %s: reading the reply: %s", socket_path, strerror(-r));
    free(buffer.data);
    return r;
}
