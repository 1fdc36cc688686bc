/* Copying between flat buffers and scatter-gather lists (struct iovec arrays), from any byte
 * offset: the one helper device models use to read and fill guest buffers. */
#ifndef KILN_IOV_H
#define KILN_IOV_H

#include <stddef.h>
#include <sys/uio.h>

/* Copies up to len bytes from src into iov[0..n), starting offset bytes into the list.
 * Returns the bytes copied: fewer than len when the list ends first. */
size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t offset, const void *src,
                    size_t len);

/* Copies up to len bytes of iov[0..n), starting offset bytes into the list, into dst.
 * Returns the bytes copied: fewer than len when the list ends first. */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t offset, void *dst, size_t len);

/* The address of byte `offset` of the list, or NULL past its end. */
void *iov_byte(const struct iovec *iov, unsigned n, size_t offset);

#endif
