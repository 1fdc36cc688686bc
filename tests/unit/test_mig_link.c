/* Unit tests for the migration link over a socketpair, a thread as the peer: bytes arrive as
 * sent, handshake mismatches, tampering, hang-ups, timeouts, a cancel and strangers fail. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/migrate/mig_link.h"

#define BIG_SIZE (10u * 1024 * 1024)
#define WAIT_MS  5000 /* generous: a loaded machine must not fail a test that should pass */

static const uint8_t KEY_A[MIG_PSK_SIZE] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t KEY_B[MIG_PSK_SIZE] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17};

/* Some piece sizes that do not line up with the link's 64 KiB chunks. */
static const size_t SEND_PIECES[] = {1, 7, 4093, 65535, 65537, 100003, 3};
static const size_t RECV_PIECES[] = {5, 65536, 131071, 1, 9999};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pattern(uint8_t *buf, size_t len)
{
    uint32_t x = 12345;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
}

/* One side of a link, run on a thread: opens, then sends `send_len` bytes of `data` in
 * SEND_PIECES and flushes (the sender), or receives them (when data is NULL); then reads or
 * writes the two-byte "ok" the other way, so both directions' keys are used. */
struct side {
    int fd;
    bool initiator;
    const uint8_t *psk;
    int timeout_ms;
    const uint8_t *data;
    size_t len;
    int open_result;
    int result;
    struct error err;
    uint64_t bytes_sent, bytes_received;
};

static int run_sender(struct side *s, struct mig_link *l)
{
    size_t done = 0;
    for (size_t i = 0; done < s->len; i++) {
        size_t n = SEND_PIECES[i % (sizeof(SEND_PIECES) / sizeof(SEND_PIECES[0]))];
        if (n > s->len - done)
            n = s->len - done;
        int r = mig_link_send(l, s->data + done, n, &s->err);
        if (r < 0)
            return r;
        done += n;
    }
    int r = mig_link_flush(l, &s->err);
    if (r < 0)
        return r;
    char ok[2];
    r = mig_link_recv(l, ok, 2, &s->err);
    if (r == 0 && memcmp(ok, "ok", 2) != 0)
        r = error_fmt(&s->err, -EINVAL, "the receiver's answer was not ok");
    return r;
}

static void *side_thread(void *arg)
{
    struct side *s = arg;
    struct mig_link *l = NULL;
    s->open_result = mig_link_open(&l, s->fd, s->initiator, s->psk, s->timeout_ms, &s->err);
    if (s->open_result < 0) {
        close(s->fd);
        return NULL;
    }
    s->result = run_sender(s, l);
    s->bytes_sent = mig_link_bytes_sent(l);
    s->bytes_received = mig_link_bytes_received(l);
    mig_link_close(l);
    return NULL;
}

static void make_pair(int fds[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
}

/* Sends len bytes through a link (keyed with psk, or plain) and checks they arrive identical,
 * read in other pieces than they were written, with both sides counting the same wire bytes. */
static void round_trip(const uint8_t *psk, size_t len)
{
    uint8_t *data = malloc(len ? len : 1), *got = malloc(len ? len : 1);
    pattern(data, len);
    int fds[2];
    make_pair(fds);
    struct side sender = {.fd = fds[0],
                          .initiator = true,
                          .psk = psk,
                          .timeout_ms = WAIT_MS,
                          .data = data,
                          .len = len};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, side_thread, &sender), 0);

    struct mig_link *l;
    struct error err = {0};
    int r = mig_link_open(&l, fds[1], false, psk, WAIT_MS, &err);
    if (r < 0)
        fail_msg("receiver: %s", err.msg);
    assert_int_equal(mig_link_recv(l, got, 0, &err), 0);
    size_t done = 0;
    for (size_t i = 0; done < len; i++) {
        size_t n = RECV_PIECES[i % (sizeof(RECV_PIECES) / sizeof(RECV_PIECES[0]))];
        if (n > len - done)
            n = len - done;
        r = mig_link_recv(l, got + done, n, &err);
        if (r < 0)
            fail_msg("receiver: %s", err.msg);
        done += n;
    }
    assert_true(len == 0 || memcmp(data, got, len) == 0);
    assert_int_equal(mig_link_send(l, "ok", 2, &err), 0);
    assert_int_equal(mig_link_flush(l, &err), 0);
    pthread_join(thread, NULL);
    if (sender.open_result < 0 || sender.result < 0)
        fail_msg("sender: %s", sender.err.msg);
    assert_int_equal(mig_link_bytes_received(l), sender.bytes_sent);
    assert_int_equal(mig_link_bytes_sent(l), sender.bytes_received);
    assert_true(sender.bytes_sent > len); /* the hello and the framing are counted */
    mig_link_close(l);
    free(data);
    free(got);
}

