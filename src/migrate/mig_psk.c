/* The migration's pre-shared key: 64 hex digits from a key file only its owner can read (as
 * ssh insists for its keys) or from a string, into MIG_PSK_SIZE bytes. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/util/bytes.h"
#include "kiln/migrate/mig_link.h"

#define HEX_DIGITS (2 * MIG_PSK_SIZE)

/* len characters of text into key; `what` names the source in the error line. */
static int parse_hex(const char *text, size_t len, const char *what, uint8_t key[MIG_PSK_SIZE],
                     struct error *err)
{
    if (len != HEX_DIGITS)
        return error_fmt(err, -EINVAL, "%s: %zu characters, expected %d hex digits (a %d-byte key)",
                         what, len, HEX_DIGITS, MIG_PSK_SIZE);
    for (size_t i = 0; i < len; i++) {
        if (bytes_hex_digit(text[i]) < 0) {
            sodium_memzero(key, MIG_PSK_SIZE);
            return error_fmt(err, -EINVAL,
                             "%s: character %zu is not a hex digit (expected %d hex digits)", what,
                             i + 1, HEX_DIGITS);
        }
        if (i % 2)
            key[i / 2] = (uint8_t)(bytes_hex_digit(text[i - 1]) << 4 | bytes_hex_digit(text[i]));
    }
    return 0;
}

int mig_psk_parse(const char *hex, uint8_t key[MIG_PSK_SIZE], struct error *err)
{
    if (!hex)
        hex = "";
    return parse_hex(hex, strlen(hex), "migration key", key, err);
}

int mig_psk_load(const char *path, uint8_t key[MIG_PSK_SIZE], struct error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return error_fmt(err, -errno, "migration key file %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return error_fmt(err, -e, "migration key file %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return error_fmt(err, -EINVAL, "migration key file %s: not a regular file", path);
    }
    if (st.st_mode & 077) {
        close(fd);
        return error_fmt(err, -EACCES,
                         "migration key file %s: mode %03o lets group or others at the key "
                         "(run `chmod 600 %s`)",
                         path, (unsigned)(st.st_mode & 0777), path);
    }
    /* A few bytes more than a key and its newline, to tell a long file from a good one. */
    char text[HEX_DIGITS + 8];
    size_t len = 0;
    while (len < sizeof(text)) {
        ssize_t n = read(fd, text + len, sizeof(text) - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            sodium_memzero(text, sizeof(text));
            return error_fmt(err, -e, "migration key file %s: read: %s", path, strerror(e));
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (len > 0 && text[len - 1] == '\n')
        len--;
    char what[300];
    snprintf(what, sizeof(what), "migration key file %s", path);
    int r = len >= sizeof(text) - 1
                ? error_fmt(err, -EINVAL, "%s: longer than %d hex digits (a %d-byte key)", what,
                            HEX_DIGITS, MIG_PSK_SIZE)
                : parse_hex(text, len, what, key, err);
    sodium_memzero(text, sizeof(text));
    return r;
}
