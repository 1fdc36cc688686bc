/* Unit tests for virtio-balloon on a real transport without KVM: inflated pages go back to the
 * host (the memfd's blocks drop, the pages read zero and are marked for snapshots), every PFN
 * outside RAM, repeated or past the VM's size is ignored and counted, bad chains are refused,
 * statistics are parsed and held, free page reports are discarded, and the state round-trips. */
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "kiln/devices/virtio_balloon.h"
#include "kiln/util/page_bitmap.h"
#include "virtio_fake.h"

#define PAGE     4096ULL
#define BUF      0x100000ULL /* PFN lists and statistics buffers */
#define DATA     0x400000ULL /* pages the tests inflate */
#define RAM_PFNS (FAKE_RAM / PAGE)

/* Queue q's rings: 16 entries each, one 16 KiB block per queue. */
static uint64_t q_desc(unsigned q)
{
    return 0x10000ULL + q * 0x4000;
}
static uint64_t q_avail(unsigned q)
{
    return q_desc(q) + 0x2000;
}
static uint64_t q_used(unsigned q)
{
    return q_desc(q) + 0x3000;
}

static struct {
    struct guest_mem mem;
    struct log log;
    struct virtio_balloon b;
    struct virtio_mmio t;
    uint16_t avail_idx[4];
    unsigned config_irqs;
} fx;

static void count_irq(void *opaque)
{
    fx.config_irqs++;
}
static void no_kick(void *opaque, unsigned q)
{
}

static void *gpa(uint64_t a)
{
    return guest_mem_ptr(&fx.mem, a, 1);
}

static struct vring_used *used(unsigned q)
{
    return gpa(q_used(q));
}

/* Brings the device up as a driver would on ram bytes of RAM, with the features given (low
 * 32 bits). */
static void start_with_ram(const struct virtio_balloon_options *options, uint32_t features,
                           uint64_t ram)
{
    memset(&fx, 0, sizeof(fx));
    fx.log.level = LOG_ERROR;
    fx.log.out = fopen("/dev/null", "w");
    assert_int_equal(guest_mem_init(&fx.mem, ram, NULL), 0);
    /* The rings and buffers are allocated now, so the memfd's blocks change only by what the
     * device gives back. */
    memset(gpa(0), 0, 2 << 20);
    assert_int_equal(virtio_balloon_init(&fx.b, options, &fx.mem, &fx.log, NULL), 0);
    struct virtio_mmio_host host = {.raise_irq = count_irq, .kick = no_kick};
    virtio_mmio_init(&fx.t, &fx.b.vdev, &host, 0xd0000000);
    uint32_t s = fake_mmio_negotiate(&fx.t, features);
    for (unsigned q = 0; q < fx.b.vdev.info.num_queues; q++)
        fake_mmio_queue(&fx.t, q, q_desc(q), q_avail(q), q_used(q));
    fake_mmio_write(&fx.t, VIRTIO_MMIO_STATUS, s | VIRTIO_CONFIG_S_DRIVER_OK);
}

static void start(const struct virtio_balloon_options *options, uint32_t features)
{
    start_with_ram(options, features, FAKE_RAM);
}

static const struct virtio_balloon_options all_options = {
    .target_pages = 0, .stats_seconds = 1, .free_page_reporting = true, .deflate_on_oom = true};
#define ALL_FEATURES                                                                               \
    ((1u << VIRTIO_BALLOON_F_STATS_VQ) | (1u << VIRTIO_BALLOON_F_REPORTING) |                      \
     (1u << VIRTIO_BALLOON_F_DEFLATE_ON_OOM))

static int setup(void **state)
{
    start(&all_options, ALL_FEATURES);
    return 0;
}

static int teardown(void **state)
{
    virtio_balloon_destroy(&fx.b);
    guest_mem_destroy(&fx.mem);
    fclose(fx.log.out);
    return 0;
}

/* One chain of one buffer on queue q, then its doorbell. */
static void offer(unsigned q, uint64_t addr, uint32_t len, uint16_t flags)
{
    uint16_t head = fx.avail_idx[q] % 16;
    struct vring_desc d = {.addr = addr, .len = len, .flags = flags};
    memcpy((uint8_t *)gpa(q_desc(q)) + head * sizeof(d), &d, sizeof(d));
    struct vring_avail *avail = gpa(q_avail(q));
    avail->ring[head] = head;
    avail->idx = ++fx.avail_idx[q];
    virtio_dev_handle_notify(&fx.b.vdev, q);
}

