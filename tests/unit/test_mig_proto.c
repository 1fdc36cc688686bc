/* The migration records (migrate/mig_proto.c) over a real link on a socket pair: a round trip
 * of each record, and each malformed header a hostile sender could send refused in one line. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/migrate/mig_proto.h"

/* Two plain links on a socket pair, opened at once (their hello is the link's own business). */
struct links {
    struct mig_link *sender, *receiver;
};

struct opener {
    int fd;
    bool initiator;
    struct mig_link *link;
    int r;
};

static void *open_thread(void *arg)
{
    struct opener *o = arg;
    struct error err = {{0}};
    o->r = mig_link_open(&o->link, o->fd, o->initiator, NULL, 5000, &err);
    return NULL;
}

static int setup(void **state)
{
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    struct opener a = {.fd = fds[0], .initiator = true}, b = {.fd = fds[1], .initiator = false};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, open_thread, &a), 0);
    open_thread(&b);
    pthread_join(thread, NULL);
    assert_int_equal(a.r, 0);
    assert_int_equal(b.r, 0);
    struct links *l = malloc(sizeof(*l));
    l->sender = a.link;
    l->receiver = b.link;
    *state = l;
    return 0;
}

static int teardown(void **state)
{
    struct links *l = *state;
    mig_link_close(l->sender);
    mig_link_close(l->receiver);
    free(l);
    return 0;
}

/* A raw header (type, reserved, length) sent as is, then the receiver's verdict. */
static int send_raw_header(struct links *l, uint32_t type, uint32_t reserved, uint64_t length,
                           struct error *err)
{
    uint8_t header[16];
    mig_put_u32(header, type);
    mig_put_u32(header + 4, reserved);
    mig_put_u64(header + 8, length);
    struct error send_err = {{0}};
    assert_int_equal(mig_link_send(l->sender, header, sizeof(header), &send_err), 0);
    assert_int_equal(mig_link_flush(l->sender, &send_err), 0);
    struct mig_header h;
    return mig_recv_header(l->receiver, &h, err);
}

static void test_round_trip(void **state)
{
    struct links *l = *state;
    struct error err = {{0}};
    static uint8_t pages[2 * MIG_PAGE_SIZE];
    memset(pages, 0xa5, sizeof(pages));
    uint8_t head[8];
    mig_put_u64(head, 77);
    assert_int_equal(mig_send(l->sender, MIG_REC_PAGES, head, 8, pages, sizeof(pages), &err), 0);
    assert_int_equal(mig_send(l->sender, MIG_REC_READY, NULL, 0, NULL, 0, &err), 0);
    assert_int_equal(mig_link_flush(l->sender, &err), 0);
    struct mig_header h;
    assert_int_equal(mig_recv_header(l->receiver, &h, &err), 0);
    assert_int_equal(h.type, MIG_REC_PAGES);
    assert_int_equal(h.length, 8 + sizeof(pages));
    uint8_t got[8 + sizeof(pages)];
    assert_int_equal(mig_link_recv(l->receiver, got, sizeof(got), &err), 0);
    assert_int_equal(mig_get_u64(got), 77);
    assert_memory_equal(got + 8, pages, sizeof(pages));
    void *body;
    size_t len;
    assert_int_equal(mig_expect(l->receiver, MIG_REC_READY, "sender", &body, &len, &err), 0);
    assert_null(body);
    assert_int_equal(len, 0);
}

static void test_error_record_is_quoted_and_made_printable(void **state)
{
    struct links *l = *state;
    struct error err = {{0}};
    assert_int_equal(mig_send_error(l->sender, "disk 0: gone\n\x1b[31mred", &err), 0);
    void *body;
    size_t len;
    assert_int_equal(mig_expect(l->receiver, MIG_REC_READY, "receiver", &body, &len, &err),
                     -ECONNABORTED);
    assert_string_equal(err.msg, "the receiver said: disk 0: gone??[31mred");
}