static void test_plain_round_trips(void **state)
{
    round_trip(NULL, 0);
    round_trip(NULL, 1);
    round_trip(NULL, BIG_SIZE);
}

static void test_keyed_round_trips(void **state)
{
    round_trip(KEY_A, 0);
    round_trip(KEY_A, 1);
    round_trip(KEY_A, BIG_SIZE);
}

/* Opens a sender (on a thread) with sender_psk against a receiver with receiver_psk, both
 * expected to fail: each side's code and line. */
static void expect_both_fail(const uint8_t *sender_psk, const uint8_t *receiver_psk, int code,
                             const char *sender_line, const char *receiver_line)
{
    int fds[2];
    make_pair(fds);
    struct side sender = {
        .fd = fds[0], .initiator = true, .psk = sender_psk, .timeout_ms = WAIT_MS};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, side_thread, &sender), 0);
    struct mig_link *l;
    struct error err = {0};
    assert_int_equal(mig_link_open(&l, fds[1], false, receiver_psk, WAIT_MS, &err), code);
    assert_null(l);
    close(fds[1]); /* a failed open leaves the fd to its caller */
    pthread_join(thread, NULL);
    assert_int_equal(sender.open_result, code);
    if (!strstr(sender.err.msg, sender_line))
        fail_msg("sender said \"%s\", expected \"%s\"", sender.err.msg, sender_line);
    if (!strstr(err.msg, receiver_line))
        fail_msg("receiver said \"%s\", expected \"%s\"", err.msg, receiver_line);
}

static void test_wrong_key(void **state)
{
    expect_both_fail(KEY_A, KEY_B, -EKEYREJECTED, "migration: wrong pre-shared key",
                     "migration: wrong pre-shared key");
}

static void test_keyed_sender_plain_receiver(void **state)
{
    expect_both_fail(KEY_A, NULL, -EACCES,
                     "migration: this sender uses a pre-shared key and the receiver has none",
                     "migration: the sender uses a pre-shared key and this receiver has none");
}

static void test_plain_sender_keyed_receiver(void **state)
{
    expect_both_fail(NULL, KEY_A, -EACCES,
                     "migration: the receiver uses a pre-shared key and this sender has none",
                     "migration: this receiver uses a pre-shared key and the sender has none");
}

/* A man in the middle between a sender and a receiver: forwards both ways, and in the sender's
 * direction flips one byte (flip_at), or stops and hangs up (cut_at), or records what passed. */
struct relay {
    int sender_fd, receiver_fd;
    long long flip_at, cut_at; /* offsets in the sender's bytes; -1: never */
    uint8_t *record;           /* the sender's bytes, if not NULL (record_size at most) */
    size_t record_size, recorded;
};

static void *relay_thread(void *arg)
{
    struct relay *r = arg;
    long long forwarded = 0;
    struct pollfd p[2] = {{.fd = r->sender_fd, .events = POLLIN},
                          {.fd = r->receiver_fd, .events = POLLIN}};
    uint8_t buf[4096];
    for (;;) {
        if (poll(p, 2, WAIT_MS) <= 0)
            break;
        if (p[1].revents) {
            ssize_t n = read(r->receiver_fd, buf, sizeof(buf));
            if (n <= 0 || write(r->sender_fd, buf, (size_t)n) != n)
                break;
        }
        if (p[0].revents) {
            size_t room = sizeof(buf);
            if (r->cut_at >= 0 && (long long)room > r->cut_at - forwarded)
                room = (size_t)(r->cut_at - forwarded);
            if (room == 0)
                break;
            ssize_t n = read(r->sender_fd, buf, room);
            if (n <= 0)
                break;
            if (r->flip_at >= forwarded && r->flip_at < forwarded + n)
                buf[r->flip_at - forwarded] ^= 0x01;
            if (r->record && r->recorded + (size_t)n <= r->record_size) {
                memcpy(r->record + r->recorded, buf, (size_t)n);
                r->recorded += (size_t)n;
            }
            forwarded += n;
            if (write(r->receiver_fd, buf, (size_t)n) != n)
                break;
        }
    }
    close(r->sender_fd);
    close(r->receiver_fd);
    return NULL;
}

