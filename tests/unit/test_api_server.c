/* The control API's server and client together: a server on a private libuv loop in a thread,
 * a few dummy routes, and api_client_request or raw sockets as the clients (200, 404, 405 and
 * Allow, bad JSON, 413, 408, 503, deferred replies, clients that leave, stopping with a call
 * held); and the run folder and socket binding rules. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/api/api_client.h"
#include "kiln/api/api_server.h"
#include "kiln/api/api_socket.h"
#include "kiln/api/http_request.h"

struct fixture {
    char dir[64];
    char socket_path[128];
    uv_loop_t loop;
    uv_async_t wake; /* the test thread's way to run fixture_on_loop work on the loop */
    struct api_server server;
    struct log log;
    pthread_t thread;
    atomic_bool stop_requested;   /* api_server_stop, the loop going on */
    atomic_bool finish_requested; /* the end of the test: stop and let the loop end */
    bool server_stopped;          /* touched only on the loop thread */
    atomic_bool reply_held_requested;
    atomic_int held_calls;
    atomic_bool held_replied;
    struct api_call *held; /* /vm/hold's call, touched only on the loop thread */
};

struct deferred {
    uv_timer_t timer;
    struct api_call *call;
};

static void handle_get_vm(void *opaque, struct api_call *call)
{
    api_call_reply(call, 200, json_pack("{s:s, s:i}", "name", "t", "vcpus", 2));
}

static void handle_echo(void *opaque, struct api_call *call)
{
    json_t *body = api_call_body(call);
    api_call_reply(call, 200, body ? json_incref(body) : NULL);
}

static void on_deferred_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void on_deferred_timer(uv_timer_t *timer)
{
    struct deferred *d = timer->data;
    api_call_reply(d->call, 200, json_pack("{s:b}", "later", 1));
    uv_close((uv_handle_t *)&d->timer, on_deferred_closed);
}

/* Replies 100 ms later, from a timer: as a snapshot waiting for I/O would. */
static void handle_later(void *opaque, struct api_call *call)
{
    struct fixture *f = opaque;
    struct deferred *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    d->call = call;
    uv_timer_init(&f->loop, &d->timer);
    d->timer.data = d;
    uv_timer_start(&d->timer, on_deferred_timer, 100, 0);
}

/* Keeps the call until the test asks for the reply. */
static void handle_hold(void *opaque, struct api_call *call)
{
    struct fixture *f = opaque;
    f->held = call;
    atomic_fetch_add(&f->held_calls, 1);
}

static const struct api_route routes[] = {
    {"GET", "/vm", handle_get_vm},      {"PUT", "/vm/echo", handle_echo},
    {"PATCH", "/vm/echo", handle_echo}, {"PUT", "/vm/later", handle_later},
    {"PUT", "/vm/hold", handle_hold},
};

static void on_wake(uv_async_t *async)
{
    struct fixture *f = async->data;
    bool finish = atomic_load(&f->finish_requested);
    if ((atomic_load(&f->stop_requested) || finish) && !f->server_stopped) {
        api_server_stop(&f->server);
        f->server_stopped = true;
    }
    if (atomic_load(&f->reply_held_requested) && f->held) {
        api_call_reply(f->held, 200, json_pack("{s:s}", "held", "done"));
        f->held = NULL;
        atomic_store(&f->held_replied, true);
    }
    if (finish)
        uv_close((uv_handle_t *)&f->wake, NULL);
}