/* The PFN list at BUF, sent to queue q (0: inflate, 1: deflate). */
static void send_pfns(unsigned q, const uint32_t *pfns, unsigned n)
{
    memcpy(gpa(BUF), pfns, n * sizeof(*pfns));
    offer(q, BUF, n * 4, 0);
}

static uint64_t memfd_blocks(void)
{
    struct stat st;
    assert_int_equal(fstat(fx.mem.fd, &st), 0);
    return (uint64_t)st.st_blocks;
}

static struct virtio_balloon_counters counters(void)
{
    struct virtio_balloon_counters c;
    virtio_balloon_read_counters(&fx.b, &c);
    return c;
}

static void test_inflate_gives_pages_back(void **state)
{
    memset(gpa(DATA), 0xab, 8 * PAGE);
    uint64_t before = memfd_blocks();
    uint64_t scratch[RAM_PFNS / 64] = {0};
    guest_mem_take_written(&fx.mem, scratch); /* forget the set-up's marks */
    memset(scratch, 0, sizeof(scratch));
    /* Pages 0-3 and 6 of DATA, out of order: two runs. */
    uint32_t pfns[] = {DATA / PAGE + 3, DATA / PAGE + 0, DATA / PAGE + 1, DATA / PAGE + 2,
                       DATA / PAGE + 6};
    send_pfns(0, pfns, 5);
    assert_int_equal(used(0)->idx, 1);
    assert_int_equal(used(0)->ring[0].len, 0);
    /* The host holds 5 pages less (8 sectors a page), and they read zero. */
    assert_int_equal(before - memfd_blocks(), 5 * 8);
    for (unsigned i = 0; i < 8; i++)
        assert_int_equal(*(uint8_t *)gpa(DATA + i * PAGE), i < 4 || i == 6 ? 0 : 0xab);
    /* A diff snapshot or a migration sends them again. */
    guest_mem_take_written(&fx.mem, scratch);
    for (unsigned i = 0; i < 8; i++)
        assert_int_equal(page_bitmap_test(scratch, DATA / PAGE + i), i < 4 || i == 6);
    struct virtio_balloon_counters c = counters();
    assert_int_equal(c.inflated_pages, 5);
    assert_int_equal(c.discarded_pages, 5);
    assert_int_equal(c.bad_pfns + c.repeated_pfns + c.excess_pfns + c.discard_errors, 0);

    /* Deflate takes them out; the guest may use them at once. */
    uint32_t back[] = {DATA / PAGE + 0, DATA / PAGE + 6};
    send_pfns(1, back, 2);
    assert_int_equal(used(1)->idx, 1);
    struct virtio_balloon_info info;
    virtio_balloon_read_info(&fx.b, &info);
    assert_int_equal(info.pages_in_balloon, 3);
    assert_int_equal(info.counters.deflated_pages, 2);
    memset(gpa(DATA), 0x11, PAGE);
    assert_int_equal(*(uint8_t *)gpa(DATA + PAGE - 1), 0x11);
}

