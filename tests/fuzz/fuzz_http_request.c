/* libFuzzer target for the control API's HTTP request parser: the input (after its first byte)
 * is a client's byte stream, parsed twice: whole, and cut into pieces of the first byte's size.
 * Both must frame the same requests with the same results, and each result must be coherent. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/api/http_request.h"

#define MAX_OUTCOMES 64

/* What one request came to: its status (0 for a framed request) and a digest of its parts. */
struct outcome {
    int status;
    char text[HTTP_MAX_HEAD_BYTES + 64];
    size_t body_len;
    unsigned body_sum;
};

static struct http_request request;

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void record(struct outcome *o, enum http_parse_status status)
{
    memset(o, 0, sizeof(*o));
    if (status == HTTP_PARSE_ERROR) {
        check(request.error_status >= 400 && request.error_status <= 599);
        check(request.error[0] != '\0');
        o->status = request.error_status;
        snprintf(o->text, sizeof(o->text), "%s", request.error);
        return;
    }
    check(request.method[0] != '\0' && request.path && request.path[0] == '/');
    check(request.body_len == request.content_length);
    check(request.body_len <= HTTP_MAX_BODY_BYTES);
    check(request.version_minor == 0 || request.version_minor == 1);
    snprintf(o->text, sizeof(o->text), "%s %s %d %d", request.method, request.path,
             request.version_minor, request.keep_alive);
    o->body_len = request.body_len;
    for (size_t i = 0; i < request.body_len; i++)
        o->body_sum = o->body_sum * 31 + (uint8_t)request.body[i];
}

/* Parses the stream in pieces of `piece` bytes; returns how many outcomes it recorded. */
static size_t parse_stream(const uint8_t *data, size_t size, size_t piece, struct outcome *out)
{
    size_t count = 0, at = 0;
    http_request_reset(&request);
    while (at < size && count < MAX_OUTCOMES) {
        size_t len = size - at < piece ? size - at : piece;
        size_t used = 0;
        enum http_parse_status status =
            http_request_feed(&request, (const char *)data + at, len, &used);
        check(used <= len);
        at += used;
        if (status == HTTP_PARSE_MORE) {
            check(used == len);
            continue;
        }
        record(&out[count++], status);
        http_request_reset(&request);
        if (status == HTTP_PARSE_ERROR)
            break; /* the server closes the connection here */
    }
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct outcome whole[MAX_OUTCOMES], pieces[MAX_OUTCOMES];
    if (size < 1)
        return 0;
    size_t piece = 1 + data[0] % 64;
    size_t whole_count = parse_stream(data + 1, size - 1, size, whole);
    size_t piece_count = parse_stream(data + 1, size - 1, piece, pieces);
    check(whole_count == piece_count);
    for (size_t i = 0; i < whole_count; i++) {
        check(whole[i].status == pieces[i].status);
        check(strcmp(whole[i].text, pieces[i].text) == 0);
        check(whole[i].body_len == pieces[i].body_len && whole[i].body_sum == pieces[i].body_sum);
    }
    return 0;
}