static void *loop_thread(void *opaque)
{
    struct fixture *f = opaque;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int setup(void **state)
{
    signal(SIGPIPE, SIG_IGN); /* as kiln's main() does */
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/kiln-api-test.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->socket_path, sizeof(f->socket_path), "%s/vm.sock", f->dir);
    log_init(&f->log, LOG_ERROR);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_async_init(&f->loop, &f->wake, on_wake);
    f->wake.data = f;
    f->server.request_timeout_ms = 300; /* a fast 408 */
    struct error err = {{0}};
    int fd = -1;
    assert_int_equal(api_socket_bind(f->socket_path, (uid_t)-1, (gid_t)-1, &fd, &err), 0);
    if (api_server_start(&f->server, &f->loop, fd, routes, sizeof(routes) / sizeof(routes[0]), f,
                         &f->log, &err) < 0)
        fail_msg("api_server_start: %s", err.msg);
    assert_int_equal(pthread_create(&f->thread, NULL, loop_thread, f), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    atomic_store(&f->finish_requested, true);
    uv_async_send(&f->wake);
    pthread_join(f->thread, NULL);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    unlink(f->socket_path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static int raw_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strcpy(address.sun_path, path);
    struct timeval timeout = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    if (connect(fd, (struct sockaddr *)&address, sizeof(address)) < 0)
        fail_msg("connect %s: %s", path, strerror(errno));
    return fd;
}

static void raw_send(int fd, const char *text)
{
    assert_int_equal(send(fd, text, strlen(text), MSG_NOSIGNAL), (ssize_t)strlen(text));
}

/* Everything the server sends until it closes (or 3 s pass), NUL-terminated. */
static void raw_read_all(int fd, char *out, size_t len)
{
    size_t used = 0;
    ssize_t n;
    while (used + 1 < len && (n = recv(fd, out + used, len - 1 - used, 0)) > 0)
        used += (size_t)n;
    out[used] = '\0';
}

/* One reply of a keep-alive connection: reads until its head and Content-Length body. */
static void raw_read_one(int fd, char *out, size_t len)
{
    size_t used = 0;
    for (;;) {
        out[used] = '\0';
        char *end = strstr(out, "\r\n\r\n");
        char *length = strstr(out, "Content-Length: ");
        if (end && length && used >= (size_t)(end + 4 - out) + strtoul(length + 16, NULL, 10))
            return;
        ssize_t n = recv(fd, out + used, len - 1 - used, 0);
        if (n <= 0)
            fail_msg("the connection ended before a whole reply: '%s'", out);
        used += (size_t)n;
    }
}

static void request(struct fixture *f, const char *method, const char *path, json_t *body,
                    int *status, json_t **reply)
{
    struct error err = {{0}};
    if (api_client_request(f->socket_path, method, path, body, 3000, status, reply, &err) < 0)
        fail_msg("api_client_request %s %s: %s", method, path, err.msg);
}

static const char *error_of(json_t *reply)
{
    const char *text = json_string_value(json_object_get(reply, "error"));
    return text ? text : "";
}

static void test_get_200_with_json(void **state)
{
    struct fixture *f = *state;
    int status = 0;
    json_t *reply = NULL;
    request(f, "GET", "/vm", NULL, &status, &reply);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(reply, "name")), "t");
    assert_int_equal(json_integer_value(json_object_get(reply, "vcpus")), 2);
    json_decref(reply);

    json_t *body = json_pack("{s:[i,i]}", "list", 1, 2);
    request(f, "PATCH", "/vm/echo", body, &status, &reply);
    assert_int_equal(status, 200);
    assert_true(json_equal(reply, body));
    json_decref(reply);
    json_decref(body);
}

static void test_unknown_path_404(void **state)
{
    struct fixture *f = *state;
    int status = 0;
    json_t *reply = NULL;
    request(f, "GET", "/nope", NULL, &status, &reply);
    assert_int_equal(status, 404);
    assert_non_null(strstr(error_of(reply), "GET /nope: no such endpoint"));
    json_decref(reply);
}

