/* libFuzzer target for the snapshot state file's reader: any bytes through snap_reader_parse.
 * Besides the sanitizers it checks that an accepted file's sections all lie inside it, each
 * is found by name and slot, and a refusal is one line naming the file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct snap_reader r;
    struct error err = {{0}};
    if (snap_reader_parse(&r, data, size, LABEL, &err) < 0) {
        if (strncmp(err.msg, LABEL ": ", strlen(LABEL) + 2) != 0 || strchr(err.msg, '\n'))
            abort();
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
