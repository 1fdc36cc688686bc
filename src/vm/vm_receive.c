/* Receiving a VM that another kiln migrates here (docs/migration.md): build it from the sent
 * config with its disks unlocked, read the memory rounds straight into its RAM and then its
 * state, and take the disks over when the source lets go. Nothing runs until all is in. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kiln/migrate/mig_proto.h"
#include "kiln/snapshot/snap_state.h"
#include "kiln/vm/vm.h"
#include "kiln/vm/vm_migrate.h"
#include "kiln/vm/vm_snapshot.h"

/* A PAGES or ZERO record's pages, which must lie inside the VM's RAM. */
static int check_range(const struct vm *vm, uint64_t first, uint64_t count, struct error *err)
{
    uint64_t pages = vm->mem.size / MIG_PAGE_SIZE;
    if (!mig_pages_in_range(first, count, pages))
        return error_fmt(
            err, -EBADMSG, "corrupt migration stream: pages %llu+%llu outside the VM's %llu pages",
            (unsigned long long)first, (unsigned long long)count, (unsigned long long)pages);
    return 0;
}

static int receive_pages(struct vm *vm, struct mig_link *link, uint64_t length, struct error *err)
{
    uint8_t head[8];
    int r = mig_link_recv(link, head, sizeof(head), err);
    uint64_t first = mig_get_u64(head), count = (length - 8) / MIG_PAGE_SIZE;
    if (r == 0)
        r = check_range(vm, first, count, err);
    if (r == 0)
        r = mig_link_recv(link, (uint8_t *)vm->mem.mapping + first * MIG_PAGE_SIZE,
                          count * MIG_PAGE_SIZE, err);
    return r;
}

static int receive_zero(struct vm *vm, struct mig_link *link, struct error *err)
{
    uint8_t body[16];
    int r = mig_link_recv(link, body, sizeof(body), err);
    uint64_t first = mig_get_u64(body), count = mig_get_u64(body + 8);
    if (r == 0)
        r = check_range(vm, first, count, err);
    if (r < 0)
        return r;
    /* A hole in RAM's memfd reads as zero: a page never written stays unallocated (round 0's
     * zero pages cost nothing), and one a later round finds zero again is given back. Private
     * anonymous pages given back read as zero too. A hugetlb page is 2 MiB: a hole punched in
     * part of one is not given back, so those (reserved anyway) are zeroed in place. */
    off_t offset = (off_t)(first * MIG_PAGE_SIZE), len = (off_t)(count * MIG_PAGE_SIZE);
    uint8_t *at = (uint8_t *)vm->mem.mapping + offset;
    if (vm->mem.backing == GUEST_MEM_MEMFD &&
        fallocate(vm->mem.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len) == 0)
        return 0;
    if (vm->mem.backing == GUEST_MEM_ANON_PRIVATE && madvise(at, (size_t)len, MADV_DONTNEED) == 0)
        return 0;
    if (vm->mem.backing == GUEST_MEM_ANON_SHARED && madvise(at, (size_t)len, MADV_REMOVE) == 0)
        return 0;
    memset(at, 0, (size_t)len);
    return 0;
}

/* The state, checked as a snapshot's is (format, CRC, CPU, memory size, disks) and loaded. */
static int receive_state(struct vm *vm, struct mig_link *link, uint64_t length, struct error *err)
{
    uint8_t *bytes = malloc(length);
    if (!bytes)
        return error_fmt(err, -ENOMEM, "no memory for %llu bytes of state",
                         (unsigned long long)length);
    int r = mig_link_recv(link, bytes, length, err);
    struct snap_reader reader = {0};
    if (r == 0)
        r = snap_reader_parse(&reader, bytes, length, "the migrated state", err);
    free(bytes);
    if (r == 0)
        r = vm_snapshot_load_state(vm, &reader, false, err);
    snap_reader_free(&reader);
    return r;
}

/* Records until GO: pages, rounds, the state (answered LOADED). */
static int receive_all(struct vm *vm, struct mig_link *link, bool *start_paused, struct error *err)
{
    bool have_state = false;
    for (;;) {
        struct mig_header h;
        int r = mig_recv_header(link, &h, err);
        if (r < 0)
            return r;
        if (have_state && h.type != MIG_REC_GO && h.type != MIG_REC_CANCEL &&
            h.type != MIG_REC_ERROR)
            return error_fmt(err, -EBADMSG, "corrupt migration stream: a %s record after the state",
                             mig_record_name(h.type));
        switch (h.type) {
        case MIG_REC_PAGES:
            r = receive_pages(vm, link, h.length, err);
            break;
        case MIG_REC_ZERO:
            r = receive_zero(vm, link, err);
            break;
        case MIG_REC_ROUND: {
            uint8_t number[4];
            r = mig_link_recv(link, number, sizeof(number), err);
            if (r == 0)
                log_debug(&vm->log, "receive: round %u in", mig_get_u32(number));
            break;
        }
        case MIG_REC_STATE:
            r = receive_state(vm, link, h.length, err);
            if (r == 0)
                r = mig_send(link, MIG_REC_LOADED, NULL, 0, NULL, 0, err);
            if (r == 0)
                r = mig_link_flush(link, err);
            have_state = r == 0;
            break;
        case MIG_REC_GO: {
            uint8_t flags[4];
            r = mig_link_recv(link, flags, sizeof(flags), err);
            if (r == 0 && !have_state)
                r = error_fmt(err, -EBADMSG, "corrupt migration stream: GO before the state");
            *start_paused = r == 0 && (mig_get_u32(flags) & MIG_GO_PAUSED);
            return r;
        }
        case MIG_REC_CANCEL:
            return error_fmt(err, -ECANCELED, "the sender cancelled the migration");
        case MIG_REC_ERROR: {
            char text[MIG_MAX_MESSAGE_SIZE + 1];
            r = mig_recv_error_text(link, h.length, text, sizeof(text), err);
            return r < 0 ? r : error_fmt(err, -ECONNABORTED, "the sender gave up: %s", text);
        }
        default:
            return error_fmt(err, -EBADMSG, "corrupt migration stream: a %s record from the sender",
                             mig_record_name(h.type));
        }
        if (r < 0)
            return r;
    }
}

int vm_receive(struct vm *vm, const struct vm_config *config, struct mig_link *link,
               bool *start_paused, struct error *err)
{
    int r = vm_build_as(vm, config, -1, true, err);
    bool built = r == 0;
    if (r == 0)
        r = vm_open_consoles(vm, err);
    if (r == 0)
        r = mig_send(link, MIG_REC_READY, NULL, 0, NULL, 0, err);
    if (r == 0)
        r = mig_link_flush(link, err);
    if (r == 0)
        r = receive_all(vm, link, start_paused, err);
    if (r == 0) /* the disks are this VM's now: locked as `kiln run` locks them */
        r = vm_devices_hand_over(vm, false, err);
    if (r == 0)
        r = mig_send(link, MIG_REC_RUNNING, NULL, 0, NULL, 0, err);
    if (r == 0)
        r = mig_link_flush(link, err);
    if (r < 0 && r != -EPIPE && r != -ECANCELED && r != -ECONNABORTED) {
        struct error ignored = {{0}};
        mig_send_error(link, err->msg, &ignored);
    }
    if (r < 0 && built)
        vm_destroy(vm);
    return r;
}
