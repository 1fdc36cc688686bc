/* Fresh guest RAM for each backing (memfd, anonymous private or shared, hugetlb memfd), with
 * its advice (transparent huge pages, KSM merging) and optional preallocation. */
#include <errno.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guest_mem_backing.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

#define FREE_HUGE_PAGES_FILE "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages"
#define NR_HUGE_PAGES_FILE   "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
#define RESV_HUGE_PAGES_FILE "/sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages"

const char *guest_mem_backing_name(enum guest_mem_backing backing)
{
    switch (backing) {
    case GUEST_MEM_MEMFD:
        return "memfd";
    case GUEST_MEM_ANON_PRIVATE:
        return "anon";
    case GUEST_MEM_ANON_SHARED:
        return "anon shared";
    case GUEST_MEM_HUGETLB:
        return "hugetlb";
    case GUEST_MEM_FILE_PRIVATE:
        return "file";
    }
    return "?";
}

/* A number the kernel reports in a file, or -1 if it does not say. */
static long read_number(const char *path)
{
    FILE *f = fopen(path, "re");
    long n = -1;
    if (f && fscanf(f, "%ld", &n) != 1)
        n = -1;
    if (f)
        fclose(f);
    return n;
}

/* One line with what to do: the pool's size that would leave enough pages free. Pages other
 * mappings reserved but have not touched yet still count as free in free_hugepages. */
static int hugetlb_shortage(uint64_t size, struct error *err)
{
    long needed = (long)(size / GUEST_MEM_HUGE_PAGE);
    long free_pages = read_number(FREE_HUGE_PAGES_FILE) - read_number(RESV_HUGE_PAGES_FILE);
    long total = read_number(NR_HUGE_PAGES_FILE);
    if (free_pages < 0 || total < 0)
        return error_fmt(err, -ENOMEM,
                         "guest memory: not enough free 2 MiB huge pages for backing=hugetlb "
                         "(%ld needed); reserve them as root in /proc/sys/vm/nr_hugepages",
                         needed);
    return error_fmt(
        err, -ENOMEM,
        "guest memory: not enough free 2 MiB huge pages for backing=hugetlb (%ld "
        "needed, %ld free); reserve them as root: echo %ld > /proc/sys/vm/nr_hugepages",
        needed, free_pages, total + needed - free_pages);
}

static int make_memfd(uint64_t size, bool huge, int *fd, struct error *err)
{
    unsigned flags = MFD_CLOEXEC | (huge ? MFD_HUGETLB | MFD_HUGE_2MB : 0);
    *fd = memfd_create(huge ? "kiln-guest-ram-huge" : "kiln-guest-ram", flags);
    if (*fd < 0 && huge)
        return error_fmt(err, -errno,
                         "guest memory: this host cannot make 2 MiB hugetlb memory "
                         "(memfd_create with MFD_HUGETLB: %s); use backing=memfd or anon",
                         strerror(errno));
    if (*fd < 0 || ftruncate(*fd, (off_t)size) < 0) {
        int e = errno;
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        return error_fmt(err, -e, "guest memory: cannot make a %llu MiB memfd: %s",
                         (unsigned long long)(size >> 20), strerror(e));
    }
    return 0;
}

/* Touches every page for writing, so each is allocated and mapped now, not when the guest
 * first writes it. MADV_POPULATE_WRITE reports a shortage as an error; kernels before 5.14
 * lack it, and there each page is written once instead (before any vCPU runs). */
static int preallocate(uint8_t *map, uint64_t size, struct error *err)
{
    if (madvise(map, size, MADV_POPULATE_WRITE) == 0)
        return 0;
    if (errno != EINVAL)
        return error_fmt(err, -errno, "guest memory: cannot preallocate %llu MiB (prealloc): %s",
                         (unsigned long long)(size >> 20), strerror(errno));
    for (uint64_t off = 0; off < size; off += 4096)
        __atomic_store_n(&map[off], map[off], __ATOMIC_RELAXED);
    return 0;
}

/* Advice first, so that a preallocation already gets huge or mergeable pages. Transparent
 * huge pages are only advice: a kernel without them still runs the guest. KSM merging was
 * asked for by name, so a kernel without KSM is an error. */
static int advise(uint8_t *map, uint64_t size, const struct guest_mem_options *opts,
                  struct error *err)
{
    if (opts->thp && opts->backing != GUEST_MEM_HUGETLB)
        (void)madvise(map, size, MADV_HUGEPAGE);
    if (opts->merge && madvise(map, size, MADV_MERGEABLE) != 0)
        return error_fmt(err, -errno,
                         "guest memory: merge=on: madvise(MADV_MERGEABLE) failed: %s (is the "
                         "kernel built with CONFIG_KSM?)",
                         strerror(errno));
    if (opts->prealloc)
        return preallocate(map, size, err);
    return 0;
}

int guest_mem_map_fresh(uint64_t size, const struct guest_mem_options *opts, void **map, int *fd,
                        struct error *err)
{
    *map = NULL;
    *fd = -1;
    /* NORESERVE: the guest touches what it uses; the host only pays for that. Not for hugetlb,
     * whose mapping reserves every huge page now: a shortage then fails here, at start, and
     * never as a SIGBUS when the guest first touches a page. */
    int flags = MAP_NORESERVE, r = 0;
    switch (opts->backing) {
    case GUEST_MEM_ANON_PRIVATE:
        flags |= MAP_PRIVATE | MAP_ANONYMOUS;
        break;
    case GUEST_MEM_ANON_SHARED:
        flags |= MAP_SHARED | MAP_ANONYMOUS;
        break;
    case GUEST_MEM_HUGETLB:
        if (size % GUEST_MEM_HUGE_PAGE != 0)
            return error_fmt(err, -EINVAL,
                             "guest memory: backing=hugetlb needs a size in whole 2 MiB pages "
                             "(%llu KiB is not)",
                             (unsigned long long)(size >> 10));
        r = make_memfd(size, true, fd, err);
        flags = MAP_SHARED;
        break;
    case GUEST_MEM_MEMFD:
        r = make_memfd(size, false, fd, err);
        flags |= MAP_SHARED;
        break;
    case GUEST_MEM_FILE_PRIVATE:
        return error_fmt(err, -EINVAL, "guest memory: fresh RAM cannot be a file's");
    }
    if (r < 0)
        return r;
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, *fd, 0);
    if (m == MAP_FAILED) {
        int e = errno;
        if (opts->backing == GUEST_MEM_HUGETLB && e == ENOMEM)
            r = hugetlb_shortage(size, err);
        else
            r = error_fmt(err, -e, "guest memory: cannot map %llu MiB (backing=%s): %s",
                          (unsigned long long)(size >> 20), guest_mem_backing_name(opts->backing),
                          strerror(e));
    }
    if (r == 0)
        r = advise(m, size, opts, err);
    if (r < 0) {
        if (m != MAP_FAILED)
            munmap(m, size);
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        return r;
    }
    *map = m;
    return 0;
}
