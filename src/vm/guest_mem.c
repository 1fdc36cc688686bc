/* Guest RAM allocation and the single bounds-checked GPA -> host pointer translation.
 * RAM above GUEST_MMIO_HOLE_START moves to 4 GiB so the hole stays free for devices. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kiln/vm/guest_mem.h"

#include "guest_mem_backing.h"

static int check_size(uint64_t size, struct error *err)
{
    if (size == 0 || size % 4096 != 0)
        return error_fmt(err, -EINVAL,
                         "guest memory: %llu bytes is not a positive multiple of 4 KiB",
                         (unsigned long long)size);
    return 0;
}

/* Lays out map (size bytes, fd behind it or -1) below and above the hole. */
static int adopt_mapping(struct guest_mem *mem, uint64_t size, void *map, int fd,
                         enum guest_mem_backing backing, struct error *err)
{
    mem->written = calloc((size / 4096 + 63) / 64, sizeof(uint64_t));
    if (!mem->written) {
        munmap(map, size);
        if (fd >= 0)
            close(fd);
        return error_fmt(err, -ENOMEM, "guest memory: no memory for its page bitmap");
    }
    mem->fd = fd;
    mem->backing = backing;
    mem->mapping = map;
    mem->mapping_size = size;
    mem->size = size;

    uint64_t low = size < GUEST_MMIO_HOLE_START ? size : GUEST_MMIO_HOLE_START;
    mem->regions[0] = (struct guest_mem_region){.gpa = 0, .size = low, .hva = map};
    mem->nregions = 1;
    if (size > low) {
        mem->regions[1] = (struct guest_mem_region){
            .gpa = GUEST_MMIO_HOLE_END, .size = size - low, .hva = (uint8_t *)map + low};
        mem->nregions = 2;
    }
    return 0;
}

int guest_mem_init(struct guest_mem *mem, uint64_t size, struct error *err)
{
    struct guest_mem_options plain = {.backing = GUEST_MEM_MEMFD};
    return guest_mem_init_with(mem, size, &plain, err);
}

int guest_mem_init_with(struct guest_mem *mem, uint64_t size, const struct guest_mem_options *opts,
                        struct error *err)
{
    memset(mem, 0, sizeof(*mem));
    mem->fd = -1;
    void *map;
    int fd;
    int r = check_size(size, err);
    if (r == 0)
        r = guest_mem_map_fresh(size, opts, &map, &fd, err);
    return r < 0 ? r : adopt_mapping(mem, size, map, fd, opts->backing, err);
}

int guest_mem_init_from(struct guest_mem *mem, uint64_t size, int fd, struct error *err)
{
    if (fd < 0)
        return guest_mem_init(mem, size, err);
    memset(mem, 0, sizeof(*mem));
    mem->fd = -1;
    int r = check_size(size, err);
    if (r < 0)
        return r;
    /* A snapshot's memory file is mapped private: pages are read in as the guest touches them,
     * and its writes never reach the file, so one snapshot can start many clones. */
    void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
    if (map == MAP_FAILED)
        return error_fmt(err, -errno, "guest memory: cannot map %llu MiB: %s",
                         (unsigned long long)(size >> 20), strerror(errno));
    return adopt_mapping(mem, size, map, -1, GUEST_MEM_FILE_PRIVATE, err);
}

void guest_mem_destroy(struct guest_mem *mem)
{
    if (mem->mapping)
        munmap(mem->mapping, mem->mapping_size);
    if (mem->mapping && mem->fd >= 0)
        close(mem->fd);
    free(mem->written);
    memset(mem, 0, sizeof(*mem));
    mem->fd = -1;
}

void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
    if (len == 0)
        len = 1;
    for (int i = 0; i < mem->nregions; i++) {
        const struct guest_mem_region *r = &mem->regions[i];
        /* Written so that no sum can overflow: gpa - r->gpa only once gpa >= r->gpa. */
        if (gpa < r->gpa || gpa - r->gpa >= r->size)
            continue;
        uint64_t offset = gpa - r->gpa;
        if (len > r->size - offset)
            return NULL;
        return r->hva + offset;
    }
    return NULL;
}

