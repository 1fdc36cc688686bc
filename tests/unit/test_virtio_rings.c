/* Unit tests for the split-virtqueue walker: direct, chained and indirect chains, the used
 * ring, interrupt suppression (NO_INTERRUPT and EVENT_IDX), and every hostile chain shape
 * ending in its defined result (a bad chain or a broken ring), never a crash. */
#include <errno.h>
#include <setjmp.h>
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

/* Pops one chain and expects it to be bad with this reason. */
static void expect_bad(const char *reason)
{
    const char *why;
    assert_int_equal(pop(&why), VIRTQ_POP_BAD_CHAIN);
    assert_string_equal(why, reason);
}

static void test_empty_queue(void **state)
{
    const char *why;
    assert_int_equal(pop(&why), VIRTQ_POP_EMPTY);
    assert_false(virtqueue_has_available(&fq.vq));
}

static void test_chain_readable_then_writable(void **state)
{
    fake_desc(&fq, 3, FAKE_BUF, 16, N, 7);
    fake_desc(&fq, 7, FAKE_BUF + 0x1000, 512, N | W, 9);
    fake_desc(&fq, 9, FAKE_BUF + 0x2000, 1, W, 0);
    fake_avail(&fq, 3);
    assert_true(virtqueue_has_available(&fq.vq));
    const char *why;
    assert_int_equal(pop(&why), VIRTQ_POP_CHAIN);
    assert_int_equal(chain.head, 3);
    assert_int_equal(chain.nreadable, 1);
    assert_int_equal(chain.nwritable, 2);
    assert_int_equal(chain.readable_len, 16);
    assert_int_equal(chain.writable_len, 513);
    assert_ptr_equal(chain.iov[0].iov_base, fake_ptr(&fq, FAKE_BUF));
    assert_ptr_equal(chain.iov[1].iov_base, fake_ptr(&fq, FAKE_BUF + 0x1000));
    assert_int_equal(chain.iov[2].iov_len, 1);

    virtqueue_push(&fq.vq, chain.head, 513);
    struct vring_used *used = fake_used(&fq);
    assert_int_equal(used->idx, 1);
    assert_int_equal(used->ring[0].id, 3);
    assert_int_equal(used->ring[0].len, 513);
    assert_int_equal(pop(&why), VIRTQ_POP_EMPTY);
}

static void test_several_chains_and_ring_wrap(void **state)
{
    const char *why;
    /* 40 chains through a 16-entry queue: the avail and used rings wrap twice. */
    for (unsigned n = 0; n < 40; n++) {
        uint16_t head = (uint16_t)(n % 16);
        fake_desc(&fq, head, FAKE_BUF + n * 8, 8, W, 0);
        fake_avail(&fq, head);
        assert_int_equal(pop(&why), VIRTQ_POP_CHAIN);
        assert_int_equal(chain.head, head);
        virtqueue_push(&fq.vq, head, n);
        assert_int_equal(fake_used(&fq)->ring[n % 16].len, n);
    }
    assert_int_equal(fake_used(&fq)->idx, 40);
}

static void test_indirect_table(void **state)
{
    fake_desc_at(&fq, FAKE_INDIRECT, 0, FAKE_BUF, 16, N, 1);
    fake_desc_at(&fq, FAKE_INDIRECT, 1, FAKE_BUF + 0x100, 4096, N | W, 2);
    fake_desc_at(&fq, FAKE_INDIRECT, 2, FAKE_BUF + 0x2000, 1, W, 0);
    fake_desc(&fq, 5, FAKE_INDIRECT, 3 * 16, I, 0);
    fake_avail(&fq, 5);
    const char *why;
    assert_int_equal(pop(&why), VIRTQ_POP_CHAIN);
    assert_int_equal(chain.head, 5);
    assert_int_equal(chain.nreadable, 1);
    assert_int_equal(chain.nwritable, 2);
    assert_int_equal(chain.writable_len, 4097);
}

static void test_direct_descriptors_before_an_indirect_one(void **state)
{
    fake_desc_at(&fq, FAKE_INDIRECT, 0, FAKE_BUF + 0x100, 8, W, 0);
    fake_desc(&fq, 0, FAKE_BUF, 16, N, 1);
    fake_desc(&fq, 1, FAKE_INDIRECT, 16, I, 0);
    fake_avail(&fq, 0);
    const char *why;
    assert_int_equal(pop(&why), VIRTQ_POP_CHAIN);
    assert_int_equal(chain.nreadable, 1);
    assert_int_equal(chain.nwritable, 1);
}

static void test_descriptor_loop(void **state)
{
    fake_desc(&fq, 0, FAKE_BUF, 8, N, 1);
    fake_desc(&fq, 1, FAKE_BUF, 8, N, 0);
    fake_avail(&fq, 0);
    expect_bad("descriptor loop (chain longer than its table)");
    /* The bad chain was consumed: the next one is served. */
    fake_desc(&fq, 2, FAKE_BUF, 8, 0, 0);
    fake_avail(&fq, 2);
    const char *why;
    assert_int_equal(pop(&why), VIRTQ_POP_CHAIN);
    assert_int_equal(chain.head, 2);
}

