/* Unit tests for guest RAM layout and the one GPA translation: region split around the MMIO
 * hole, every boundary, and lengths/addresses chosen to overflow naive checks. */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/vm/guest_mem.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static void test_small_vm_single_region(void **state)
{
    struct guest_mem mem;
    assert_int_equal(guest_mem_init(&mem, 16 * MiB, NULL), 0);
    assert_int_equal(mem.nregions, 1);
    assert_int_equal(guest_mem_low_end(&mem), 16 * MiB);
    assert_non_null(guest_mem_ptr(&mem, 0, 16 * MiB));
    assert_non_null(guest_mem_ptr(&mem, 16 * MiB - 1, 1));
    assert_null(guest_mem_ptr(&mem, 16 * MiB - 1, 2));
    assert_null(guest_mem_ptr(&mem, 16 * MiB, 1));
    assert_null(guest_mem_ptr(&mem, 0, 16 * MiB + 1));
    assert_null(guest_mem_ptr(&mem, UINT64_MAX, 1));
    assert_null(guest_mem_ptr(&mem, 4096, UINT64_MAX));
    assert_null(guest_mem_ptr(&mem, 4096, UINT64_MAX - 4095)); /* gpa + len wraps to 0 */
    guest_mem_destroy(&mem);
}

static void test_large_vm_splits_around_hole(void **state)
{
    struct guest_mem mem;
    uint64_t size = GUEST_MMIO_HOLE_START + 64 * MiB;
    assert_int_equal(guest_mem_init(&mem, size, NULL), 0);
    assert_int_equal(mem.nregions, 2);
    assert_int_equal(guest_mem_low_end(&mem), GUEST_MMIO_HOLE_START);
    assert_int_equal(mem.regions[1].gpa, GUEST_MMIO_HOLE_END);
    assert_int_equal(mem.regions[1].size, 64 * MiB);
    assert_null(guest_mem_ptr(&mem, GUEST_MMIO_HOLE_START, 1));
    assert_null(guest_mem_ptr(&mem, GUEST_MMIO_HOLE_END - 1, 1));
    /* A range may not run from low RAM across the hole. */
    assert_null(guest_mem_ptr(&mem, GUEST_MMIO_HOLE_START - 4096, 8192));
    uint8_t *high = guest_mem_ptr(&mem, GUEST_MMIO_HOLE_END, 64 * MiB);
    assert_non_null(high);
    assert_null(guest_mem_ptr(&mem, GUEST_MMIO_HOLE_END + 64 * MiB, 1));
    /* Both views are the same mapping: high RAM follows low RAM in the host buffer. */
    assert_ptr_equal(high, (uint8_t *)guest_mem_ptr(&mem, 0, 1) + GUEST_MMIO_HOLE_START);
    guest_mem_destroy(&mem);
}

static void test_read_write_round_trip(void **state)
{
    struct guest_mem mem;
    assert_int_equal(guest_mem_init(&mem, 4 * MiB, NULL), 0);
    const char text[] = "kiln";
    assert_int_equal(guest_mem_write(&mem, 0x1000, text, sizeof(text)), 0);
    char back[sizeof(text)];
    assert_int_equal(guest_mem_read(&mem, 0x1000, back, sizeof(back)), 0);
    assert_string_equal(back, "kiln");
    assert_int_equal(guest_mem_write(&mem, 4 * MiB - 2, text, sizeof(text)), -EFAULT);
    assert_int_equal(guest_mem_read(&mem, 4 * MiB, back, 1), -EFAULT);
    guest_mem_destroy(&mem);
}

static void test_bad_sizes_rejected(void **state)
{
    struct guest_mem mem;
    struct error err;
    assert_int_equal(guest_mem_init(&mem, 0, &err), -EINVAL);
    assert_int_equal(guest_mem_init(&mem, 4097, &err), -EINVAL);
    assert_string_equal(err.msg, "guest memory: 4097 bytes is not a positive multiple of 4 KiB");
}

static bool page_set(const uint64_t *bits, uint64_t page)
{
    return (bits[page / 64] >> (page % 64)) & 1;
}

