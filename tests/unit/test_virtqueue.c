/* Spec-boundary unit tests for the split-virtqueue walker (virtio 1.2 §2.7), beside the
 * everyday cases in test_virtio_rings.c: exact limits, indirect-table corners, the MMIO hole,
 * index wrap at 65535 and interrupt suppression as §2.7.7.2 words it. */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "virtio_fake.h"

#define W VRING_DESC_F_WRITE
#define N VRING_DESC_F_NEXT
#define I VRING_DESC_F_INDIRECT

static struct fake_queue fq;
static struct virtq_chain chain;

static int setup(void **state)
{
    return fake_queue_init(&fq, 16, false, true);
}

static int setup_event_idx(void **state)
{
    return fake_queue_init(&fq, 16, true, true);
}

static int setup_256(void **state)
{
    return fake_queue_init(&fq, 256, false, true);
}

static int teardown(void **state)
{
    fake_queue_destroy(&fq);
    return 0;
}

static enum virtq_pop_result pop(const char **why)
{
    *why = NULL;
    return virtqueue_pop(&fq.vq, &chain, why);
}

static void expect_chain(uint16_t head, unsigned nreadable, unsigned nwritable)
{
    const char *why;
    assert_int_equal(pop(&why), VIRTQ_POP_CHAIN);
    assert_int_equal(chain.head, head);
    assert_int_equal(chain.nreadable, nreadable);
    assert_int_equal(chain.nwritable, nwritable);
}

static void expect_bad(const char *reason)
{
    const char *why;
    assert_int_equal(pop(&why), VIRTQ_POP_BAD_CHAIN);
    assert_non_null(why);
    if (reason)
        assert_string_equal(why, reason);
}

static uint16_t *avail_event(void)
{
    return (uint16_t *)&fake_used(&fq)->ring[fq.vq.size];
}

static uint16_t *used_event(void)
{
    return &fake_avail_ring(&fq)->ring[fq.vq.size];
}

static bool page_marked(const uint64_t *bits, uint64_t gpa)
{
    return (bits[gpa / 4096 / 64] >> (gpa / 4096 % 64)) & 1;
}

/* A diff snapshot must hold every page a device may have written: a popped chain's writable
 * buffers (wherever an indirect table puts them) and the used ring, never a readable buffer. */
static void test_device_writes_are_marked_for_snapshots(void **state)
{
    static uint64_t bits[FAKE_RAM / 4096 / 64];
    memset(bits, 0, sizeof(bits));
    guest_mem_take_written(&fq.mem, bits); /* what set-up wrote */
    memset(bits, 0, sizeof(bits));
    fake_desc_at(&fq, FAKE_INDIRECT, 0, FAKE_BUF + 0x5000, 16, N, 1);
    fake_desc_at(&fq, FAKE_INDIRECT, 1, FAKE_BUF + 0x8ff0, 0x20, W, 0); /* two pages */
    fake_desc(&fq, 2, FAKE_BUF, 16, N, 3);
    fake_desc(&fq, 3, FAKE_INDIRECT, 32, I, 0);
    fake_avail(&fq, 2);
    expect_chain(2, 2, 1);
    virtqueue_push(&fq.vq, 2, 0x20);
    guest_mem_take_written(&fq.mem, bits);
    assert_true(page_marked(bits, FAKE_BUF + 0x8000));
    assert_true(page_marked(bits, FAKE_BUF + 0x9000));
    assert_true(page_marked(bits, FAKE_USED));
    assert_false(page_marked(bits, FAKE_BUF));
    assert_false(page_marked(bits, FAKE_BUF + 0x5000));
    assert_false(page_marked(bits, FAKE_INDIRECT));
    assert_false(page_marked(bits, FAKE_DESC));
    assert_false(page_marked(bits, FAKE_AVAIL));
}

/* A migration takes the marks while the device works: marks taken between the pop and the
 * device's write must come back at the push, or the page's new bytes would never be sent. A
 * chain whose descriptors the guest broke meanwhile marks what lies in RAM and stops. */
