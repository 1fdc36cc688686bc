/* Guest RAM: one mapping (a memfd by default; anonymous, hugetlb, or a snapshot's file, private),
 * split into regions around the 32-bit MMIO hole. guest_mem_ptr() is the only way any code turns a
 * guest-physical address into a pointer. */
#ifndef KILN_GUEST_MEM_H
#define KILN_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/util/error.h"

/* RAM never overlaps [MMIO_HOLE_START, 4 GiB): devices, LAPIC/IOAPIC and KVM's TSS live there. */
#define GUEST_MMIO_HOLE_START 0xC0000000ULL
#define GUEST_MMIO_HOLE_END   0x100000000ULL

#define GUEST_MEM_MAX_REGIONS 2

struct guest_mem_region {
    uint64_t gpa;
    uint64_t size;
    uint8_t *hva;
};

/* What the RAM's mapping is, for the code that must treat its pages differently (finding the
 * pages written for a snapshot or a migration, zeroing or giving back pages). */
enum guest_mem_backing {
    GUEST_MEM_MEMFD,        /* a memfd mapped shared (the default): holes read as zero */
    GUEST_MEM_ANON_PRIVATE, /* MAP_PRIVATE|MAP_ANONYMOUS: no fd; untouched pages read as zero */
    GUEST_MEM_ANON_SHARED,  /* MAP_SHARED|MAP_ANONYMOUS: shmem without an fd; reading a page
                               allocates it */
    GUEST_MEM_HUGETLB,      /* a MFD_HUGETLB memfd mapped shared, 2 MiB pages, reserved at start */
    GUEST_MEM_FILE_PRIVATE, /* a snapshot's memory file mapped private and lazily (kiln restore) */
};

#define GUEST_MEM_HUGE_PAGE (2ULL << 20) /* the hugetlb backing's page size */

/* How fresh RAM is made (guest_mem_init_with). */
struct guest_mem_options {
    enum guest_mem_backing backing; /* any but GUEST_MEM_FILE_PRIVATE */
    bool prealloc;                  /* every page allocated and mapped before the guest runs */
    bool thp;   /* MADV_HUGEPAGE: transparent huge pages advised (not for hugetlb) */
    bool merge; /* MADV_MERGEABLE: KSM may merge identical pages (anon private only) */
};

struct guest_mem {
    struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
    int nregions;
    uint64_t size; /* total RAM bytes */
    void *mapping; /* the single host mapping backing all regions */
    enum guest_mem_backing backing;
    int fd; /* the memfd it maps (GUEST_MEM_MEMFD, GUEST_MEM_HUGETLB), else -1 */
    size_t mapping_size;
    /* Pages kiln itself wrote (guest_mem_mark_written), bit i = page i of the mapping; set
     * and taken with atomic operations, from any thread. */
    uint64_t *written;
};

/* Maps size bytes of RAM (page-aligned) and lays it out below and above the hole: a memfd,
 * nothing advised or preallocated. */
int guest_mem_init(struct guest_mem *mem, uint64_t size, struct error *err);
/* The same with the backing and advice of opts (guest_mem_backing.c). Errors name what failed:
 * a hugetlb size that is not whole huge pages, too few free huge pages (and how to reserve
 * them), a preallocation the host could not satisfy. */
int guest_mem_init_with(struct guest_mem *mem, uint64_t size, const struct guest_mem_options *opts,
                        struct error *err);
/* RAM with its contents taken from fd (size bytes: a snapshot's memory file), mapped private
 * and lazily (GUEST_MEM_FILE_PRIVATE); fd -1 is guest_mem_init. The caller may close fd
 * afterwards. */
int guest_mem_init_from(struct guest_mem *mem, uint64_t size, int fd, struct error *err);
/* The backing's keyword for messages: "memfd", "anon", "anon shared", "hugetlb", "file". */
const char *guest_mem_backing_name(enum guest_mem_backing backing);
void guest_mem_destroy(struct guest_mem *mem);

/* Host pointer for [gpa, gpa+len) if the whole range is RAM within one region, else NULL.
 * len 0 is treated as 1 (the address itself must be RAM). Overflow-safe. */
void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);

/* Copy helpers built on guest_mem_ptr(): 0 on success, -EFAULT if out of RAM. */
int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len);
int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len);

/* Records that kiln, not the guest, wrote [hva, hva + len) of the mapping (a device's
 * buffer, a used ring). KVM's dirty log sees only the guest's own writes; a diff snapshot
 * needs these too (docs/snapshots.md). Bytes outside the mapping are ignored. Any thread. */
void guest_mem_mark_written(const struct guest_mem *mem, const void *hva, uint64_t len);
/* ORs the pages marked since the last call into bitmap (bit i = page i of the mapping, the
 * layout of a snapshot's memory file) and clears the marks, word by word atomically. */
void guest_mem_take_written(const struct guest_mem *mem, uint64_t *bitmap);

/* Gives the host memory behind the whole 4 KiB pages of [gpa, gpa + len) back (a balloon's
 * pages, free pages the guest reported), as the backing allows: the memfd's pages are punched
 * out and anonymous pages dropped (they read as zero after), hugetlb's only where whole 2 MiB
 * pages lie in the range, a snapshot file's private copies are dropped (they read as the file
 * again). The
 * range is marked written, since KVM's dirty log does not see a discard and a diff snapshot or
 * a migration must send those pages again. The range must be RAM within one region (else
 * -EFAULT, nothing touched); a partial page at either end is left alone. 0 or -errno. */
int guest_mem_discard(const struct guest_mem *mem, uint64_t gpa, uint64_t len);

/* End (exclusive) of RAM below the MMIO hole: where low-memory placement must stop. */
uint64_t guest_mem_low_end(const struct guest_mem *mem);

#endif