/* How many bytes a sender writes for its handshake (the relays aim past them). */
static long long handshake_bytes(const uint8_t *psk)
{
    int fds[2];
    make_pair(fds);
    struct side sender = {.fd = fds[0], .initiator = true, .psk = psk, .timeout_ms = WAIT_MS};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, side_thread, &sender), 0);
    struct mig_link *l;
    struct error err = {0};
    assert_int_equal(mig_link_open(&l, fds[1], false, psk, WAIT_MS, &err), 0);
    long long n = (long long)mig_link_bytes_received(l);
    assert_int_equal(mig_link_send(l, "ok", 2, &err), 0);
    assert_int_equal(mig_link_flush(l, &err), 0);
    pthread_join(thread, NULL);
    mig_link_close(l);
    return n;
}

/* A sender of 200 KiB through the relay; the receiver's first recv of all of it returns. */
static int recv_through_relay(struct relay *relay, const uint8_t *psk, struct error *err)
{
    int to_sender[2], to_receiver[2];
    make_pair(to_sender);
    make_pair(to_receiver);
    relay->sender_fd = to_sender[1];
    relay->receiver_fd = to_receiver[0];
    size_t len = 200 * 1024;
    uint8_t *data = malloc(len), *got = malloc(len);
    pattern(data, len);
    struct side sender = {.fd = to_sender[0],
                          .initiator = true,
                          .psk = psk,
                          .timeout_ms = WAIT_MS,
                          .data = data,
                          .len = len};
    pthread_t relay_th, sender_th;
    assert_int_equal(pthread_create(&relay_th, NULL, relay_thread, relay), 0);
    assert_int_equal(pthread_create(&sender_th, NULL, side_thread, &sender), 0);
    struct mig_link *l;
    int r = mig_link_open(&l, to_receiver[1], false, psk, WAIT_MS, err);
    if (r == 0) {
        r = mig_link_recv(l, got, len, err);
        if (r == 0)
            assert_memory_equal(data, got, len);
        /* After an error, every later call fails the same way. */
        struct error again = {0};
        uint8_t byte;
        if (r < 0) {
            assert_int_equal(mig_link_recv(l, &byte, 1, &again), r);
            assert_string_equal(again.msg, err->msg);
            assert_int_equal(mig_link_send(l, &byte, 1, &again), r);
            assert_int_equal(mig_link_flush(l, &again), r);
        }
        mig_link_close(l); /* the sender, waiting for "ok", sees the link close */
    } else {
        close(to_receiver[1]);
    }
    pthread_join(sender_th, NULL);
    pthread_join(relay_th, NULL);
    free(data);
    free(got);
    return r;
}

static void test_relay_passes_a_clean_stream(void **state)
{
    struct relay relay = {.flip_at = -1, .cut_at = -1};
    struct error err = {0};
    assert_int_equal(recv_through_relay(&relay, KEY_A, &err), 0);
}

static void test_flipped_byte(void **state)
{
    /* In the first data frame's body, after the handshake and the frame's 4-byte length. */
    struct relay relay = {.flip_at = handshake_bytes(KEY_A) + 4 + 1000, .cut_at = -1};
    struct error err = {0};
    assert_int_equal(recv_through_relay(&relay, KEY_A, &err), -EBADMSG);
    assert_string_equal(err.msg, "migration: the stream was altered or corrupted");
}

static void test_flipped_frame_length(void **state)
{
    /* The length's top byte: a frame far larger than any the link sends. */
    struct relay relay = {.flip_at = handshake_bytes(NULL) + 3, .cut_at = -1};
    struct error err = {0};
    assert_int_equal(recv_through_relay(&relay, NULL, &err), -EBADMSG);
    assert_string_equal(err.msg, "migration: the stream was altered or corrupted");
}

static void test_peer_closes_mid_message(void **state)
{
    const uint8_t *keys[] = {NULL, KEY_A};
    for (int i = 0; i < 2; i++) {
        struct relay relay = {.flip_at = -1, .cut_at = handshake_bytes(keys[i]) + 4 + 1000};
        struct error err = {0};
        assert_int_equal(recv_through_relay(&relay, keys[i], &err), -EPIPE);
        assert_string_equal(err.msg, "migration: the peer closed the connection");
    }
}

/* A recorded keyed stream played to another receiver with the same key: its hello's random
 * bytes differ, so the recording's key proof does not open. */