static void test_device_writes_are_marked_again_at_the_push(void **state)
{
    static uint64_t bits[FAKE_RAM / 4096 / 64];
    fake_desc_at(&fq, FAKE_INDIRECT, 0, FAKE_BUF + 0x5000, 16, N, 1);
    fake_desc_at(&fq, FAKE_INDIRECT, 1, FAKE_BUF + 0x8ff0, 0x20, W, 0);
    fake_desc(&fq, 2, FAKE_BUF, 16, N, 3);
    fake_desc(&fq, 3, FAKE_INDIRECT, 32, I, 0);
    fake_desc(&fq, 4, FAKE_BUF + 0xc000, 16, W | N, 5);
    fake_desc(&fq, 5, FAKE_BUF + 0xd000, 16, W, 0);
    fake_avail(&fq, 2);
    fake_avail(&fq, 4);
    expect_chain(2, 2, 1);
    expect_chain(4, 0, 2);
    fake_desc(&fq, 5, FAKE_BUF + 0xd000, 16, W | N, 4); /* the guest makes a loop of it */
    guest_mem_take_written(&fq.mem, bits); /* the migration's collect, before the writes */
    memset(bits, 0, sizeof(bits));
    virtqueue_push(&fq.vq, 2, 0x20);
    virtqueue_push(&fq.vq, 4, 32);
    guest_mem_take_written(&fq.mem, bits);
    assert_true(page_marked(bits, FAKE_BUF + 0x8000));
    assert_true(page_marked(bits, FAKE_BUF + 0x9000));
    assert_true(page_marked(bits, FAKE_BUF + 0xc000));
    assert_true(page_marked(bits, FAKE_BUF + 0xd000));
    assert_false(page_marked(bits, FAKE_BUF + 0x5000));
    assert_false(page_marked(bits, FAKE_BUF));
    /* A chain over the queue's byte limit (given back as bad) is marked only up to it: the
     * push costs no more than the pop, whatever lengths the descriptors claim. */
    fq.vq.max_chain_bytes = 0x2000;
    fake_desc(&fq, 6, FAKE_BUF + 0x10000, 0x1000, W | N, 7);
    fake_desc(&fq, 7, FAKE_BUF + 0x20000, 0x2000, W, 0);
    fake_avail(&fq, 6);
    expect_bad("chain is longer than the device takes");
    memset(bits, 0, sizeof(bits));
    guest_mem_take_written(&fq.mem, bits);
    memset(bits, 0, sizeof(bits));
    virtqueue_push(&fq.vq, 6, 0);
    guest_mem_take_written(&fq.mem, bits);
    assert_true(page_marked(bits, FAKE_BUF + 0x10000));
    assert_false(page_marked(bits, FAKE_BUF + 0x20000));
    /* A head the device no longer holds marks nothing. */
    memset(bits, 0, sizeof(bits));
    virtqueue_push(&fq.vq, 2, 0x20);
    guest_mem_take_written(&fq.mem, bits);
    assert_false(page_marked(bits, FAKE_BUF + 0x8000));
}

/* §2.7.5.3.1 forbids chains *longer* than the queue size: one of exactly that length is legal
 * and must not be mistaken for a loop. */
static void test_chain_of_exactly_queue_size(void **state)
{
    for (unsigned i = 0; i < 16; i++)
        fake_desc(&fq, i, FAKE_BUF + i * 64, 64, i < 15 ? N : 0, (uint16_t)((i + 1) % 16));
    fake_avail(&fq, 0);
    expect_chain(0, 16, 0);
    assert_int_equal(chain.readable_len, 16 * 64);
    assert_ptr_equal(chain.iov[15].iov_base, fake_ptr(&fq, FAKE_BUF + 15 * 64));
}

static void test_queue_of_one(void **state)
{
    fake_queue_destroy(&fq);
    assert_int_equal(fake_queue_init(&fq, 1, false, false), 0);
    fake_desc(&fq, 0, FAKE_BUF, 8, W, 0);
    fake_avail(&fq, 0);
    expect_chain(0, 0, 1);
    virtqueue_push(&fq.vq, 0, 8);
    fake_desc(&fq, 0, FAKE_BUF, 8, W | N, 0); /* its own successor */
    fake_avail(&fq, 0);
    expect_bad("descriptor loop (chain longer than its table)");
}

/* §2.7.5.3.2: "The device MUST ignore the write-only flag in the descriptor that refers to an
 * indirect table." */
static void test_write_flag_on_indirect_descriptor_is_ignored(void **state)
{
    fake_desc_at(&fq, FAKE_INDIRECT, 0, FAKE_BUF, 16, N, 1);
    fake_desc_at(&fq, FAKE_INDIRECT, 1, FAKE_BUF + 0x1000, 32, W, 0);
    fake_desc(&fq, 4, FAKE_INDIRECT, 32, I | W, 0);
    fake_avail(&fq, 4);
    expect_chain(4, 1, 1);
    assert_int_equal(chain.readable_len, 16);
    assert_int_equal(chain.writable_len, 32);
}

/* Readable-before-writable holds across the switch into an indirect table (§2.7.4.2). */
static void test_writable_direct_then_readable_indirect(void **state)
{
    fake_desc_at(&fq, FAKE_INDIRECT, 0, FAKE_BUF, 16, 0, 0);
    fake_desc(&fq, 0, FAKE_BUF + 0x1000, 8, W | N, 1);
    fake_desc(&fq, 1, FAKE_INDIRECT, 16, I, 0);
    fake_avail(&fq, 0);
    expect_bad("device-readable buffer after a device-writable one");
}