static void test_wrong_method_405_with_allow(void **state)
{
    struct fixture *f = *state;
    int fd = raw_connect(f->socket_path);
    raw_send(fd, "DELETE /vm/echo HTTP/1.1\r\nConnection: close\r\n\r\n");
    char reply[2048];
    raw_read_all(fd, reply, sizeof(reply));
    close(fd);
    assert_non_null(strstr(reply, "HTTP/1.1 405 Method Not Allowed\r\n"));
    assert_non_null(strstr(reply, "\r\nAllow: PUT, PATCH\r\n"));
    assert_non_null(strstr(reply, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(reply, "method not allowed"));
}

static void test_bad_json_400(void **state)
{
    struct fixture *f = *state;
    int fd = raw_connect(f->socket_path);
    raw_send(fd, "PUT /vm/echo HTTP/1.1\r\nContent-Length: 9\r\n\r\n{\"a\": 1,}");
    char reply[2048];
    raw_read_one(fd, reply, sizeof(reply));
    assert_non_null(strstr(reply, "HTTP/1.1 400 Bad Request\r\n"));
    assert_non_null(strstr(reply, "request body: invalid JSON at line 1 column 9"));
    /* Not a framing error: the connection goes on. */
    raw_send(fd, "GET /vm HTTP/1.1\r\n\r\n");
    raw_read_one(fd, reply, sizeof(reply));
    assert_non_null(strstr(reply, "HTTP/1.1 200 OK\r\n"));
    close(fd);
}

static void test_malformed_request_400_then_close(void **state)
{
    struct fixture *f = *state;
    int fd = raw_connect(f->socket_path);
    raw_send(fd, "GET /vm HTTP/1.1\r\nNoColon\r\n\r\nGET /vm HTTP/1.1\r\n\r\n");
    char reply[2048];
    raw_read_all(fd, reply, sizeof(reply)); /* returns because the server closes */
    close(fd);
    assert_non_null(strstr(reply, "HTTP/1.1 400 Bad Request\r\n"));
    assert_non_null(strstr(reply, "no ':'"));
    assert_non_null(strstr(reply, "Connection: close\r\n"));
    assert_null(strstr(reply, "200 OK")); /* nothing after a framing error is served */
}

static void test_error_quoting_bytes_that_are_not_utf8(void **state)
{
    struct fixture *f = *state;
    int fd = raw_connect(f->socket_path);
    raw_send(fd, "GET /vm HTTP/1.1\r\n\xff\xfe broken\r\n\r\n");
    char reply[2048];
    raw_read_all(fd, reply, sizeof(reply));
    close(fd);
    assert_non_null(strstr(reply, "HTTP/1.1 400 Bad Request\r\n"));
    assert_non_null(strstr(reply, "{\"error\":\"header '?? broken': no ':'"));
}

static void test_big_body_413(void **state)
{
    struct fixture *f = *state;
    size_t len = HTTP_MAX_BODY_BYTES + 1000;
    char *text = malloc(len + 1);
    assert_non_null(text);
    memset(text, 'x', len);
    text[len] = '\0';
    json_t *body = json_string(text);
    free(text);
    int status = 0;
    json_t *reply = NULL;
    request(f, "PUT", "/vm/echo", body, &status, &reply);
    json_decref(body);
    assert_int_equal(status, 413);
    assert_non_null(strstr(error_of(reply), "65536"));
    json_decref(reply);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_slow_client_408(void **state)
{
    struct fixture *f = *state;
    int fd = raw_connect(f->socket_path);
    long long start = now_ms();
    raw_send(fd, "PUT /vm/echo HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"a\"");
    char reply[2048];
    raw_read_all(fd, reply, sizeof(reply));
    long long took = now_ms() - start;
    close(fd);
    assert_non_null(strstr(reply, "HTTP/1.1 408 Request Timeout\r\n"));
    assert_non_null(strstr(reply, "within 300 ms"));
    assert_true(took >= 250 && took < 2500);
}

static void test_17th_connection_503(void **state)
{
    struct fixture *f = *state;
    int fds[API_MAX_CONNECTIONS];
    char reply[2048];
    for (int i = 0; i < API_MAX_CONNECTIONS; i++) {
        fds[i] = raw_connect(f->socket_path);
        raw_send(fds[i], "GET /vm HTTP/1.1\r\n\r\n"); /* served: it is counted */
        raw_read_one(fds[i], reply, sizeof(reply));
        assert_non_null(strstr(reply, "200 OK"));
    }
    int status = 0;
    json_t *json = NULL;
    request(f, "GET", "/vm", NULL, &status, &json);
    assert_int_equal(status, 503);
    assert_non_null(strstr(error_of(json), "too many connections (the limit is 16)"));
    json_decref(json);

    /* One leaves: its place is free again (once the loop has seen it go). */
    close(fds[0]);
    for (int attempt = 0; attempt < 100; attempt++) {
        request(f, "GET", "/vm", NULL, &status, &json);
        json_decref(json);
        if (status == 200)
            break;
        usleep(10000);
    }
    assert_int_equal(status, 200);
    for (int i = 1; i < API_MAX_CONNECTIONS; i++)
        close(fds[i]);
}

static void test_deferred_reply(void **state)
{
    struct fixture *f = *state;
    int status = 0;
    json_t *reply = NULL;
    long long start = now_ms();
    request(f, "PUT", "/vm/later", NULL, &status, &reply);
    assert_true(now_ms() - start >= 90);
    assert_int_equal(status, 200);
    assert_true(json_is_true(json_object_get(reply, "later")));
    json_decref(reply);
}

static void test_client_leaves_before_deferred_reply(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 3; i++) {
        int fd = raw_connect(f->socket_path);
        raw_send(fd, "PUT /vm/later HTTP/1.1\r\n\r\n");
        if (i == 1)
            shutdown(fd, SHUT_WR); /* half-closed: still gets its reply */
        else
            close(fd);
        if (i == 1) {
            char reply[2048];
            raw_read_all(fd, reply, sizeof(reply));
            assert_non_null(strstr(reply, "\"later\":true"));
            close(fd);
        }
    }
    usleep(250000); /* the timers reply to connections that are gone */
    int status = 0;
    json_t *reply = NULL;
    request(f, "GET", "/vm", NULL, &status, &reply);
    assert_int_equal(status, 200);
    json_decref(reply);
}

static void test_pipelined_replies_in_order(void **state)
{
    struct fixture *f = *state;
    int fd = raw_connect(f->socket_path);
    raw_send(fd, "PUT /vm/later HTTP/1.1\r\n\r\nGET /vm HTTP/1.1\r\nConnection: close\r\n\r\n");
    char reply[4096];
    raw_read_all(fd, reply, sizeof(reply));
    close(fd);
    char *later = strstr(reply, "\"later\":true");
    char *name = strstr(reply, "\"name\":\"t\"");
    assert_non_null(later);
    assert_non_null(name);
    assert_true(later < name);
}

static void test_stop_while_a_call_is_held(void **state)
{
    struct fixture *f = *state;
    int fd = raw_connect(f->socket_path);
    raw_send(fd, "PUT /vm/hold HTTP/1.1\r\n\r\n");
    for (int i = 0; i < 300 && atomic_load(&f->held_calls) == 0; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&f->held_calls), 1);
    /* The server stops: the connection closes with no reply. */
    atomic_store(&f->stop_requested, true);
    uv_async_send(&f->wake);
    char reply[256];
    raw_read_all(fd, reply, sizeof(reply));
    assert_string_equal(reply, "");
    close(fd);
    /* Well after the loop has freed the connection, the handler replies. */
    usleep(100000);
    atomic_store(&f->reply_held_requested, true);
    uv_async_send(&f->wake);
    for (int i = 0; i < 300 && !atomic_load(&f->held_replied); i++)
        usleep(10000);
    assert_true(atomic_load(&f->held_replied));
}