int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len)
{
    if (len == 0)
        return 0;
    void *dst = guest_mem_ptr(mem, gpa, len);
    if (!dst)
        return -EFAULT;
    memcpy(dst, src, len);
    guest_mem_mark_written(mem, dst, len);
    return 0;
}

int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len)
{
    if (len == 0)
        return 0;
    const void *src = guest_mem_ptr(mem, gpa, len);
    if (!src)
        return -EFAULT;
    memcpy(dst, src, len);
    return 0;
}

void guest_mem_mark_written(const struct guest_mem *mem, const void *hva, uint64_t len)
{
    const uint8_t *start = mem->mapping, *p = hva;
    if (len == 0 || !mem->written || p < start || (uint64_t)(p - start) >= mem->size)
        return;
    uint64_t offset = (uint64_t)(p - start);
    if (len > mem->size - offset)
        len = mem->size - offset;
    /* A word of the bitmap at a time: a 64 MiB buffer is 256 words, not 16384 pages. */
    uint64_t first = offset / 4096, last = (offset + len - 1) / 4096;
    for (uint64_t w = first / 64; w <= last / 64; w++) {
        uint64_t lo = w == first / 64 ? first % 64 : 0, hi = w == last / 64 ? last % 64 : 63;
        uint64_t mask = (hi == 63 ? ~0ull : (1ull << (hi + 1)) - 1) & ~((1ull << lo) - 1);
        __atomic_fetch_or(&mem->written[w], mask, __ATOMIC_RELAXED);
    }
}

void guest_mem_take_written(const struct guest_mem *mem, uint64_t *bitmap)
{
    if (!mem->written)
        return;
    uint64_t words = (mem->size / 4096 + 63) / 64;
    for (uint64_t w = 0; w < words; w++)
        bitmap[w] |= __atomic_exchange_n(&mem->written[w], 0, __ATOMIC_RELAXED);
}

int guest_mem_discard(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
    uint8_t *hva = guest_mem_ptr(mem, gpa, len);
    if (!hva || len == 0)
        return -EFAULT;
    uint64_t offset = (uint64_t)(hva - (uint8_t *)mem->mapping);
    uint64_t start = (offset + 4095) / 4096 * 4096, end = (offset + len) / 4096 * 4096;
    if (start >= end)
        return 0;
    int r = 0;
    switch (mem->backing) {
    case GUEST_MEM_MEMFD: /* a hole reads as zero */
        r = fallocate(mem->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)start,
                      (off_t)(end - start));
        break;
    case GUEST_MEM_HUGETLB:
        /* Only whole 2 MiB pages can be given back; a hole in part of one frees nothing. */
        start = (start + GUEST_MEM_HUGE_PAGE - 1) / GUEST_MEM_HUGE_PAGE * GUEST_MEM_HUGE_PAGE;
        end = end / GUEST_MEM_HUGE_PAGE * GUEST_MEM_HUGE_PAGE;
        if (start >= end)
            return 0;
        r = fallocate(mem->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)start,
                      (off_t)(end - start));
        break;
    case GUEST_MEM_ANON_SHARED: /* shmem without an fd: the same hole, through the mapping */
        r = madvise((uint8_t *)mem->mapping + start, end - start, MADV_REMOVE);
        break;
    case GUEST_MEM_ANON_PRIVATE: /* reads as zero again */
    case GUEST_MEM_FILE_PRIVATE: /* a snapshot's file: drop our copies of its pages */
        r = madvise((uint8_t *)mem->mapping + start, end - start, MADV_DONTNEED);
        break;
    }
    if (r < 0)
        return -errno;
    guest_mem_mark_written(mem, (uint8_t *)mem->mapping + start, end - start);
    return 0;
}

uint64_t guest_mem_low_end(const struct guest_mem *mem)
{
    return mem->nregions > 0 ? mem->regions[0].size : 0;
}
