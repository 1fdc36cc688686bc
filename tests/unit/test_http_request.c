/* The control API's HTTP request parser: good requests whole and one byte at a time, each
 * limit (head 431, body 413), each malformed form (400, 501, 505), keep-alive rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/api/http_request.h"

static struct http_request *new_request(void)
{
    struct http_request *request = calloc(1, sizeof(*request));
    assert_non_null(request);
    return request;
}

static void free_request(struct http_request *request)
{
    http_request_reset(request);
    free(request);
}

/* Feeds text whole; returns the status and sets *used. */
static enum http_parse_status feed(struct http_request *request, const char *text, size_t *used)
{
    return http_request_feed(request, text, strlen(text), used);
}

static void test_get_without_body(void **state)
{
    struct http_request *r = new_request();
    const char *text = "GET /vm HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t used = 0;
    assert_int_equal(feed(r, text, &used), HTTP_PARSE_DONE);
    assert_int_equal(used, strlen(text));
    assert_string_equal(r->method, "GET");
    assert_string_equal(r->path, "/vm");
    assert_int_equal(r->version_minor, 1);
    assert_true(r->keep_alive);
    assert_null(r->body);
    assert_int_equal(r->body_len, 0);
    free_request(r);
}

static void test_put_with_body_byte_by_byte(void **state)
{
    const char *text = "PUT /vm/pause HTTP/1.1\r\ncontent-length: 13\r\n\r\n{\"a\": [1, 2]}";
    struct http_request *r = new_request();
    size_t len = strlen(text);
    for (size_t i = 0; i < len; i++) {
        size_t used = 0;
        enum http_parse_status status = http_request_feed(r, text + i, 1, &used);
        assert_int_equal(used, 1);
        assert_int_equal(status, i + 1 == len ? HTTP_PARSE_DONE : HTTP_PARSE_MORE);
    }
    assert_string_equal(r->method, "PUT");
    assert_string_equal(r->path, "/vm/pause");
    assert_int_equal(r->body_len, 13);
    assert_string_equal(r->body, "{\"a\": [1, 2]}");
    free_request(r);
}

static void test_pipelined_requests_leave_the_rest(void **state)
{
    const char *first = "PUT /a HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
    const char *second = "GET /b HTTP/1.1\n\n"; /* bare LFs are taken too */
    char both[256];
    snprintf(both, sizeof(both), "%s%s", first, second);
    struct http_request *r = new_request();
    size_t used = 0;
    assert_int_equal(feed(r, both, &used), HTTP_PARSE_DONE);
    assert_int_equal(used, strlen(first));
    assert_string_equal(r->body, "{}");
    http_request_reset(r);
    assert_int_equal(feed(r, both + used, &used), HTTP_PARSE_DONE);
    assert_string_equal(r->path, "/b");
    assert_string_equal(r->method, "GET");
    free_request(r);
}

static void test_connection_header_and_http_1_0(void **state)
{
    struct http_request *r = new_request();
    size_t used;
    assert_int_equal(feed(r, "GET / HTTP/1.1\r\nConnection: Close\r\n\r\n", &used),
                     HTTP_PARSE_DONE);
    assert_false(r->keep_alive);
    http_request_reset(r);
    assert_int_equal(feed(r, "GET / HTTP/1.0\r\n\r\n", &used), HTTP_PARSE_DONE);
    assert_int_equal(r->version_minor, 0);
    assert_false(r->keep_alive);
    http_request_reset(r);
    assert_int_equal(feed(r, "GET / HTTP/1.0\r\nConnection: foo, keep-alive\r\n\r\n", &used),
                     HTTP_PARSE_DONE);
    assert_true(r->keep_alive);
    free_request(r);
}

static void test_leading_blank_lines_are_skipped(void **state)
{
    struct http_request *r = new_request();
    size_t used;
    assert_int_equal(feed(r, "\r\n\r\nGET /vm HTTP/1.1\r\n\r\n", &used), HTTP_PARSE_DONE);
    assert_string_equal(r->path, "/vm");
    free_request(r);
}

/* Expects the text to fail with status and an error containing `words`. */
static void expect_error(const char *text, size_t len, int status, const char *words)
{
    struct http_request *r = new_request();
    size_t used = 0;
    assert_int_equal(http_request_feed(r, text, len, &used), HTTP_PARSE_ERROR);
    assert_int_equal(r->error_status, status);
    if (!strstr(r->error, words))
        fail_msg("error '%s' does not contain '%s'", r->error, words);
    free_request(r);
}

