/* libFuzzer target for the snapshot state file's reader: any bytes through snap_reader_parse.
 * Besides the sanitizers it checks that an accepted file's sections all lie inside it, each
 * is found by name and slot, and a refusal is one line naming the file. An input whose last
 * four bytes (the CRC) are zero gets its file size and CRC filled in first, so that mutations
 * reach the checks behind the CRC instead of all ending there. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/snapshot/crc32.h"
#include "kiln/snapshot/snap_state.h"

#define LABEL "snapshot fuzz/state.kiln"

/* Reads every byte of a section, so ASan sees an access past the file's copy. */
static uint8_t touch(const void *data, uint32_t size)
{
    const uint8_t *b = data;
    uint8_t sum = 0;
    for (uint32_t i = 0; i < size; i++)
        sum ^= b[i];
    return sum;
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* The header's file size (offset 16) and the trailing CRC made right for these bytes. */
static void fill_in_size_and_crc(uint8_t *b, size_t size)
{
    put_le(b + 16, size, 8);
    put_le(b + size - 4, crc32_update(0, b, size - 4), 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
    uint8_t *data = malloc(size ? size : 1);
    if (!data)
        return 0;
    memcpy(data, input, size);
    static const uint8_t no_crc[4] = {0};
    if (size >= SNAP_STATE_HEADER_SIZE + SNAP_STATE_TRAILER_SIZE &&
        memcmp(data + size - 4, no_crc, 4) == 0)
        fill_in_size_and_crc(data, size);

    struct snap_reader r;
    struct error err = {{0}};
    int rc = snap_reader_parse(&r, data, size, LABEL, &err);
    free(data);
    if (rc < 0) {
        if (strncmp(err.msg, LABEL ": ", strlen(LABEL) + 2) != 0 || strchr(err.msg, '\n')) {
            fprintf(stderr, "refusal not one line naming the file: \"%s\"\n", err.msg);
            abort();
        }
        snap_reader_free(&r);
        return 0;
    }
    volatile uint8_t sink = 0;
    struct snap_section sec;
    for (uint32_t i = 0; i < r.count; i++) {
        if (snap_reader_section(&r, i, &sec) < 0)
            abort();
        sink ^= touch(sec.data, sec.size);
        if (snap_reader_find(&r, sec.name, sec.slot, sec.size, &err) != sec.data)
            abort();
    }
    if (snap_reader_section(&r, r.count, &sec) != -2 /* -ENOENT */)
        abort();
    static const char *const names[] = {"vm", "vcpu", "serial", "rtc", "virtio-blk 0", "disk"};
    for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++)
        for (int32_t slot = -1; slot < 2; slot++) {
            const void *p = snap_reader_find(&r, names[n], slot, 8, &err);
            if (p)
                sink ^= touch(p, 8);
        }
    (void)sink;
    snap_reader_free(&r);
    return 0;
}