static void test_self_loop_in_indirect_table(void **state)
{
    fake_desc_at(&fq, FAKE_INDIRECT, 0, FAKE_BUF, 8, N, 0);
    fake_desc(&fq, 0, FAKE_INDIRECT, 16, I, 0);
    fake_avail(&fq, 0);
    expect_bad("descriptor loop (chain longer than its table)");
}

static void test_addresses_outside_ram(void **state)
{
    fake_desc(&fq, 0, FAKE_RAM - 4, 8, 0, 0); /* runs past the end of RAM */
    fake_avail(&fq, 0);
    expect_bad("buffer outside guest RAM");
    fake_desc(&fq, 1, UINT64_MAX - 3, 8, 0, 0); /* addr + len wraps around */
    fake_avail(&fq, 1);
    expect_bad("buffer outside guest RAM");
    fake_desc(&fq, 2, GUEST_MMIO_HOLE_START, 8, W, 0); /* device memory, not RAM */
    fake_avail(&fq, 2);
    expect_bad("buffer outside guest RAM");
}

static void test_total_length_cap(void **state)
{
    /* Five 16 MiB buffers (all of RAM each time) add up to 80 MiB > 64 MiB. */
    for (unsigned i = 0; i < 5; i++)
        fake_desc(&fq, i, 0, (uint32_t)FAKE_RAM, i < 4 ? N : 0, (uint16_t)(i + 1));
    fake_avail(&fq, 0);
    expect_bad("chain is longer than 64 MiB");
}

static void test_bad_indirect_tables(void **state)
{
    fake_desc_at(&fq, FAKE_INDIRECT, 0, FAKE_INDIRECT + 0x100, 16, I, 0);
    fake_desc(&fq, 0, FAKE_INDIRECT, 16, I, 0);
    fake_avail(&fq, 0);
    expect_bad("indirect descriptor inside an indirect table");

    fake_desc(&fq, 1, FAKE_INDIRECT, 24, I, 0);
    fake_avail(&fq, 1);
    expect_bad("indirect table length is not a non-zero multiple of 16");

    fake_desc(&fq, 2, FAKE_INDIRECT, 0, I, 0);
    fake_avail(&fq, 2);
    expect_bad("indirect table length is not a non-zero multiple of 16");

    fake_desc(&fq, 3, FAKE_RAM - 16, 32, I, 0);
    fake_avail(&fq, 3);
    expect_bad("indirect table outside guest RAM");

    fake_desc(&fq, 4, FAKE_INDIRECT, 16, I | N, 5);
    fake_avail(&fq, 4);
    expect_bad("indirect descriptor with the NEXT flag");

    fake_desc(&fq, 5, FAKE_INDIRECT, 17 * 16, I, 0); /* more entries than the queue size */
    fake_avail(&fq, 5);
    expect_bad("indirect table holds more descriptors than the queue size");
}

static void test_indirect_not_negotiated(void **state)
{
    fake_queue_destroy(&fq);
    assert_int_equal(fake_queue_init(&fq, 16, false, false), 0);
    fake_desc_at(&fq, FAKE_INDIRECT, 0, FAKE_BUF, 8, 0, 0);
    fake_desc(&fq, 0, FAKE_INDIRECT, 16, I, 0);
    fake_avail(&fq, 0);
    expect_bad("indirect descriptor, but VIRTIO_RING_F_INDIRECT_DESC was not negotiated");
}

static void test_zero_length_and_ordering(void **state)
{
    fake_desc(&fq, 0, FAKE_BUF, 0, 0, 0);
    fake_avail(&fq, 0);
    expect_bad("zero-length descriptor");

    fake_desc(&fq, 1, FAKE_BUF, 8, W | N, 2);
    fake_desc(&fq, 2, FAKE_BUF, 8, 0, 0);
    fake_avail(&fq, 1);
    expect_bad("device-readable buffer after a device-writable one");

    fake_desc(&fq, 3, FAKE_BUF, 8, N, 16); /* next index == queue size */
    fake_avail(&fq, 3);
    expect_bad("next descriptor index out of range");
}

static void test_broken_rings(void **state)
{
    const char *why;
    fake_avail(&fq, 16); /* a head index == queue size cannot even be given back */
    assert_int_equal(pop(&why), VIRTQ_POP_BROKEN_RING);
    assert_string_equal(why, "available ring names a descriptor past the queue size");

    fake_avail_ring(&fq)->idx = (uint16_t)(fq.vq.last_avail + 17);
    assert_int_equal(pop(&why), VIRTQ_POP_BROKEN_RING);
    assert_string_equal(why, "available index ran more than the queue size ahead");
}