static void test_head_limit(void **state)
{
    size_t len = HTTP_MAX_HEAD_BYTES + 100;
    char *text = malloc(len);
    assert_non_null(text);
    memset(text, 'a', len);
    memcpy(text, "GET / HTTP/1.1\r\nX-Long: ", 24);
    expect_error(text, len, 431, "8192");

    /* Exactly at the limit is fine. */
    const char *start = "GET / HTTP/1.1\r\nX: ";
    size_t fill = HTTP_MAX_HEAD_BYTES - strlen(start) - 4;
    memcpy(text, start, strlen(start));
    memset(text + strlen(start), 'b', fill);
    memcpy(text + strlen(start) + fill, "\r\n\r\n", 4);
    struct http_request *r = new_request();
    size_t used;
    assert_int_equal(http_request_feed(r, text, HTTP_MAX_HEAD_BYTES, &used), HTTP_PARSE_DONE);
    free_request(r);

    /* One byte more is not: the head's last LF would be byte 8193. */
    text[strlen(start) + fill] = 'b';
    memcpy(text + strlen(start) + fill + 1, "\r\n\r\n", 4);
    expect_error(text, HTTP_MAX_HEAD_BYTES + 1, 431, "more than the limit of 8192 bytes");
    free(text);
}

static void test_body_limit(void **state)
{
    const char *over = "PUT /a HTTP/1.1\r\nContent-Length: 65537\r\n\r\n";
    expect_error(over, strlen(over), 413, "65536");
    const char *huge = "PUT /a HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n";
    expect_error(huge, strlen(huge), 413, "limit");
    const char *at = "PUT /a HTTP/1.1\r\nContent-Length: 65536\r\n\r\n";
    struct http_request *r = new_request();
    size_t used;
    assert_int_equal(feed(r, at, &used), HTTP_PARSE_MORE);
    free_request(r);
}

static void test_malformed(void **state)
{
    struct {
        const char *text;
        int status;
        const char *words;
    } cases[] = {
        {"GET\r\n\r\n", 400, "expected METHOD PATH HTTP/1.1"},
        {"GET /vm\r\n\r\n", 400, "expected METHOD PATH HTTP/1.1"},
        {"GET vm HTTP/1.1\r\n\r\n", 400, "does not start with '/'"},
        {"GET /vm HTTP/1.1 extra\r\n\r\n", 400, "version"},
        {"GET /vm HTTX/1.1\r\n\r\n", 400, "version"},
        {"GET /vm HTTP/2.0\r\n\r\n", 505, "2.0"},
        {"GET /vm HTTP/1.9\r\n\r\n", 505, "1.9"},
        {" GET /vm HTTP/1.1\r\n\r\n", 400, "method"},
        {"G(T /vm HTTP/1.1\r\n\r\n", 400, "method"},
        {"AVERYVERYLONGMETHOD / HTTP/1.1\r\n\r\n", 400, "method"},
        {"GET /v\x01m HTTP/1.1\r\n\r\n", 400, "path"},
        {"GET /vm HTTP/1.1\r\nNoColon\r\n\r\n", 400, "no ':'"},
        {"GET /vm HTTP/1.1\r\n: empty\r\n\r\n", 400, "empty name"},
        {"GET /vm HTTP/1.1\r\nBad Name: x\r\n\r\n", 400, "name"},
        {"GET /vm HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400, "folded"},
        {"GET /vm HTTP/1.1\r\nA: b\x01\r\n\r\n", 400, "control character"},
        {"GET /vm HTTP/1.1\rX\r\n\r\n", 400, "lone CR"},
        {"PUT /vm HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "Content-Length"},
        {"PUT /vm HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400, "Content-Length"},
        {"PUT /vm HTTP/1.1\r\nContent-Length:\r\n\r\n", 400, "Content-Length"},
        {"PUT /vm HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, "two"},
        {"PUT /vm HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501, "Content-Length"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i].text, strlen(cases[i].text), cases[i].status, cases[i].words);
    expect_error("GET /\0 HTTP/1.1\r\n\r\n", 20, 400, "NUL");
}

static void test_same_content_length_twice_is_fine(void **state)
{
    struct http_request *r = new_request();
    size_t used;
    assert_int_equal(
        feed(r, "PUT /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", &used),
        HTTP_PARSE_DONE);
    assert_string_equal(r->body, "x");
    free_request(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_without_body),
        cmocka_unit_test(test_put_with_body_byte_by_byte),
        cmocka_unit_test(test_pipelined_requests_leave_the_rest),
        cmocka_unit_test(test_connection_header_and_http_1_0),
        cmocka_unit_test(test_leading_blank_lines_are_skipped),
        cmocka_unit_test(test_head_limit),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_same_content_length_twice_is_fine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