static void test_unexpected_record(void **state)
{
    struct links *l = *state;
    struct error err = {{0}};
    assert_int_equal(mig_send(l->sender, MIG_REC_LOADED, NULL, 0, NULL, 0, &err), 0);
    assert_int_equal(mig_link_flush(l->sender, &err), 0);
    void *body;
    size_t len;
    assert_int_equal(mig_expect(l->receiver, MIG_REC_READY, "receiver", &body, &len, &err),
                     -EBADMSG);
    assert_string_equal(err.msg, "corrupt migration stream: a LOADED record where READY was due");
}

/* Each bound a hostile header could break, each refused before any body is read. */
static void test_bad_headers(void **state)
{
    struct {
        uint32_t type, reserved;
        uint64_t length;
        const char *message;
    } cases[] = {
        {0, 0, 0, "corrupt migration stream: record type 0 (expected 1 to 11)"},
        {MIG_REC_TYPES, 0, 0, "corrupt migration stream: record type 12 (expected 1 to 11)"},
        {MIG_REC_READY, 1, 0, "corrupt migration stream: record type 2 (expected 1 to 11)"},
        {MIG_REC_READY, 0, 1, "corrupt migration stream: a READY record of 1 bytes"},
        {MIG_REC_CONFIG, 0, 0, "corrupt migration stream: a CONFIG record of 0 bytes"},
        {MIG_REC_CONFIG, 0, MIG_MAX_CONFIG_SIZE + 1,
         "corrupt migration stream: a CONFIG record of 1048577 bytes"},
        {MIG_REC_PAGES, 0, 8, "corrupt migration stream: a PAGES record of 8 bytes"},
        {MIG_REC_PAGES, 0, 8 + 100, "corrupt migration stream: a PAGES record of 108 bytes"},
        {MIG_REC_PAGES, 0, 8 + 257ull * MIG_PAGE_SIZE,
         "corrupt migration stream: a PAGES record of 1052680 bytes"},
        {MIG_REC_PAGES, 0, UINT64_MAX,
         "corrupt migration stream: a PAGES record of "
         "18446744073709551615 bytes"},
        {MIG_REC_ZERO, 0, 8, "corrupt migration stream: a ZERO record of 8 bytes"},
        {MIG_REC_STATE, 0, MIG_MAX_STATE_SIZE + 1ull,
         "corrupt migration stream: a STATE record of 67108865 bytes"},
        {MIG_REC_GO, 0, 0, "corrupt migration stream: a GO record of 0 bytes"},
        {MIG_REC_ERROR, 0, MIG_MAX_MESSAGE_SIZE + 1,
         "corrupt migration stream: a ERROR record of 1025 bytes"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct error err = {{0}};
        assert_int_equal(
            send_raw_header(*state, cases[i].type, cases[i].reserved, cases[i].length, &err),
            -EBADMSG);
        assert_string_equal(err.msg, cases[i].message);
    }
}

static void test_pages_in_range(void **state)
{
    (void)state;
    assert_true(mig_pages_in_range(0, 1, 1));
    assert_true(mig_pages_in_range(10, 256, 266));
    assert_false(mig_pages_in_range(10, 257, 266));
    assert_false(mig_pages_in_range(0, 0, 10));
    assert_false(mig_pages_in_range(266, 1, 266));
    assert_false(mig_pages_in_range(UINT64_MAX, 2, 266));
    assert_false(mig_pages_in_range(1, UINT64_MAX, 266));
}

static void test_peer_gone_mid_record(void **state)
{
    struct links *l = *state;
    struct error err = {{0}};
    uint8_t header[16] = {0};
    mig_put_u32(header, MIG_REC_ZERO);
    mig_put_u64(header + 8, 16);
    assert_int_equal(mig_link_send(l->sender, header, sizeof(header), &err), 0);
    assert_int_equal(mig_link_send(l->sender, header, 4, &err), 0);
    assert_int_equal(mig_link_flush(l->sender, &err), 0);
    mig_link_close(l->sender);
    l->sender = NULL;
    struct mig_header h;
    assert_int_equal(mig_recv_header(l->receiver, &h, &err), 0);
    uint8_t body[16];
    assert_true(mig_link_recv(l->receiver, body, sizeof(body), &err) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_record_is_quoted_and_made_printable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unexpected_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_headers, setup, teardown),
        cmocka_unit_test(test_pages_in_range),
        cmocka_unit_test_setup_teardown(test_peer_gone_mid_record, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
