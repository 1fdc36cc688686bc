/* Unit tests for the migration stream's sockets: listening, accepting and connecting on a unix
 * path and on tcp 127.0.0.1, nobody listening, a stale socket file replaced, a live one refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/migrate/mig_addr.h"

struct sock_dir {
    char dir[64];
    char text[128]; /* "unix:DIR/mig.sock" */
};

static int make_dir(void **state)
{
    struct sock_dir *d = calloc(1, sizeof(*d));
    strcpy(d->dir, "/tmp/kiln-mig-sock-XXXXXX");
    assert_non_null(mkdtemp(d->dir));
    snprintf(d->text, sizeof(d->text), "unix:%s/mig.sock", d->dir);
    *state = d;
    return 0;
}

static int remove_dir(void **state)
{
    struct sock_dir *d = *state;
    unlink(d->text + 5);
    rmdir(d->dir);
    free(d);
    return 0;
}

/* A listener, a connection to it and the accepted end carry bytes both ways. */
static void check_pair(int listen_fd, const struct mig_addr *a)
{
    struct error err = {0};
    int client = mig_connect(a, 1000, &err);
    if (client < 0)
        fail_msg("connect: %s", err.msg);
    assert_int_equal(write(client, "ping", 4), 4); /* a sender speaks first */
    int server = mig_accept(listen_fd, 1000, &err);
    if (server < 0)
        fail_msg("accept: %s", err.msg);
    char buf[4];
    assert_int_equal(read(server, buf, 4), 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(write(server, "pong", 4), 4);
    assert_int_equal(read(client, buf, 4), 4);
    assert_memory_equal(buf, "pong", 4);
    close(client);
    close(server);
}

static void test_unix_listen_connect(void **state)
{
    struct sock_dir *d = *state;
    struct mig_addr a;
    struct error err = {0};
    assert_int_equal(mig_addr_parse(d->text, &a, &err), 0);
    int fd = mig_listen(&a, &err);
    if (fd < 0)
        fail_msg("%s", err.msg);
    struct stat st;
    assert_int_equal(stat(a.path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    check_pair(fd, &a);
    close(fd);
}

static void test_tcp_port_zero(void **state)
{
    struct mig_addr a;
    struct error err = {0};
    assert_int_equal(mig_addr_parse("tcp:127.0.0.1:1", &a, &err), 0);
    a.port = 0; /* the kernel picks a free one; mig_addr_parse refuses 0 from a user */
    int fd = mig_listen(&a, &err);
    if (fd < 0)
        fail_msg("%s", err.msg);
    int port = mig_listen_port(fd);
    assert_true(port > 0);
    a.port = (uint16_t)port;
    check_pair(fd, &a);
    close(fd);
}

static void test_accept_times_out(void **state)
{
    struct mig_addr a;
    struct error err = {0};
    assert_int_equal(mig_addr_parse("tcp:127.0.0.1:1", &a, &err), 0);
    a.port = 0;
    int fd = mig_listen(&a, &err);
    assert_true(fd >= 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(mig_accept(fd, 100, &err), -ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 90 && ms < 2000);
    assert_string_equal(err.msg, "migration: no sender connected within 100 ms");
    close(fd);
}

static void test_connect_to_nobody(void **state)
{
    struct sock_dir *d = *state;
    struct mig_addr a;
    struct error err = {0};
    assert_int_equal(mig_addr_parse(d->text, &a, &err), 0);
    assert_int_equal(mig_connect(&a, 1000, &err), -ENOENT);
    char expected[400];
    snprintf(expected, sizeof(expected),
             "migration address '%s': connect: No such file or directory (is `kiln receive` "
             "listening there?)",
             d->text);
    assert_string_equal(err.msg, expected);

    /* tcp: a port just closed refuses */
    assert_int_equal(mig_addr_parse("tcp:127.0.0.1:1", &a, &err), 0);
    a.port = 0;
    int fd = mig_listen(&a, &err);
    a.port = (uint16_t)mig_listen_port(fd);
    close(fd);
    assert_int_equal(mig_connect(&a, 1000, &err), -ECONNREFUSED);
    assert_non_null(strstr(err.msg, "connect: Connection refused (is `kiln receive` listening"));
    assert_non_null(strstr(err.msg, "migration address 'tcp:127.0.0.1:1'"));
}

/* A socket file whose process is gone (bound, never listening, closed) is replaced. */
static void test_stale_socket_replaced(void **state)
{
    struct sock_dir *d = *state;
    struct mig_addr a;
    struct error err = {0};
    assert_int_equal(mig_addr_parse(d->text, &a, &err), 0);
    int dead = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strcpy(address.sun_path, a.path);
    assert_int_equal(bind(dead, (struct sockaddr *)&address, sizeof(address)), 0);
    close(dead);
    int fd = mig_listen(&a, &err);
    if (fd < 0)
        fail_msg("%s", err.msg);
    check_pair(fd, &a);
    close(fd);
}

static void test_live_socket_refused(void **state)
{
    struct sock_dir *d = *state;
    struct mig_addr a;
    struct error err = {0};
    assert_int_equal(mig_addr_parse(d->text, &a, &err), 0);
    int first = mig_listen(&a, &err);
    assert_true(first >= 0);
    assert_int_equal(mig_listen(&a, &err), -EADDRINUSE);
    char expected[400];
    snprintf(expected, sizeof(expected),
             "migration address '%s': another process is listening on %s", d->text, a.path);
    assert_string_equal(err.msg, expected);
    check_pair(first, &a); /* the first listener is untouched */
    close(first);
}

static void test_not_a_socket_refused(void **state)
{
    struct sock_dir *d = *state;
    struct mig_addr a;
    struct error err = {0};
    assert_int_equal(mig_addr_parse(d->text, &a, &err), 0);
    FILE *f = fopen(a.path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(mig_listen(&a, &err), -EEXIST);
    assert_non_null(strstr(err.msg, "exists and is not a socket"));
    struct stat st;
    assert_int_equal(stat(a.path, &st), 0); /* left alone */
    assert_true(S_ISREG(st.st_mode));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unix_listen_connect, make_dir, remove_dir),
        cmocka_unit_test(test_tcp_port_zero),
        cmocka_unit_test(test_accept_times_out),
        cmocka_unit_test_setup_teardown(test_connect_to_nobody, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_stale_socket_replaced, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_live_socket_refused, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_not_a_socket_refused, make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