static void test_replay_refused(void **state)
{
    uint8_t record[4096];
    struct relay relay = {
        .flip_at = -1, .cut_at = -1, .record = record, .record_size = sizeof(record)};
    struct error err = {0};
    assert_int_equal(recv_through_relay(&relay, KEY_A, &err), 0);
    assert_true(relay.recorded > 200);

    int fds[2];
    make_pair(fds);
    assert_int_equal(write(fds[0], record, relay.recorded), (ssize_t)relay.recorded);
    struct mig_link *l;
    assert_int_equal(mig_link_open(&l, fds[1], false, KEY_A, WAIT_MS, &err), -EKEYREJECTED);
    assert_non_null(strstr(err.msg, "wrong pre-shared key"));
    close(fds[0]);
    close(fds[1]);
}

struct opener {
    int fd;
    const uint8_t *psk;
    int timeout_ms;
    struct mig_link *link;
    struct error err;
};

static void *opener_thread(void *arg)
{
    struct opener *o = arg;
    if (mig_link_open(&o->link, o->fd, true, o->psk, o->timeout_ms, &o->err) < 0)
        close(o->fd);
    return NULL;
}

/* A sender and a receiver link joined by a socketpair, both open. */
static void open_pair(const uint8_t *psk, int timeout_ms, struct mig_link **sender,
                      struct mig_link **receiver)
{
    int fds[2];
    make_pair(fds);
    struct opener o = {.fd = fds[0], .psk = psk, .timeout_ms = timeout_ms};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, opener_thread, &o), 0);
    struct error err = {0};
    int r = mig_link_open(receiver, fds[1], false, psk, timeout_ms, &err);
    pthread_join(thread, NULL);
    if (r < 0 || !o.link)
        fail_msg("open: %s / %s", err.msg, o.err.msg);
    *sender = o.link;
}

/* A peer that says nothing: recv gives up after the timeout, with a line. */
static void test_recv_times_out(void **state)
{
    struct mig_link *sender, *receiver;
    open_pair(KEY_A, 100, &sender, &receiver);
    struct error err = {0};
    uint8_t buf[16];
    long long t0 = now_ms();
    assert_int_equal(mig_link_recv(receiver, buf, sizeof(buf), &err), -ETIMEDOUT);
    long long ms = now_ms() - t0;
    assert_true(ms >= 90 && ms < WAIT_MS);
    assert_string_equal(err.msg, "migration: the peer stalled for 100 ms");
    mig_link_close(sender);
    mig_link_close(receiver);
}

/* A peer that reads nothing: send blocks on the full socket, then gives up. */
static void test_send_times_out(void **state)
{
    struct mig_link *sender, *receiver;
    open_pair(NULL, 100, &sender, &receiver);
    struct error err = {0};
    size_t len = 4 * 1024 * 1024; /* more than a socketpair's buffers hold */
    uint8_t *data = calloc(1, len);
    assert_int_equal(mig_link_send(sender, data, len, &err), -ETIMEDOUT);
    assert_string_equal(err.msg, "migration: the peer stalled for 100 ms");
    free(data);
    mig_link_close(sender);
    mig_link_close(receiver);
}

/* A peer that never answers the hello: the handshake gives up after the timeout. */
static void test_handshake_times_out(void **state)
{
    int fds[2];
    make_pair(fds);
    struct mig_link *l;
    struct error err = {0};
    assert_int_equal(mig_link_open(&l, fds[1], false, KEY_A, 100, &err), -ETIMEDOUT);
    assert_string_equal(err.msg, "migration: no handshake from the peer within 100 ms");
    close(fds[0]);
    assert_int_equal(mig_link_open(&l, fds[1], true, NULL, 100, &err), -EPIPE);
    assert_string_equal(err.msg, "migration: the peer closed the connection during the handshake");
    close(fds[1]);
}

struct blocked_recv {
    struct mig_link *link;
    int result;
    struct error err;
    long long returned_at;
};

static void *blocked_recv_thread(void *arg)
{
    struct blocked_recv *b = arg;
    uint8_t buf[100];
    b->result = mig_link_recv(b->link, buf, sizeof(buf), &b->err);
    __atomic_store_n(&b->returned_at, now_ms(), __ATOMIC_SEQ_CST);
    return NULL;
}