/* Inside an indirect table, next is bounded by the table's length, not the queue size: a
 * next of 5 in a 2-entry table would read past the table. */
static void test_indirect_next_past_its_table(void **state)
{
    fake_desc_at(&fq, FAKE_INDIRECT, 0, FAKE_BUF, 16, N, 5);
    fake_desc_at(&fq, FAKE_INDIRECT, 1, FAKE_BUF, 16, 0, 0);
    fake_desc(&fq, 0, FAKE_INDIRECT, 32, I, 0);
    fake_avail(&fq, 0);
    expect_bad("next descriptor index out of range");
    virtqueue_push(&fq.vq, 0, 0); /* given back, so the driver may offer head 0 again */

    fake_desc_at(&fq, FAKE_INDIRECT, 0, FAKE_BUF, 16, N, 2); /* == table length */
    fake_avail(&fq, 0);
    expect_bad("next descriptor index out of range");
}

static void test_loop_inside_indirect_table(void **state)
{
    fake_desc_at(&fq, FAKE_INDIRECT, 0, FAKE_BUF, 16, N, 1);
    fake_desc_at(&fq, FAKE_INDIRECT, 1, FAKE_BUF, 16, N, 2);
    fake_desc_at(&fq, FAKE_INDIRECT, 2, FAKE_BUF, 16, N, 1);
    fake_desc(&fq, 0, FAKE_INDIRECT, 48, I, 0);
    fake_avail(&fq, 0);
    expect_bad("descriptor loop (chain longer than its table)");
}

/* The spec gives alignments for the three ring parts only; an indirect table may sit
 * anywhere (UBSan would flag a misaligned descriptor load here). */
static void test_unaligned_indirect_table(void **state)
{
    const uint64_t table = FAKE_INDIRECT + 4;
    fake_desc_at(&fq, table, 0, FAKE_BUF, 16, N, 1);
    fake_desc_at(&fq, table, 1, FAKE_BUF + 0x100, 8, W, 0);
    fake_desc(&fq, 2, table, 32, I, 0);
    fake_avail(&fq, 2);
    expect_chain(2, 1, 1);
    assert_ptr_equal(chain.iov[1].iov_base, fake_ptr(&fq, FAKE_BUF + 0x100));
}

static void test_indirect_table_of_queue_size_entries(void **state)
{
    for (unsigned i = 0; i < 16; i++)
        fake_desc_at(&fq, FAKE_INDIRECT, i, FAKE_BUF + i * 16, 16, i < 15 ? N | W : W,
                     (uint16_t)(i + 1));
    fake_desc(&fq, 9, FAKE_INDIRECT, 16 * 16, I, 0);
    fake_avail(&fq, 9);
    expect_chain(9, 0, 16);
    assert_int_equal(chain.writable_len, 256);
}

static void test_buffers_at_the_end_of_ram(void **state)
{
    fake_desc(&fq, 0, FAKE_RAM - 8, 8, 0, 0); /* the last 8 bytes of RAM */
    fake_avail(&fq, 0);
    expect_chain(0, 1, 0);
    assert_ptr_equal(chain.iov[0].iov_base, fake_ptr(&fq, FAKE_RAM - 8));

    fake_desc(&fq, 1, FAKE_RAM - 8, 9, 0, 0); /* one byte past */
    fake_avail(&fq, 1);
    expect_bad("buffer outside guest RAM");
    fake_desc(&fq, 2, FAKE_RAM, 1, W, 0);
    fake_avail(&fq, 2);
    expect_bad("buffer outside guest RAM");
    fake_desc(&fq, 3, 0, UINT32_MAX, W, 0); /* 4 GiB from 0: more than RAM */
    fake_avail(&fq, 3);
    expect_bad(NULL);
    fake_desc(&fq, 4, UINT64_MAX, 1, 0, 0);
    fake_avail(&fq, 4);
    expect_bad("buffer outside guest RAM");
}

/* VIRTQ_MAX_CHAIN_BYTES refuses chains of *more than* 64 MiB: exactly 64 MiB passes. */
static void test_total_length_exactly_at_the_cap(void **state)
{
    for (unsigned i = 0; i < 4; i++)
        fake_desc(&fq, i, 0, (uint32_t)FAKE_RAM, i < 3 ? N : 0, (uint16_t)(i + 1));
    fake_avail(&fq, 0);
    expect_chain(0, 4, 0);
    assert_int_equal(chain.readable_len, VIRTQ_MAX_CHAIN_BYTES);
    virtqueue_push(&fq.vq, 0, 0);

    for (unsigned i = 0; i < 4; i++)
        fake_desc(&fq, i, 0, (uint32_t)FAKE_RAM, N, (uint16_t)(i + 1));
    fake_desc(&fq, 4, FAKE_BUF, 1, W, 0);
    fake_avail(&fq, 0);
    expect_bad("chain is longer than 64 MiB");
}

