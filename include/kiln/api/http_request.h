/* The control API's HTTP/1.1 request parser: bytes in, one framed request out, or the status
 * and message of what was wrong. No I/O and no libuv, so it can be unit-tested and fuzzed. */
#ifndef KILN_API_HTTP_REQUEST_H
#define KILN_API_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

/* The request line and headers together, CRLFs included (past it: 431). */
#define HTTP_MAX_HEAD_BYTES 8192
/* A body's Content-Length (past it: 413). */
#define HTTP_MAX_BODY_BYTES   65536
#define HTTP_MAX_METHOD_BYTES 15

enum http_parse_status {
    HTTP_PARSE_MORE,  /* every byte given was used; the request is not complete yet */
    HTTP_PARSE_DONE,  /* a whole request; bytes after it (pipelining) were not used */
    HTTP_PARSE_ERROR, /* error_status and error say what was wrong; the connection must close */
};

struct http_request {
    /* Filled as the request arrives (read them once the parse is DONE). */
    char method[HTTP_MAX_METHOD_BYTES + 1];
    const char *path;  /* points into head; NUL-terminated */
    int version_minor; /* HTTP/1.0 or HTTP/1.1 */
    bool keep_alive;   /* HTTP/1.1 unless "Connection: close"; HTTP/1.0 only if asked */
    char *body;        /* malloc'd, body_len bytes plus a NUL; NULL without a body */
    size_t body_len;

    /* Set when the parse ends in HTTP_PARSE_ERROR. */
    int error_status;
    char error[160];

    /* The parser's own state. */
    bool started; /* a byte of this request has arrived (not leading blank lines) */
    bool head_done;
    size_t head_len;
    size_t line_start; /* where the head's current line begins */
    size_t content_length;
    bool has_content_length;
    char head[HTTP_MAX_HEAD_BYTES + 1];
};

/* Ready for the first (or next) request; frees the last request's body. */
void http_request_reset(struct http_request *request);

/* Feeds len bytes; *used gets how many were taken (all of them unless DONE). After DONE or
 * ERROR, call http_request_reset before feeding the next request. */
enum http_parse_status http_request_feed(struct http_request *request, const char *data, size_t len,
                                         size_t *used);

/* The usual reason phrase of a status ("Not Found"), "Unknown" for others. */
const char *http_status_reason(int status);

#endif