static void test_enable_checks(void **state)
{
    struct virtqueue vq;
    const char *why = NULL;
    virtqueue_reset(&vq, &fq.mem, 64);
    vq.desc_gpa = FAKE_DESC;
    vq.avail_gpa = FAKE_AVAIL;
    vq.used_gpa = FAKE_USED;
    vq.size = 48;
    assert_int_equal(virtqueue_enable(&vq, false, false, &why), -EINVAL);
    assert_string_equal(why, "queue size is not a power of 2 no larger than QueueNumMax");
    vq.size = 128;
    assert_int_equal(virtqueue_enable(&vq, false, false, &why), -EINVAL);
    vq.size = 0;
    assert_int_equal(virtqueue_enable(&vq, false, false, &why), -EINVAL);
    vq.size = 64;
    vq.desc_gpa = FAKE_DESC + 8;
    assert_int_equal(virtqueue_enable(&vq, false, false, &why), -EINVAL);
    assert_string_equal(why, "ring address misaligned (descriptors need 16 bytes, driver area 2, "
                             "device area 4)");
    vq.desc_gpa = FAKE_DESC;
    vq.used_gpa = FAKE_RAM - 8; /* the used ring runs past RAM */
    assert_int_equal(virtqueue_enable(&vq, false, false, &why), -EINVAL);
    assert_string_equal(why, "a ring lies outside guest RAM");
    assert_false(vq.ready);
    vq.used_gpa = FAKE_USED;
    assert_int_equal(virtqueue_enable(&vq, false, false, &why), 0);
    assert_true(vq.ready);
}

static void test_no_interrupt_flag(void **state)
{
    fake_desc(&fq, 0, FAKE_BUF, 8, W, 0);
    fake_avail(&fq, 0);
    const char *why;
    assert_int_equal(pop(&why), VIRTQ_POP_CHAIN);
    virtqueue_push(&fq.vq, 0, 8);
    assert_true(virtqueue_should_interrupt(&fq.vq));
    fake_avail_ring(&fq)->flags = VRING_AVAIL_F_NO_INTERRUPT;
    virtqueue_push(&fq.vq, 0, 8);
    assert_false(virtqueue_should_interrupt(&fq.vq));
}

static uint16_t *avail_event(void)
{
    return (uint16_t *)&fake_used(&fq)->ring[fq.vq.size];
}
static uint16_t *used_event(void)
{
    return &fake_avail_ring(&fq)->ring[fq.vq.size];
}

static void test_event_idx(void **state)
{
    const char *why;
    for (unsigned i = 0; i < 3; i++) {
        fake_desc(&fq, i, FAKE_BUF, 8, W, 0);
        fake_avail(&fq, (uint16_t)i);
    }
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(pop(&why), VIRTQ_POP_CHAIN);
    assert_int_equal(pop(&why), VIRTQ_POP_EMPTY);
    /* The device asks to be kicked when the driver makes entry 3 available. */
    assert_int_equal(*avail_event(), 3);

    /* The driver wants an interrupt once used->idx passes 1 (used_event = 1). */
    *used_event() = 1;
    virtqueue_push(&fq.vq, 0, 8);                    /* used idx 1: event 1 not yet passed */
    assert_true(virtqueue_should_interrupt(&fq.vq)); /* the first one always signals */
    virtqueue_push(&fq.vq, 1, 8);                    /* idx 2: crosses used_event 1 */
    assert_true(virtqueue_should_interrupt(&fq.vq));
    virtqueue_push(&fq.vq, 2, 8); /* idx 3: used_event 1 was already passed */
    assert_false(virtqueue_should_interrupt(&fq.vq));
    *used_event() = 3;
    assert_false(virtqueue_should_interrupt(&fq.vq)); /* nothing new since the last check */
}

static void test_event_idx_wraps(void **state)
{
    const char *why;
    /* Run the indices up to just below 65536 and across it. */
    fq.vq.last_avail = fq.vq.used_idx = fq.vq.signalled = 65534;
    fq.vq.signalled_valid = true;
    fq.avail_idx = 65534;
    fake_used(&fq)->idx = 65534;
    *used_event() = 65535;
    for (unsigned i = 0; i < 3; i++) {
        fake_desc(&fq, i, FAKE_BUF, 8, W, 0);
        fake_avail(&fq, (uint16_t)i);
        assert_int_equal(pop(&why), VIRTQ_POP_CHAIN);
        virtqueue_push(&fq.vq, (uint16_t)i, 8);
    }
    assert_int_equal(fake_used(&fq)->idx, 1);        /* 65534 + 3 */
    assert_true(virtqueue_should_interrupt(&fq.vq)); /* 65535 lies in (65534, 1] */
    assert_int_equal(*avail_event(), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_readable_then_writable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_chains_and_ring_wrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_descriptors_before_an_indirect_one, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_descriptor_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_self_loop_in_indirect_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_addresses_outside_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_total_length_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_indirect_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect_not_negotiated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_length_and_ordering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_rings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enable_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_interrupt_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_idx, setup_event_idx, teardown),
        cmocka_unit_test_setup_teardown(test_event_idx_wraps, setup_event_idx, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