/* What a diff snapshot learns of kiln's own writes: every page a write touches, once. */
static void test_written_pages_are_marked_and_taken(void **state)
{
    struct guest_mem mem;
    assert_int_equal(guest_mem_init(&mem, 4 * MiB, NULL), 0);
    uint64_t bits[16] = {0}; /* 1024 pages */
    guest_mem_take_written(&mem, bits);
    assert_int_equal(bits[0], 0);
    uint8_t block[10] = {1};
    assert_int_equal(guest_mem_write(&mem, 0x3ffc, block, sizeof(block)), 0);    /* pages 3, 4 */
    guest_mem_mark_written(&mem, (uint8_t *)mem.mapping + 100 * 4096, 3 * 4096); /* 100-102 */
    guest_mem_mark_written(&mem, (uint8_t *)mem.mapping + 4 * MiB - 1, 4096);    /* clipped: 1023 */
    guest_mem_mark_written(&mem, (uint8_t *)mem.mapping + 4 * MiB, 4096);        /* outside */
    guest_mem_take_written(&mem, bits);
    for (uint64_t page = 0; page < 1024; page++) {
        bool expected = page == 3 || page == 4 || (page >= 100 && page <= 102) || page == 1023;
        assert_true(page_set(bits, page) == expected);
    }
    /* Taking clears the marks: the next snapshot sees only later writes. */
    memset(bits, 0, sizeof(bits));
    guest_mem_take_written(&mem, bits);
    for (unsigned w = 0; w < 16; w++)
        assert_int_equal(bits[w], 0);
    /* Ranges across and along the bitmap's 64-page words: partial, whole and single. */
    guest_mem_mark_written(&mem, (uint8_t *)mem.mapping + 60 * 4096 + 5, 141 * 4096); /* 60-201 */
    guest_mem_mark_written(&mem, (uint8_t *)mem.mapping + 256 * 4096, 64 * 4096);     /* 256-319 */
    guest_mem_mark_written(&mem, (uint8_t *)mem.mapping + 383 * 4096, 1);             /* 383 */
    guest_mem_mark_written(&mem, (uint8_t *)mem.mapping + 448 * 4096, 0);             /* nothing */
    guest_mem_take_written(&mem, bits);
    for (uint64_t page = 0; page < 1024; page++) {
        bool expected = (page >= 60 && page <= 201) || (page >= 256 && page <= 319) || page == 383;
        assert_true(page_set(bits, page) == expected);
    }
    guest_mem_destroy(&mem);
}

/* The VmFlags of the mapping that starts at addr, from /proc/self/smaps ("" if none). */
static void vm_flags_of(const void *addr, char *flags, size_t size)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    assert_non_null(f);
    char line[512];
    bool mine = false;
    flags[0] = '\0';
    while (fgets(line, sizeof(line), f)) {
        unsigned long start, end;
        if (sscanf(line, "%lx-%lx ", &start, &end) == 2) /* a mapping's first line */
            mine = start == (unsigned long)(uintptr_t)addr;
        else if (mine && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(flags, size, "%s", line + 8);
            break;
        }
    }
    fclose(f);
}

static bool has_flag(const char *flags, const char *flag)
{
    char padded[600], word[8];
    snprintf(padded, sizeof(padded), " %s ", flags);
    padded[strcspn(padded, "\n")] = ' ';
    snprintf(word, sizeof(word), " %s ", flag);
    return strstr(padded, word) != NULL;
}

/* Each backing is the mapping it says it is, with the advice it was asked for. */
static void test_backings(void **state)
{
    const struct {
        struct guest_mem_options opts;
        bool has_fd;
        const char *want, *not_want;
    } cases[] = {
        {{.backing = GUEST_MEM_MEMFD}, true, "sh", "hg"},
        {{.backing = GUEST_MEM_MEMFD, .thp = true}, true, "hg", NULL},
        {{.backing = GUEST_MEM_ANON_PRIVATE, .thp = true}, false, "hg", "sh"},
        {{.backing = GUEST_MEM_ANON_PRIVATE, .merge = true}, false, "mg", "hg"},
        {{.backing = GUEST_MEM_ANON_SHARED}, false, "sh", "mg"},
    };
    /* A kernel built without THP or KSM refuses the advice: those cases say nothing there. */
    bool thp = access("/sys/kernel/mm/transparent_hugepage", F_OK) == 0;
    bool ksm = access("/sys/kernel/mm/ksm", F_OK) == 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if ((cases[i].opts.thp && !thp) || (cases[i].opts.merge && !ksm))
            continue;
        struct guest_mem mem;
        struct error err;
        assert_int_equal(guest_mem_init_with(&mem, 8 * MiB, &cases[i].opts, &err), 0);
        assert_int_equal(mem.backing, cases[i].opts.backing);
        assert_int_equal(mem.fd >= 0, cases[i].has_fd);
        char flags[512];
        vm_flags_of(mem.mapping, flags, sizeof(flags));
        if (!has_flag(flags, cases[i].want))
            fail_msg("%s: no '%s' in VmFlags:%s", guest_mem_backing_name(mem.backing),
                     cases[i].want, flags);
        if (cases[i].not_want && has_flag(flags, cases[i].not_want))
            fail_msg("%s: '%s' in VmFlags:%s", guest_mem_backing_name(mem.backing),
                     cases[i].not_want, flags);
        /* Fresh RAM reads as zero and takes writes, whatever its backing. */
        uint8_t *p = guest_mem_ptr(&mem, 8 * MiB - 4096, 4096);
        assert_int_equal(p[100], 0);
        assert_int_equal(guest_mem_write(&mem, 8 * MiB - 1, "x", 1), 0);
        guest_mem_destroy(&mem);
    }
}