/* 255 direct buffers plus a 256-entry indirect table: more buffers than struct virtq_chain has
 * iovecs. The walk must stop at the array's end (ASan would catch an overrun). */
static void test_more_buffers_than_iovecs(void **state)
{
    for (unsigned i = 0; i < 255; i++)
        fake_desc(&fq, i, FAKE_BUF + i * 8, 8, N, (uint16_t)(i + 1));
    fake_desc(&fq, 255, FAKE_INDIRECT, 256 * 16, I, 0);
    for (unsigned i = 0; i < 256; i++)
        fake_desc_at(&fq, FAKE_INDIRECT, i, FAKE_BUF + 0x10000 + i * 8, 8, i < 255 ? N | W : W,
                     (uint16_t)(i + 1));
    fake_avail(&fq, 0);
    expect_bad(NULL);
    assert_int_equal(chain.head, 0);
}

/* A bad chain is consumed and its head given back with len 0, the next chain is served. */
static void test_bad_chain_is_given_back(void **state)
{
    fake_desc(&fq, 6, FAKE_BUF, 0, 0, 0);
    fake_avail(&fq, 6);
    expect_bad("zero-length descriptor");
    assert_int_equal(chain.head, 6);
    virtqueue_push(&fq.vq, chain.head, 0);
    assert_int_equal(fake_used(&fq)->idx, 1);
    assert_int_equal(fake_used(&fq)->ring[0].id, 6);
    assert_int_equal(fake_used(&fq)->ring[0].len, 0);

    fake_desc(&fq, 7, FAKE_BUF, 8, 0, 0);
    fake_avail(&fq, 7);
    expect_chain(7, 1, 0);
}

/* A head the device still holds, offered again, is a broken ring: without this a driver could
 * re-offer one head in a loop and have the device start requests without bound. */
static void test_busy_head_offered_again_breaks_the_ring(void **state)
{
    const char *why;
    fake_desc(&fq, 3, FAKE_BUF, 8, W, 0);
    fake_avail(&fq, 3);
    expect_chain(3, 0, 1);
    fake_avail(&fq, 3);
    assert_int_equal(pop(&why), VIRTQ_POP_BROKEN_RING);
    assert_string_equal(why, "available ring offers a head the device has not given back yet");
    assert_int_equal(virtqueue_in_flight(&fq.vq), 1);
    /* Once given back, the same offer is a chain like any other. */
    virtqueue_push(&fq.vq, 3, 0);
    assert_int_equal(virtqueue_in_flight(&fq.vq), 0);
    expect_chain(3, 0, 1);
    assert_int_equal(virtqueue_in_flight(&fq.vq), 1);
}

/* Every head held: nothing more can be popped until one is given back. */
static void test_in_flight_never_exceeds_the_queue_size(void **state)
{
    const char *why;
    for (unsigned i = 0; i < 16; i++) {
        fake_desc(&fq, i, FAKE_BUF + i * 8, 8, W, 0);
        fake_avail(&fq, (uint16_t)i);
        expect_chain((uint16_t)i, 0, 1);
    }
    assert_int_equal(virtqueue_in_flight(&fq.vq), 16);
    for (unsigned i = 0; i < 16; i++) {
        fake_avail(&fq, (uint16_t)i);
        assert_int_equal(pop(&why), VIRTQ_POP_BROKEN_RING);
        fq.avail_idx--; /* take the offer back, try the next head */
    }
    assert_int_equal(virtqueue_in_flight(&fq.vq), 16);
}

/* The driver may make a whole queue's worth available at once: idx exactly size ahead. */
static void test_full_avail_ring_is_not_broken(void **state)
{
    for (unsigned i = 0; i < 16; i++) {
        fake_desc(&fq, i, FAKE_BUF + i * 8, 8, W, 0);
        fake_avail(&fq, (uint16_t)(15 - i));
    }
    for (unsigned i = 0; i < 16; i++)
        expect_chain((uint16_t)(15 - i), 0, 1);
    const char *why;
    assert_int_equal(pop(&why), VIRTQ_POP_EMPTY);
}

/* §2.7.6: "A driver MUST NOT decrement the available idx". */
static void test_avail_index_going_backwards(void **state)
{
    for (unsigned i = 0; i < 2; i++) {
        fake_desc(&fq, i, FAKE_BUF, 8, 0, 0);
        fake_avail(&fq, (uint16_t)i);
        expect_chain((uint16_t)i, 1, 0);
    }
    fake_avail_ring(&fq)->idx = 1;
    const char *why;
    assert_int_equal(pop(&why), VIRTQ_POP_BROKEN_RING);
    assert_non_null(why);
}

