/* CRC-32 (IEEE 802.3, the zlib and PNG one) that guards the snapshot files against damage.
 * Streaming: start from 0, feed the bytes in any number of pieces, the result is the CRC. */
#ifndef KILN_SNAPSHOT_CRC32_H
#define KILN_SNAPSHOT_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* The CRC of the bytes fed so far followed by data[0..len): crc32_update(0, "123456789", 9)
 * is 0xcbf43926. */
uint32_t crc32_update(uint32_t crc, const void *data, size_t len);

#endif