/* prealloc: every page is resident before anything touched it. */
static void test_prealloc_makes_ram_resident(void **state)
{
    struct guest_mem_options opts = {.backing = GUEST_MEM_ANON_PRIVATE, .prealloc = true};
    struct guest_mem mem;
    assert_int_equal(guest_mem_init_with(&mem, 4 * MiB, &opts, NULL), 0);
    unsigned char resident[1024];
    assert_int_equal(mincore(mem.mapping, 4 * MiB, resident), 0);
    for (size_t i = 0; i < 4 * MiB / 4096; i++)
        assert_true(resident[i] & 1);
    guest_mem_destroy(&mem);
}

/* hugetlb: whole 2 MiB pages only; without free huge pages, one line saying how to reserve
 * them (the test host has none unless someone reserved them: skipped then). */
static void test_hugetlb_refusals(void **state)
{
    struct guest_mem_options opts = {.backing = GUEST_MEM_HUGETLB};
    struct guest_mem mem;
    struct error err;
    assert_int_equal(guest_mem_init_with(&mem, 3 * MiB, &opts, &err), -EINVAL);
    assert_string_equal(err.msg, "guest memory: backing=hugetlb needs a size in whole 2 MiB "
                                 "pages (3072 KiB is not)");
    /* Far more than any test host reserves: refused at the mapping, never a SIGBUS later. */
    int r = guest_mem_init_with(&mem, 512ULL * GiB, &opts, &err);
    if (r == 0)
        guest_mem_destroy(&mem);
    assert_int_not_equal(r, 0);
    if (r == -ENOMEM)
        assert_non_null(strstr(err.msg, "/proc/sys/vm/nr_hugepages"));
    else
        assert_non_null(strstr(err.msg, "hugetlb"));
}

/* guest_mem_discard gives pages back by the backing's own means: each discarded page reads as
 * zero again and is no longer resident, whatever the backing (hugetlb: only whole 2 MiB pages,
 * which its own test host rarely has; left out). */
static void test_discard_by_backing(void **state)
{
    const enum guest_mem_backing backings[] = {GUEST_MEM_MEMFD, GUEST_MEM_ANON_PRIVATE,
                                               GUEST_MEM_ANON_SHARED};
    for (size_t i = 0; i < sizeof(backings) / sizeof(backings[0]); i++) {
        struct guest_mem_options opts = {.backing = backings[i]};
        struct guest_mem mem;
        assert_int_equal(guest_mem_init_with(&mem, 4 * MiB, &opts, NULL), 0);
        uint8_t *p = guest_mem_ptr(&mem, 1 * MiB, 8192);
        memset(p, 0xa5, 8192);
        assert_int_equal(guest_mem_discard(&mem, 1 * MiB, 8192), 0);
        unsigned char resident[2];
        assert_int_equal(mincore(p, 8192, resident), 0);
        if ((resident[0] | resident[1]) & 1)
            fail_msg("%s: a discarded page is still resident", guest_mem_backing_name(mem.backing));
        assert_int_equal(p[0], 0);
        assert_int_equal(p[8191], 0);
        guest_mem_destroy(&mem);
    }
}

static void test_snapshot_file_is_private(void **state)
{
    int fd = memfd_create("test-snapshot", 0);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 4 * MiB), 0);
    struct guest_mem mem;
    assert_int_equal(guest_mem_init_from(&mem, 4 * MiB, fd, NULL), 0);
    close(fd);
    assert_int_equal(mem.backing, GUEST_MEM_FILE_PRIVATE);
    assert_int_equal(mem.fd, -1);
    assert_string_equal(guest_mem_backing_name(mem.backing), "file");
    guest_mem_destroy(&mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_vm_single_region),
        cmocka_unit_test(test_large_vm_splits_around_hole),
        cmocka_unit_test(test_read_write_round_trip),
        cmocka_unit_test(test_bad_sizes_rejected),
        cmocka_unit_test(test_written_pages_are_marked_and_taken),
        cmocka_unit_test(test_backings),
        cmocka_unit_test(test_prealloc_makes_ram_resident),
        cmocka_unit_test(test_hugetlb_refusals),
        cmocka_unit_test(test_discard_by_backing),
        cmocka_unit_test(test_snapshot_file_is_private),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