/* 65540 chains through a 16-entry queue, driven only through the API: the avail, used and
 * event indices wrap past 65535. With used_event = 65535 the driver asks for exactly one
 * interrupt, when the entry at used index 65535 is written (§2.7.7.2). */
static void test_event_idx_across_65535(void **state)
{
    const char *why;
    *used_event() = 0;
    unsigned interrupts = 0, interrupt_at = 0;
    for (unsigned n = 0; n < 65540; n++) {
        uint16_t head = (uint16_t)(n % 16);
        fake_desc(&fq, head, FAKE_BUF + head * 8, 8, W, 0);
        fake_avail(&fq, head);
        assert_int_equal(pop(&why), VIRTQ_POP_CHAIN);
        assert_int_equal(*avail_event(), (uint16_t)(n + 1));
        virtqueue_push(&fq.vq, head, n);
        if (n == 0) {
            /* The entry at used index 0 == used_event 0: the device MUST notify. */
            assert_true(virtqueue_should_interrupt(&fq.vq));
            *used_event() = 65535;
            continue;
        }
        if (virtqueue_should_interrupt(&fq.vq)) {
            interrupts++;
            interrupt_at = n;
        }
    }
    assert_int_equal(interrupts, 1);
    assert_int_equal(interrupt_at, 65535);
    assert_int_equal(fake_used(&fq)->idx, (uint16_t)65540);
    assert_int_equal(fake_used(&fq)->ring[65539 % 16].id, 65539 % 16);
    assert_int_equal(fake_used(&fq)->ring[65539 % 16].len, 65539);
    assert_int_equal(pop(&why), VIRTQ_POP_EMPTY);
    assert_int_equal(*avail_event(), (uint16_t)65540);
}

/* With EVENT_IDX pushes are batched: one check covers several entries and fires if any of
 * them sat at used_event. */
static void test_event_idx_batches(void **state)
{
    const char *why;
    for (unsigned i = 0; i < 5; i++) {
        fake_desc(&fq, i, FAKE_BUF, 8, W, 0);
        fake_avail(&fq, (uint16_t)i);
        assert_int_equal(pop(&why), VIRTQ_POP_CHAIN);
    }
    *used_event() = 0;
    virtqueue_push(&fq.vq, 0, 8);
    assert_true(virtqueue_should_interrupt(&fq.vq));
    *used_event() = 3;
    virtqueue_push(&fq.vq, 1, 8); /* entries at 1 and 2 */
    virtqueue_push(&fq.vq, 2, 8);
    assert_false(virtqueue_should_interrupt(&fq.vq));
    virtqueue_push(&fq.vq, 3, 8); /* entries at 3 and 4: 3 is used_event */
    virtqueue_push(&fq.vq, 4, 8);
    assert_true(virtqueue_should_interrupt(&fq.vq));
}

/* §2.7.7.2 with EVENT_IDX: "The device MUST ignore the lower bit of flags". */
static void test_event_idx_ignores_no_interrupt_flag(void **state)
{
    const char *why;
    fake_desc(&fq, 0, FAKE_BUF, 8, W, 0);
    fake_avail(&fq, 0);
    assert_int_equal(pop(&why), VIRTQ_POP_CHAIN);
    fake_avail_ring(&fq)->flags = VRING_AVAIL_F_NO_INTERRUPT;
    *used_event() = 0;
    virtqueue_push(&fq.vq, 0, 8);
    assert_true(virtqueue_should_interrupt(&fq.vq));
}

/* §2.7.7.2 without EVENT_IDX: used_event is ignored and flags 0 means "MUST send" after
 * every push. */
static void test_without_event_idx_every_push_interrupts(void **state)
{
    const char *why;
    *used_event() = 1000;
    for (unsigned i = 0; i < 3; i++) {
        fake_desc(&fq, i, FAKE_BUF, 8, W, 0);
        fake_avail(&fq, (uint16_t)i);
        assert_int_equal(pop(&why), VIRTQ_POP_CHAIN);
        virtqueue_push(&fq.vq, (uint16_t)i, 8);
        assert_true(virtqueue_should_interrupt(&fq.vq));
    }
    /* Nor does the device touch avail_event when EVENT_IDX is off. */
    assert_int_equal(*avail_event(), 0);
}

