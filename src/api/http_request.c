/* The control API's HTTP/1.1 request framing, by hand: the request line, the headers the API
 * needs (Content-Length, Connection, Transfer-Encoding refused) and a bounded body. */
#include "kiln/api/http_request.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void http_request_reset(struct http_request *request)
{
    free(request->body);
    /* The head buffer is overwritten as the next request arrives; clear only the rest. */
    memset(request, 0, offsetof(struct http_request, head));
    request->head[0] = '\0';
}

static enum http_parse_status fail(struct http_request *request, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum http_parse_status fail(struct http_request *request, int status, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(request->error, sizeof(request->error), fmt, args);
    va_end(args);
    request->error_status = status;
    return HTTP_PARSE_ERROR;
}

/* RFC 9110's token characters: what a method and a header name are made of. */
static bool is_token_char(char c)
{
    return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static char *trim(char *text)
{
    while (*text == ' ' || *text == '\t')
        text++;
    size_t len = strlen(text);
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        text[--len] = '\0';
    return text;
}

/* "close" or "keep-alive" among the comma-separated options of a Connection header. */
static void apply_connection(struct http_request *request, char *value)
{
    for (char *save = NULL, *option = strtok_r(value, ",", &save); option;
         option = strtok_r(NULL, ",", &save)) {
        option = trim(option);
        if (strcasecmp(option, "close") == 0)
            request->keep_alive = false;
        else if (strcasecmp(option, "keep-alive") == 0)
            request->keep_alive = true;
    }
}

static enum http_parse_status parse_content_length(struct http_request *request, const char *value)
{
    if (!*value || strspn(value, "0123456789") != strlen(value))
        return fail(request, 400, "Content-Length: '%.40s' is not a number of bytes", value);
    size_t length = 0;
    for (const char *digit = value; *digit; digit++) {
        length = length * 10 + (size_t)(*digit - '0');
        if (length > HTTP_MAX_BODY_BYTES)
            return fail(request, 413, "request body: more than the limit of %d bytes",
                        HTTP_MAX_BODY_BYTES);
    }
    if (request->has_content_length && request->content_length != length)
        return fail(request, 400, "Content-Length: two different values");
    request->content_length = length;
    request->has_content_length = true;
    return HTTP_PARSE_MORE;
}

static enum http_parse_status parse_header(struct http_request *request, char *line)
{
    if (*line == ' ' || *line == '\t')
        return fail(request, 400, "header: a line folded onto the one before is not accepted");
    char *colon = strchr(line, ':');
    if (!colon)
        return fail(request, 400, "header '%.40s': no ':' (expected Name: value)", line);
    *colon = '\0';
    if (colon == line)
        return fail(request, 400, "header: empty name before ':'");
    for (const char *c = line; *c; c++)
        if (!is_token_char(*c))
            return fail(request, 400, "header '%.40s': invalid character in its name", line);
    char *value = trim(colon + 1);
    for (const char *c = value; *c; c++)
        if ((unsigned char)*c < 0x20 && *c != '\t')
            return fail(request, 400, "header %.40s: control character in its value", line);
    if (strcasecmp(line, "Content-Length") == 0)
        return parse_content_length(request, value);
    if (strcasecmp(line, "Transfer-Encoding") == 0)
        return fail(request, 501,
                    "Transfer-Encoding is not supported (send the body with Content-Length)");
    if (strcasecmp(line, "Connection") == 0)
        apply_connection(request, value);
    return HTTP_PARSE_MORE;
}

/* METHOD SP PATH SP HTTP/1.x */
static enum http_parse_status parse_request_line(struct http_request *request, char *line)
{
    char *space = strchr(line, ' ');
    if (!space)
        return fail(request, 400, "request line: expected METHOD PATH HTTP/1.1");
    size_t method_len = (size_t)(space - line);
    if (method_len == 0 || method_len > HTTP_MAX_METHOD_BYTES)
        return fail(request, 400, "request line: method of %zu characters (expected 1 to %d)",
                    method_len, HTTP_MAX_METHOD_BYTES);
    for (size_t i = 0; i < method_len; i++)
        if (!is_token_char(line[i]))
            return fail(request, 400, "request line: invalid character in the method");
    memcpy(request->method, line, method_len);
    request->method[method_len] = '\0';

    char *path = space + 1;
    space = strchr(path, ' ');
    if (!space)
        return fail(request, 400, "request line: expected METHOD PATH HTTP/1.1");
    *space = '\0';
    if (path[0] != '/')
        return fail(request, 400, "request line: path '%.40s' does not start with '/'", path);
    for (const char *c = path; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return fail(request, 400, "request line: invalid character in the path");
    request->path = path;

    const char *version = space + 1;
    if (strncmp(version, "HTTP/", 5) != 0 || !isdigit((unsigned char)version[5]) ||
        version[6] != '.' || !isdigit((unsigned char)version[7]) || version[8] != '\0')
        return fail(request, 400, "request line: version '%.20s' (expected HTTP/1.0 or HTTP/1.1)",
                    version);
    if (version[5] != '1' || (version[7] != '0' && version[7] != '1'))
        return fail(request, 505, "HTTP version %.3s is not supported (expected 1.0 or 1.1)",
                    version + 5);
    request->version_minor = version[7] - '0';
    request->keep_alive = request->version_minor == 1;
    return HTTP_PARSE_MORE;
}

/* The whole head has arrived: split it into lines (CRLF or a bare LF) and parse each. */
static enum http_parse_status parse_head(struct http_request *request)
{
    char *line = request->head;
    bool first = true;
    while (*line) {
        char *end = strchr(line, '\n');
        *end = '\0';
        if (end > line && end[-1] == '\r')
            end[-1] = '\0';
        if (*line == '\0')
            break; /* the blank line that ends the head */
        for (const char *c = line; *c; c++)
            if (*c == '\r')
                return fail(request, 400, "a lone CR in the request head");
        enum http_parse_status status =
            first ? parse_request_line(request, line) : parse_header(request, line);
        if (status != HTTP_PARSE_MORE)
            return status;
        first = false;
        line = end + 1;
    }
    if (request->content_length) {
        request->body = malloc(request->content_length + 1);
        if (!request->body)
            return fail(request, 500, "out of memory for the request body");
    }
    return HTTP_PARSE_MORE;
}

enum http_parse_status http_request_feed(struct http_request *request, const char *data, size_t len,
                                         size_t *used)
{
    size_t at = 0;
    while (at < len && !request->head_done) {
        char c = data[at++];
        /* Blank lines before a request are ignored (RFC 9112 2.2): a client's stray CRLF
         * after the previous body. */
        if (!request->started && (c == '\r' || c == '\n'))
            continue;
        request->started = true;
        if (c == '\0') {
            *used = at;
            return fail(request, 400, "a NUL byte in the request head");
        }
        if (request->head_len == HTTP_MAX_HEAD_BYTES) {
            *used = at;
            return fail(request, 431, "request head: more than the limit of %d bytes",
                        HTTP_MAX_HEAD_BYTES);
        }
        request->head[request->head_len++] = c;
        request->head[request->head_len] = '\0';
        if (c != '\n')
            continue;
        const char *line = request->head + request->line_start;
        size_t line_len = request->head_len - request->line_start;
        request->line_start = request->head_len;
        if (line_len == 1 || (line_len == 2 && line[0] == '\r')) {
            request->head_done = true;
            enum http_parse_status status = parse_head(request);
            if (status != HTTP_PARSE_MORE) {
                *used = at;
                return status;
            }
        }
    }
    if (request->head_done) {
        size_t want = request->content_length - request->body_len;
        size_t take = len - at < want ? len - at : want;
        if (take) {
            memcpy(request->body + request->body_len, data + at, take);
            request->body_len += take;
            at += take;
        }
        if (request->body_len == request->content_length) {
            if (request->body)
                request->body[request->body_len] = '\0';
            *used = at;
            return HTTP_PARSE_DONE;
        }
    }
    *used = at;
    return HTTP_PARSE_MORE;
}

const char *http_status_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}