/* A recv blocked with no timeout returns at once when another thread cancels. */
static void test_cancel_unblocks_recv(void **state)
{
    struct mig_link *sender, *receiver;
    open_pair(KEY_A, -1, &sender, &receiver);
    struct blocked_recv b = {.link = receiver};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, blocked_recv_thread, &b), 0);
    struct timespec pause = {.tv_nsec = 100 * 1000000L};
    nanosleep(&pause, NULL);
    assert_int_equal(__atomic_load_n(&b.returned_at, __ATOMIC_SEQ_CST), 0); /* still blocked */
    long long cancelled_at = now_ms();
    mig_link_cancel(receiver);
    pthread_join(thread, NULL);
    assert_int_equal(b.result, -ECANCELED);
    assert_string_equal(b.err.msg, "migration: cancelled");
    assert_true(b.returned_at - cancelled_at < 1000);
    struct error err = {0};
    assert_int_equal(mig_link_send(receiver, "x", 1, &err), -ECANCELED);
    /* The sender sees its peer go. */
    uint8_t byte;
    assert_int_equal(mig_link_recv(sender, &byte, 1, &err), -EPIPE);
    mig_link_close(sender);
    mig_link_close(receiver);
}

static void test_readable(void **state)
{
    struct mig_link *sender, *receiver;
    open_pair(KEY_A, WAIT_MS, &sender, &receiver);
    struct error err = {0};
    assert_false(mig_link_readable(receiver));
    assert_int_equal(mig_link_send(sender, "abc", 3, &err), 0);
    assert_false(mig_link_readable(receiver)); /* still in the sender's buffer */
    assert_int_equal(mig_link_flush(sender, &err), 0);
    assert_true(mig_link_readable(receiver));
    char buf[2];
    assert_int_equal(mig_link_recv(receiver, buf, 2, &err), 0);
    assert_true(mig_link_readable(receiver)); /* "c" is decrypted and waiting */
    assert_int_equal(mig_link_recv(receiver, buf, 1, &err), 0);
    assert_int_equal(buf[0], 'c');
    assert_false(mig_link_readable(receiver));
    mig_link_close(sender);
    mig_link_close(receiver);
}

/* Bytes a peer sends before its hello, opened as either side: the expected code and line. */
static void expect_stranger(const void *bytes, size_t len, bool initiator, int code,
                            const char *line)
{
    int fds[2];
    make_pair(fds);
    assert_int_equal(write(fds[0], bytes, len), (ssize_t)len);
    struct mig_link *l;
    struct error err = {0};
    assert_int_equal(mig_link_open(&l, fds[1], initiator, NULL, WAIT_MS, &err), code);
    if (!strstr(err.msg, line))
        fail_msg("said \"%s\", expected \"%s\"", err.msg, line);
    close(fds[0]);
    close(fds[1]);
}

static void test_http_peer(void **state)
{
    const char *request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    expect_stranger(request, strlen(request), false, -EPROTO,
                    "migration: not a kiln migration peer (it sent \"GET / HT\", expected the "
                    "migration hello \"KILN-MIG\")");
    const char *reply = "HTTP/1.1 400 Bad Request\r\n\r\n";
    expect_stranger(reply, strlen(reply), true, -EPROTO, "not a kiln migration peer");
    /* A short greeting that then waits: refused at its first wrong byte, not at a timeout. */
    expect_stranger("\x16\x03", 2, false, -EPROTO, "(it sent \"\\x16\\x03\"");
}

static void test_other_version(void **state)
{
    uint8_t hello[48] = "KILN-MIG";
    hello[8] = 2; /* version 2, little-endian */
    expect_stranger(hello, sizeof(hello), false, -EPROTONOSUPPORT,
                    "migration: the sender speaks migration format version 2 (flags 0x0); this "
                    "kiln speaks version 1");
    hello[8] = 1;
    hello[12] = 0x80; /* a flag this version does not know */
    expect_stranger(hello, sizeof(hello), true, -EPROTONOSUPPORT,
                    "the receiver speaks migration format version 1 (flags 0x80)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_round_trips),
        cmocka_unit_test(test_keyed_round_trips),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_keyed_sender_plain_receiver),
        cmocka_unit_test(test_plain_sender_keyed_receiver),
        cmocka_unit_test(test_relay_passes_a_clean_stream),
        cmocka_unit_test(test_flipped_byte),
        cmocka_unit_test(test_flipped_frame_length),
        cmocka_unit_test(test_peer_closes_mid_message),
        cmocka_unit_test(test_replay_refused),
        cmocka_unit_test(test_recv_times_out),
        cmocka_unit_test(test_send_times_out),
        cmocka_unit_test(test_handshake_times_out),
        cmocka_unit_test(test_cancel_unblocks_recv),
        cmocka_unit_test(test_readable),
        cmocka_unit_test(test_http_peer),
        cmocka_unit_test(test_other_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