static void test_unpop_serves_chains_again_in_order(void **state)
{
    const char *why;
    for (unsigned i = 0; i < 3; i++) {
        fake_desc(&fq, i + 4, FAKE_BUF, 8, W, 0);
        fake_avail(&fq, (uint16_t)(i + 4));
        assert_int_equal(pop(&why), VIRTQ_POP_CHAIN);
    }
    assert_int_equal(*avail_event(), 3);
    assert_int_equal(virtqueue_in_flight(&fq.vq), 3);
    virtqueue_unpop(&fq.vq, 2);
    assert_int_equal(virtqueue_in_flight(&fq.vq), 1); /* 5 and 6 are the driver's again */
    assert_true(virtqueue_has_available(&fq.vq));
    /* Still 3: the driver, having made 1 and 2 available, must ring for the next one (at 3);
     * an avail_event moved back to 1 would never be crossed again, and a device waiting for
     * more buffers would wait forever. */
    assert_int_equal(*avail_event(), 3);
    expect_chain(5, 0, 1);
    expect_chain(6, 0, 1);
    assert_int_equal(pop(&why), VIRTQ_POP_EMPTY);
}

/* §2.7 sizes: descriptor table 16*size, driver area 6+2*size (used_event included), device
 * area 6+8*size (avail_event included). A ring ending at the last byte of RAM fits; two bytes
 * more do not. */
static void test_enable_ring_sizes_at_the_end_of_ram(void **state)
{
    static const struct {
        uint64_t desc, avail, used;
        int result;
    } cases[] = {
        {FAKE_RAM - 16 * 16, FAKE_AVAIL, FAKE_USED, 0},
        {FAKE_RAM - 16 * 15, FAKE_AVAIL, FAKE_USED, -EINVAL},
        {FAKE_DESC, FAKE_RAM - (6 + 2 * 16), FAKE_USED, 0},
        {FAKE_DESC, FAKE_RAM - (4 + 2 * 16), FAKE_USED, -EINVAL},  /* no room for used_event */
        {FAKE_DESC, FAKE_AVAIL, FAKE_RAM - (8 + 8 * 16), 0},       /* 4-aligned, 2 bytes spare */
        {FAKE_DESC, FAKE_AVAIL, FAKE_RAM - (4 + 8 * 16), -EINVAL}, /* no room for avail_event */
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct virtqueue vq;
        const char *why = NULL;
        virtqueue_reset(&vq, &fq.mem, 16);
        vq.desc_gpa = cases[i].desc;
        vq.avail_gpa = cases[i].avail;
        vq.used_gpa = cases[i].used;
        assert_int_equal(virtqueue_enable(&vq, true, true, &why), cases[i].result);
        assert_int_equal(vq.ready, cases[i].result == 0);
        if (cases[i].result)
            assert_string_equal(why, "a ring lies outside guest RAM");
    }
}

/* §2.7 alignments: descriptors 16, driver area 2, device area 4. */
static void test_enable_alignment(void **state)
{
    static const struct {
        uint64_t desc, avail, used;
        int result;
    } cases[] = {
        {FAKE_DESC, FAKE_AVAIL + 2, FAKE_USED + 4, 0},
        {FAKE_DESC, FAKE_AVAIL + 1, FAKE_USED, -EINVAL},
        {FAKE_DESC, FAKE_AVAIL, FAKE_USED + 2, -EINVAL},
        {FAKE_DESC + 4, FAKE_AVAIL, FAKE_USED, -EINVAL},
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct virtqueue vq;
        const char *why = NULL;
        virtqueue_reset(&vq, &fq.mem, 16);
        vq.desc_gpa = cases[i].desc;
        vq.avail_gpa = cases[i].avail;
        vq.used_gpa = cases[i].used;
        assert_int_equal(virtqueue_enable(&vq, false, false, &why), cases[i].result);
        assert_int_equal(vq.ready, cases[i].result == 0);
    }
}

/* Guest RAM larger than the 3 GiB below the MMIO hole: the host mapping is contiguous across
 * the hole, guest-physical RAM is not. Nothing may straddle [3 GiB, 4 GiB). */