/* The held call replied to while the server runs: the client gets it. */
static void test_reply_then_stop(void **state)
{
    struct fixture *f = *state;
    int fd = raw_connect(f->socket_path);
    raw_send(fd, "PUT /vm/hold HTTP/1.1\r\n\r\n");
    for (int i = 0; i < 300 && atomic_load(&f->held_calls) == 0; i++)
        usleep(10000);
    atomic_store(&f->reply_held_requested, true);
    uv_async_send(&f->wake);
    char reply[2048];
    raw_read_one(fd, reply, sizeof(reply));
    assert_non_null(strstr(reply, "\"held\":\"done\""));
    close(fd);
}

static void test_missing_socket(void **state)
{
    struct error err = {{0}};
    int status = 0;
    json_t *reply = NULL;
    int r = api_client_request("/tmp/kiln-no-such-dir/x.sock", "GET", "/vm", NULL, 500, &status,
                               &reply, &err);
    assert_int_equal(r, -ENOENT);
    assert_string_equal(err.msg, "API socket /tmp/kiln-no-such-dir/x.sock: connect: No such file "
                                 "or directory (is the VM running?)");
}

/* The socket rules need no server: a scratch folder per test. */
static void make_scratch(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/kiln-api-socket.XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void test_socket_mode_0600_and_live_refused(void **state)
{
    char dir[64], path[128];
    make_scratch(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/a.sock", dir);
    struct error err = {{0}};
    int fd = -1, second = -1;
    assert_int_equal(api_socket_bind(path, (uid_t)-1, (gid_t)-1, &fd, &err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(api_socket_bind(path, (uid_t)-1, (gid_t)-1, &second, &err), -EADDRINUSE);
    char expected[256];
    snprintf(expected, sizeof(expected), "API socket %s: another process is serving it", path);
    assert_string_equal(err.msg, expected);
    close(fd);
    unlink(path);
    rmdir(dir);
}

static void test_stale_socket_replaced(void **state)
{
    char dir[64], path[128];
    make_scratch(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/a.sock", dir);
    struct error err = {{0}};
    int fd = -1;
    assert_int_equal(api_socket_bind(path, (uid_t)-1, (gid_t)-1, &fd, &err), 0);
    close(fd); /* the VM died without removing it: stale */
    assert_int_equal(api_socket_bind(path, (uid_t)-1, (gid_t)-1, &fd, &err), 0);
    int client = raw_connect(path); /* the new socket answers */
    close(client);
    close(fd);
    unlink(path);
    rmdir(dir);
}

static void test_not_a_socket_and_too_long_refused(void **state)
{
    char dir[64], path[256];
    make_scratch(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/file", dir);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fclose(file);
    struct error err = {{0}};
    int fd = -1;
    assert_int_equal(api_socket_bind(path, (uid_t)-1, (gid_t)-1, &fd, &err), -EEXIST);
    assert_non_null(strstr(err.msg, "exists and is not a socket"));
    unlink(path);

    snprintf(path, sizeof(path), "%s/%0150d.sock", dir, 0);
    assert_int_equal(api_socket_bind(path, (uid_t)-1, (gid_t)-1, &fd, &err), -ENAMETOOLONG);
    assert_non_null(strstr(err.msg, "must be under 108"));
    rmdir(dir);
}

static void test_run_dir(void **state)
{
    char dir[64], expected[128], out[256];
    make_scratch(dir, sizeof(dir));
    char *saved = getenv("XDG_RUNTIME_DIR") ? strdup(getenv("XDG_RUNTIME_DIR")) : NULL;
    setenv("XDG_RUNTIME_DIR", dir, 1);
    struct error err = {{0}};
    assert_int_equal(api_run_dir(out, sizeof(out), &err), 0);
    snprintf(expected, sizeof(expected), "%s/kiln", dir);
    assert_string_equal(out, expected);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);

    assert_int_equal(api_default_socket_path("web1", 42, out, sizeof(out), &err), 0);
    snprintf(expected, sizeof(expected), "%s/kiln/web1.42.sock", dir);
    assert_string_equal(out, expected);
    assert_int_equal(api_default_socket_path(NULL, 7, out, sizeof(out), &err), 0);
    snprintf(expected, sizeof(expected), "%s/kiln/kiln.7.sock", dir);
    assert_string_equal(out, expected);

    /* Open to others: refused. */
    snprintf(expected, sizeof(expected), "%s/kiln", dir);
    chmod(expected, 0755);
    assert_int_equal(api_run_dir(out, sizeof(out), &err), -EPERM);
    assert_non_null(strstr(err.msg, "mode 0755 (expected uid"));
    rmdir(expected);
    /* Not a folder: refused. */
    FILE *file = fopen(expected, "w");
    assert_non_null(file);
    fclose(file);
    assert_int_equal(api_run_dir(out, sizeof(out), &err), -ENOTDIR);
    assert_non_null(strstr(err.msg, "not a directory"));
    unlink(expected);
    rmdir(dir);
    if (saved)
        setenv("XDG_RUNTIME_DIR", saved, 1);
    else
        unsetenv("XDG_RUNTIME_DIR");
    free(saved);
}

#define SERVER_TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        SERVER_TEST(test_get_200_with_json),
        SERVER_TEST(test_unknown_path_404),
        SERVER_TEST(test_wrong_method_405_with_allow),
        SERVER_TEST(test_bad_json_400),
        SERVER_TEST(test_malformed_request_400_then_close),
        SERVER_TEST(test_error_quoting_bytes_that_are_not_utf8),
        SERVER_TEST(test_big_body_413),
        SERVER_TEST(test_slow_client_408),
        SERVER_TEST(test_17th_connection_503),
        SERVER_TEST(test_deferred_reply),
        SERVER_TEST(test_client_leaves_before_deferred_reply),
        SERVER_TEST(test_pipelined_replies_in_order),
        SERVER_TEST(test_stop_while_a_call_is_held),
        SERVER_TEST(test_reply_then_stop),
        cmocka_unit_test(test_missing_socket),
        cmocka_unit_test(test_socket_mode_0600_and_live_refused),
        cmocka_unit_test(test_stale_socket_replaced),
        cmocka_unit_test(test_not_a_socket_and_too_long_refused),
        cmocka_unit_test(test_run_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