static void test_pfns_outside_ram_are_ignored(void **state)
{
    memset(gpa(FAKE_RAM - PAGE), 0xcd, PAGE);
    uint64_t before = memfd_blocks();
    /* Past RAM, in the MMIO hole, the LAPIC, the last 32-bit PFN. */
    uint32_t pfns[] = {RAM_PFNS, RAM_PFNS + 1, GUEST_MMIO_HOLE_START / PAGE, 0xfee00, 0xffffffff};
    send_pfns(0, pfns, 5);
    send_pfns(1, pfns, 5);
    assert_int_equal(used(0)->idx, 1);
    assert_int_equal(used(1)->idx, 1);
    struct virtio_balloon_counters c = counters();
    assert_int_equal(c.bad_pfns, 10);
    assert_int_equal(c.inflated_pages + c.discarded_pages, 0);
    assert_int_equal(memfd_blocks(), before);
    assert_int_equal(*(uint8_t *)gpa(FAKE_RAM - 1), 0xcd);
    assert_false(fx.b.vdev.status & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static void test_repeated_and_too_many_pfns(void **state)
{
    uint32_t twice[] = {DATA / PAGE, DATA / PAGE};
    send_pfns(0, twice, 2);
    send_pfns(0, twice, 1);
    uint32_t never[] = {DATA / PAGE + 1};
    send_pfns(1, never, 1);
    struct virtio_balloon_counters c = counters();
    assert_int_equal(c.inflated_pages, 1);
    assert_int_equal(c.repeated_pfns, 3);

    /* More PFNs in one buffer than the VM has pages: the rest is not even looked at. */
    unsigned n = RAM_PFNS + 10;
    uint32_t *many = gpa(BUF);
    for (unsigned i = 0; i < n; i++)
        many[i] = DATA / PAGE + 2;
    offer(0, BUF, n * 4, 0);
    c = counters();
    assert_int_equal(c.excess_pfns, 10);
    assert_int_equal(c.inflated_pages, 2);
    assert_int_equal(c.repeated_pfns, 3 + RAM_PFNS - 1);
    struct virtio_balloon_info info;
    virtio_balloon_read_info(&fx.b, &info);
    assert_int_equal(info.pages_in_balloon, 2);
}

static void test_bad_chains_are_refused(void **state)
{
    /* A buffer outside RAM: the ring walker refuses the chain, the device goes on. */
    offer(0, FAKE_RAM - 8, 64, 0);
    assert_int_equal(used(0)->idx, 1);
    assert_int_equal(virtio_dev_error_count(&fx.b.vdev), 1);
    /* An odd length: the whole PFN is taken, the stray bytes logged. */
    uint32_t pfn = DATA / PAGE;
    memcpy(gpa(BUF), &pfn, 4);
    offer(0, BUF, 6, 0);
    assert_int_equal(counters().inflated_pages, 1);
    assert_int_equal(virtio_dev_error_count(&fx.b.vdev), 2);
    /* Only writable buffers: nothing to read, nothing inflated. */
    offer(0, BUF, 64, VRING_DESC_F_WRITE);
    assert_int_equal(used(0)->idx, 3);
    assert_int_equal(counters().inflated_pages, 1);
    assert_false(fx.b.vdev.status & VIRTIO_CONFIG_S_NEEDS_RESET);
}

/* Statistics: 10-byte tag/value pairs; unknown tags are ignored; the buffer is held. */
static void test_statistics(void **state)
{
    uint8_t entries[3][10];
    const uint16_t tags[] = {5, 4, 99};
    const uint64_t values[] = {16ULL << 20, 3ULL << 20, 7};
    for (int i = 0; i < 3; i++) {
        memcpy(entries[i], &tags[i], 2);
        memcpy(entries[i] + 2, &values[i], 8);
    }
    memcpy(gpa(BUF), entries, sizeof(entries));
    offer(2, BUF, sizeof(entries), 0);
    assert_int_equal(used(2)->idx, 0); /* held until kiln wants new ones */
    struct virtio_balloon_info info;
    virtio_balloon_read_info(&fx.b, &info);
    assert_true(info.stats_enabled);
    assert_int_equal(info.stats_seen, (1u << 5) | (1u << 4));
    assert_int_equal(info.stats[5], 16ULL << 20);
    assert_int_equal(info.stats[4], 3ULL << 20);
    assert_int_equal(info.stats_updates, 1);
    assert_string_equal(virtio_balloon_stat_name(5), "total_memory");
    assert_string_equal(virtio_balloon_stat_name(0), "swap_in");
    assert_null(virtio_balloon_stat_name(VIRTIO_BALLOON_STAT_TAGS));
    virtio_balloon_request_stats(&fx.b);
    assert_int_equal(used(2)->idx, 1);
    virtio_balloon_request_stats(&fx.b); /* nothing held: nothing to give back */
    assert_int_equal(used(2)->idx, 1);
}

/* Free page reporting (queue 3 after the statistics queue): each range's pages are discarded;
 * a range outside RAM is a malformed chain. */
static void test_free_page_reports(void **state)
{
    memset(gpa(DATA), 0x5a, 16 * PAGE);
    uint64_t before = memfd_blocks();
    offer(3, DATA, 16 * PAGE, VRING_DESC_F_WRITE);
    assert_int_equal(used(3)->idx, 1);
    assert_int_equal(before - memfd_blocks(), 16 * 8);
    assert_int_equal(*(uint8_t *)gpa(DATA + 15 * PAGE), 0);
    struct virtio_balloon_counters c = counters();
    assert_int_equal(c.reported_pages, 16);
    assert_int_equal(c.discarded_pages, 16);
    offer(3, GUEST_MMIO_HOLE_START, 2 << 20, VRING_DESC_F_WRITE);
    offer(3, FAKE_RAM - PAGE, 2 << 20, VRING_DESC_F_WRITE);
    assert_int_equal(used(3)->idx, 3);
    assert_int_equal(counters().reported_pages, 16);
    assert_int_equal(virtio_dev_error_count(&fx.b.vdev), 2);
}

/* Linux reports up to 32 blocks of 4 MiB in one chain: 128 MiB, more than the 64 MiB other
 * devices take in a chain. Here 8 buffers of 16 MiB (the fixture's queues have 16 entries). */
static void test_a_128_mib_report(void **state)
{
    start_with_ram(&all_options, ALL_FEATURES, 256ULL << 20);
    struct vring_desc d[8];
    for (unsigned i = 0; i < 8; i++) {
        uint64_t at = (64ULL << 20) + i * (16ULL << 20);
        memset(gpa(at), 0x5a, PAGE); /* one page of each block in use, then reported free */
        d[i] = (struct vring_desc){.addr = at,
                                   .len = 16 << 20,
                                   .flags = VRING_DESC_F_WRITE | (i < 7 ? VRING_DESC_F_NEXT : 0),
                                   .next = (uint16_t)(i + 1)};
    }
    memcpy(gpa(q_desc(3)), d, sizeof(d));
    struct vring_avail *avail = gpa(q_avail(3));
    avail->ring[0] = 0;
    avail->idx = 1;
    uint64_t before = memfd_blocks();
    virtio_dev_handle_notify(&fx.b.vdev, 3);
    assert_int_equal(used(3)->idx, 1);
    assert_int_equal(virtio_dev_error_count(&fx.b.vdev), 0);
    assert_int_equal(counters().reported_pages, 32768);
    assert_int_equal(before - memfd_blocks(), 8 * 8);
    assert_int_equal(*(uint8_t *)gpa(64ULL << 20), 0);
}

/* Without the statistics queue the reporting queue is queue 2, as Linux numbers them. */
static void test_reporting_without_statistics(void **state)
{
    struct virtio_balloon_options options = {.free_page_reporting = true};
    start(&options, 1u << VIRTIO_BALLOON_F_REPORTING);
    assert_int_equal(fx.b.vdev.info.num_queues, 3);
    memset(gpa(DATA), 0x5a, PAGE);
    offer(2, DATA, PAGE, VRING_DESC_F_WRITE);
    assert_int_equal(counters().reported_pages, 1);
    assert_int_equal(*(uint8_t *)gpa(DATA), 0);
}

static void test_config_space(void **state)
{
    struct error err = {{0}};
    assert_int_equal(virtio_balloon_set_target(&fx.b, 1024, &err), 0);
    assert_int_equal(fx.config_irqs, 1);
    uint32_t v = 0;
    virtio_mmio_bus_ops.read(&fx.t, 0x100, (uint8_t *)&v, 4);
    assert_int_equal(v, 1024);
    /* The driver writes actual; num_pages is the host's. */
    uint32_t actual = 1000, bogus = 5;
    virtio_mmio_bus_ops.write(&fx.t, 0x104, (const uint8_t *)&actual, 4);
    virtio_mmio_bus_ops.write(&fx.t, 0x100, (const uint8_t *)&bogus, 4);
    struct virtio_balloon_info info;
    virtio_balloon_read_info(&fx.b, &info);
    assert_int_equal(info.target_pages, 1024);
    assert_int_equal(info.actual_pages, 1000);
    /* Never more than the RAM. */
    assert_int_equal(virtio_balloon_set_target(&fx.b, RAM_PFNS + 1, &err), -EINVAL);
    assert_string_equal(err.msg,
                        "a balloon of 4097 pages is more than the VM's 4096 pages of memory");
    assert_int_equal(virtio_balloon_set_target(&fx.b, 17 * 256, &err), -EINVAL);
    assert_string_equal(err.msg, "a balloon of 17 MiB is more than the VM's 16 MiB of memory");
    struct virtio_balloon_options too_big = {.target_pages = RAM_PFNS + 1};
    struct virtio_balloon other;
    assert_int_equal(virtio_balloon_init(&other, &too_big, &fx.mem, &fx.log, &err), -EINVAL);
}

/* Save -> restore -> save is byte for byte; a held statistics buffer is taken again. */
static void test_state_round_trip(void **state)
{
    struct error err = {{0}};
    assert_int_equal(virtio_balloon_set_target(&fx.b, 256, &err), 0);
    uint32_t actual = 200;
    virtio_mmio_bus_ops.write(&fx.t, 0x104, (const uint8_t *)&actual, 4);
    uint8_t entry[10] = {5, 0, 1, 2, 3, 4, 0, 0, 0, 0};
    memcpy(gpa(BUF), entry, sizeof(entry));
    offer(2, BUF, sizeof(entry), 0);
    struct virtio_balloon_state s1, s2;
    virtio_balloon_save(&fx.b, &s1);
    assert_int_equal(s1.num_pages, 256);
    assert_int_equal(s1.actual, 200);
    assert_int_equal(s1.stats_held, 1);

    struct virtio_balloon b;
    assert_int_equal(virtio_balloon_init(&b, &all_options, &fx.mem, &fx.log, NULL), 0);
    struct virtio_mmio t;
    struct virtio_mmio_host host = {.raise_irq = count_irq, .kick = no_kick};
    virtio_mmio_init(&t, &b.vdev, &host, 0xd0000000);
    assert_int_equal(virtio_balloon_restore(&b, &s1, &err), 0);
    virtio_dev_handle_notify(&b.vdev, 2); /* the held buffer is taken again at the first kick */
    virtio_balloon_save(&b, &s2);
    assert_memory_equal(&s1, &s2, sizeof(s1));
    struct virtio_balloon_info info;
    virtio_balloon_read_info(&b, &info);
    assert_int_equal(info.target_pages, 256);
    assert_int_equal(info.actual_pages, 200);
    assert_int_equal(info.stats[5], 0x04030201);
    virtio_balloon_request_stats(&b);
    assert_int_equal(used(2)->idx, 1);

    /* A corrupt state is refused in one line, nothing changed. */
    struct virtio_balloon_state bad = s1;
    bad.num_pages = RAM_PFNS + 1;
    assert_int_equal(virtio_balloon_restore(&b, &bad, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "saved balloon (target 4097 pages of 4096"));
    bad = s1;
    bad.stats_held = 2;
    assert_int_equal(virtio_balloon_restore(&b, &bad, &err), -EINVAL);
    bad = s1;
    bad.pad[3] = 1;
    assert_int_equal(virtio_balloon_restore(&b, &bad, &err), -EINVAL);
    bad = s1;
    bad.dev.driver_features &= ~(1ULL << VIRTIO_BALLOON_F_STATS_VQ);
    assert_int_equal(virtio_balloon_restore(&b, &bad, &err), -EINVAL);
    virtio_balloon_destroy(&b);
}

/* A driver reset: the guest owns every page again. */
static void test_reset_empties_the_balloon(void **state)
{
    uint32_t pfns[] = {DATA / PAGE, DATA / PAGE + 1};
    send_pfns(0, pfns, 2);
    fake_mmio_write(&fx.t, VIRTIO_MMIO_STATUS, 0);
    struct virtio_balloon_info info;
    virtio_balloon_read_info(&fx.b, &info);
    assert_int_equal(info.pages_in_balloon, 0);
    assert_int_equal(info.actual_pages, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_inflate_gives_pages_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pfns_outside_ram_are_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeated_and_too_many_pfns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_chains_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statistics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_page_reports, setup, teardown),
        cmocka_unit_test_teardown(test_reporting_without_statistics, teardown),
        cmocka_unit_test_teardown(test_a_128_mib_report, teardown),
        cmocka_unit_test_setup_teardown(test_config_space, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_empties_the_balloon, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