static void test_buffers_around_the_mmio_hole(void **state)
{
    struct guest_mem big;
    assert_int_equal(guest_mem_init(&big, GUEST_MMIO_HOLE_START + (2 << 20), NULL), 0);
    struct virtqueue vq;
    virtqueue_reset(&vq, &big, 16);
    vq.desc_gpa = FAKE_DESC;
    vq.avail_gpa = FAKE_AVAIL;
    vq.used_gpa = FAKE_USED;
    const char *why = NULL;
    assert_int_equal(virtqueue_enable(&vq, false, true, &why), 0);
    uint8_t *ram = big.mapping;
    struct vring_desc *desc = (struct vring_desc *)(ram + FAKE_DESC);
    struct vring_avail *avail = (struct vring_avail *)(ram + FAKE_AVAIL);
    static const struct {
        uint64_t addr;
        uint32_t len;
        uint16_t flags;
        enum virtq_pop_result result;
        uint64_t host_offset;
    } cases[] = {
        {GUEST_MMIO_HOLE_START - 8, 8, 0, VIRTQ_POP_CHAIN, GUEST_MMIO_HOLE_START - 8},
        {GUEST_MMIO_HOLE_START - 8, 16, 0, VIRTQ_POP_BAD_CHAIN, 0}, /* runs into the hole */
        {GUEST_MMIO_HOLE_START, 8, W, VIRTQ_POP_BAD_CHAIN, 0},
        {GUEST_MMIO_HOLE_END - 8, 16, W, VIRTQ_POP_BAD_CHAIN, 0}, /* ends in high RAM */
        {GUEST_MMIO_HOLE_END, 8, W, VIRTQ_POP_CHAIN, GUEST_MMIO_HOLE_START},
        {GUEST_MMIO_HOLE_END + (2 << 20) - 4, 4, W, VIRTQ_POP_CHAIN,
         GUEST_MMIO_HOLE_START + (2 << 20) - 4},
        {GUEST_MMIO_HOLE_END + (2 << 20) - 4, 8, W, VIRTQ_POP_BAD_CHAIN, 0},
        {GUEST_MMIO_HOLE_START - 16, 32, I, VIRTQ_POP_BAD_CHAIN, 0}, /* an indirect table */
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        desc[i] = (struct vring_desc){
            .addr = cases[i].addr, .len = cases[i].len, .flags = cases[i].flags};
        avail->ring[i % 16] = (uint16_t)i;
        avail->idx = (uint16_t)(i + 1);
        assert_int_equal(virtqueue_pop(&vq, &chain, &why), cases[i].result);
        if (cases[i].result == VIRTQ_POP_CHAIN)
            assert_ptr_equal(chain.iov[0].iov_base, ram + cases[i].host_offset);
        virtqueue_push(&vq, chain.head, 0);
    }
    guest_mem_destroy(&big);
}

/* Rings in RAM above 4 GiB are fine; a ring across the hole is not. */
static void test_rings_around_the_mmio_hole(void **state)
{
    struct guest_mem big;
    assert_int_equal(guest_mem_init(&big, GUEST_MMIO_HOLE_START + (2 << 20), NULL), 0);
    struct virtqueue vq;
    const char *why = NULL;
    virtqueue_reset(&vq, &big, 16);
    vq.desc_gpa = GUEST_MMIO_HOLE_END;
    vq.avail_gpa = GUEST_MMIO_HOLE_END + 0x1000;
    vq.used_gpa = GUEST_MMIO_HOLE_END + 0x2000;
    assert_int_equal(virtqueue_enable(&vq, false, false, &why), 0);
    assert_ptr_equal(vq.desc, (uint8_t *)big.mapping + GUEST_MMIO_HOLE_START);

    virtqueue_reset(&vq, &big, 16);
    vq.desc_gpa = GUEST_MMIO_HOLE_START - 128; /* 256 bytes of descriptors */
    vq.avail_gpa = FAKE_AVAIL;
    vq.used_gpa = FAKE_USED;
    assert_int_equal(virtqueue_enable(&vq, false, false, &why), -EINVAL);
    guest_mem_destroy(&big);
}

/* §4.2.2.1: "The device MUST NOT access virtual queue contents when QueueReady is zero."
 * A queue stopped with QueueReady = 0 keeps its ring addresses; a completion that arrives
 * afterwards must not reach its used ring. */
static void test_stopped_queue_is_left_alone(void **state)
{
    const char *why;
    fake_desc(&fq, 0, FAKE_BUF, 8, W, 0);
    fake_avail(&fq, 0);
    assert_int_equal(pop(&why), VIRTQ_POP_CHAIN);
    fq.vq.ready = false; /* what the transport does for QueueReady = 0 */
    fake_desc(&fq, 1, FAKE_BUF, 8, W, 0);
    fake_avail(&fq, 1);
    assert_int_equal(pop(&why), VIRTQ_POP_EMPTY);
    assert_false(virtqueue_has_available(&fq.vq));
    virtqueue_push(&fq.vq, 0, 8);
    assert_false(virtqueue_should_interrupt(&fq.vq));
    assert_int_equal(fake_used(&fq)->idx, 0);
    assert_int_equal(fake_used(&fq)->ring[0].len, 0);
}

/* The same for a queue that was never enabled (or was reset): it has no rings to write.
 * Last in the list because an implementation that writes anyway crashes here. */
static void test_queue_never_enabled_is_left_alone(void **state)
{
    struct virtqueue vq;
    const char *why = NULL;
    virtqueue_reset(&vq, &fq.mem, 16);
    assert_int_equal(virtqueue_pop(&vq, &chain, &why), VIRTQ_POP_EMPTY);
    assert_false(virtqueue_has_available(&vq));
    virtqueue_push(&vq, 0, 8);
    assert_false(virtqueue_should_interrupt(&vq));
}

/* Doorbell suppression (§2.7.10) without EVENT_IDX: NO_NOTIFY while quiet, cleared by wake,
 * which reports chains that arrived meanwhile (no doorbell will come for them). */
static void test_quiet_and_wake_with_flags(void **state)
{
    fake_desc(&fq, 0, FAKE_BUF, 8, W, 0);
    fake_avail(&fq, 0);
    virtqueue_quiet(&fq.vq);
    assert_int_equal(fake_used(&fq)->flags, VRING_USED_F_NO_NOTIFY);
    expect_chain(0, 0, 1);
    assert_int_equal(fake_used(&fq)->flags, VRING_USED_F_NO_NOTIFY);
    assert_false(virtqueue_wake(&fq.vq)); /* nothing new */
    assert_int_equal(fake_used(&fq)->flags, 0);

    virtqueue_quiet(&fq.vq);
    fake_desc(&fq, 1, FAKE_BUF, 8, W, 0);
    fake_avail(&fq, 1); /* the driver adds a chain and, seeing NO_NOTIFY, does not ring */
    assert_true(virtqueue_wake(&fq.vq));
    assert_int_equal(fake_used(&fq)->flags, 0);
    expect_chain(1, 0, 1);

    /* Re-enabling the queue starts it awake, whatever it was. */
    virtqueue_quiet(&fq.vq);
    const char *why = NULL;
    assert_int_equal(virtqueue_enable(&fq.vq, false, true, &why), 0);
    assert_false(fq.vq.quiet);
    assert_int_equal(fake_used(&fq)->flags, 0);
}

/* With EVENT_IDX, quiet leaves avail_event behind the chains the device takes (the driver,
 * having crossed it, does not notify); wake sets it to the next slot. The flag is not used. */
static void test_quiet_and_wake_with_event_idx(void **state)
{
    const char *why;
    fake_desc(&fq, 0, FAKE_BUF, 8, W, 0);
    fake_avail(&fq, 0);
    expect_chain(0, 0, 1);
    assert_int_equal(*avail_event(), 1);
    virtqueue_quiet(&fq.vq);
    for (uint16_t i = 1; i < 4; i++) {
        fake_desc(&fq, i, FAKE_BUF, 8, W, 0);
        fake_avail(&fq, i);
        expect_chain(i, 0, 1);
    }
    assert_int_equal(pop(&why), VIRTQ_POP_EMPTY);
    assert_int_equal(*avail_event(), 1); /* not moved while quiet */
    assert_int_equal(fake_used(&fq)->flags, 0);
    assert_false(virtqueue_wake(&fq.vq));
    assert_int_equal(*avail_event(), 4);

    virtqueue_quiet(&fq.vq);
    fake_desc(&fq, 4, FAKE_BUF, 8, W, 0);
    fake_avail(&fq, 4);
    assert_true(virtqueue_wake(&fq.vq));
    expect_chain(4, 0, 1);
    assert_int_equal(*avail_event(), 5);
}

int main(void)
{
#define T(fn)  cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define TE(fn) cmocka_unit_test_setup_teardown(fn, setup_event_idx, teardown)
    const struct CMUnitTest tests[] = {
        T(test_chain_of_exactly_queue_size),
        T(test_queue_of_one),
        T(test_write_flag_on_indirect_descriptor_is_ignored),
        T(test_writable_direct_then_readable_indirect),
        T(test_indirect_next_past_its_table),
        T(test_loop_inside_indirect_table),
        T(test_unaligned_indirect_table),
        T(test_indirect_table_of_queue_size_entries),
        T(test_buffers_at_the_end_of_ram),
        T(test_total_length_exactly_at_the_cap),
        T(test_device_writes_are_marked_for_snapshots),
        T(test_device_writes_are_marked_again_at_the_push),
        cmocka_unit_test_setup_teardown(test_more_buffers_than_iovecs, setup_256, teardown),
        T(test_bad_chain_is_given_back),
        T(test_busy_head_offered_again_breaks_the_ring),
        T(test_in_flight_never_exceeds_the_queue_size),
        T(test_full_avail_ring_is_not_broken),
        T(test_avail_index_going_backwards),
        TE(test_event_idx_across_65535),
        TE(test_event_idx_batches),
        TE(test_event_idx_ignores_no_interrupt_flag),
        T(test_without_event_idx_every_push_interrupts),
        TE(test_unpop_serves_chains_again_in_order),
        T(test_enable_ring_sizes_at_the_end_of_ram),
        T(test_enable_alignment),
        T(test_buffers_around_the_mmio_hole),
        T(test_rings_around_the_mmio_hole),
        T(test_quiet_and_wake_with_flags),
        TE(test_quiet_and_wake_with_event_idx),
        T(test_stopped_queue_is_left_alone),
        T(test_queue_never_enabled_is_left_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
