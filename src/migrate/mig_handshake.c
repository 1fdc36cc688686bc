/* The migration link's handshake: both sides' hellos; with a pre-shared key, each direction's
 * key from the psk over both hellos, and each side's proof that it holds it. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mig_link_private.h"

/* The hello: magic, version and flags (little-endian), then the side's random bytes. */
#define HELLO_MAGIC      "KILN-MIG"
#define HELLO_MAGIC_SIZE 8
#define HELLO_VERSION    1u
#define HELLO_FLAG_KEYED 1u
#define HELLO_RANDOM     32
#define HELLO_SIZE       (HELLO_MAGIC_SIZE + 4 + 4 + HELLO_RANDOM)

/* The first message each side encrypts: opening it proves the peer derived the same key. */
#define KEY_PROOF      "kiln migration key proof"
#define KEY_PROOF_SIZE (sizeof(KEY_PROOF) - 1)

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The lines for the socket's own failures during the handshake. */
static int io_failure(const struct mig_link *l, int code, struct error *err)
{
    if (code == -EPIPE)
        return error_fmt(err, code,
                         "migration: the peer closed the connection during the "
                         "handshake");
    if (code == -ETIMEDOUT)
        return error_fmt(err, code, "migration: no handshake from the peer within %d ms",
                         l->timeout_ms);
    if (code == -ECANCELED)
        return error_fmt(err, code, "migration: cancelled");
    return error_fmt(err, code, "migration: handshake: %s", strerror(-code));
}

/* What a stranger sent, printable, for the line that refuses it. */
static void quote_bytes(const uint8_t *bytes, size_t len, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < len && used + 5 < size; i++) {
        int n = isprint(bytes[i]) && bytes[i] != '"' && bytes[i] != '\\'
                    ? snprintf(out + used, size - used, "%c", bytes[i])
                    : snprintf(out + used, size - used, "\\x%02x", bytes[i]);
        used += (size_t)n;
    }
}

static int not_kiln(const uint8_t *got, size_t len, struct error *err)
{
    char seen[48];
    quote_bytes(got, len < HELLO_MAGIC_SIZE ? len : HELLO_MAGIC_SIZE, seen, sizeof(seen));
    return error_fmt(err, -EPROTO,
                     "migration: not a kiln migration peer (it sent \"%s\", expected the "
                     "migration hello \"" HELLO_MAGIC "\")",
                     seen);
}

/* Reads the peer's hello, refusing a stranger as soon as its first bytes differ from the magic
 * (an HTTP client sends a few bytes and then waits for an answer that never comes). */
static int read_hello(struct mig_link *l, uint8_t hello[HELLO_SIZE], struct error *err)
{
    size_t got = 0;
    while (got < HELLO_SIZE) {
        long n = mig_io_read_some(l, hello + got, HELLO_SIZE - got);
        if (n < 0)
            return io_failure(l, (int)n, err);
        got += (size_t)n;
        size_t check = got < HELLO_MAGIC_SIZE ? got : HELLO_MAGIC_SIZE;
        if (memcmp(hello, HELLO_MAGIC, check) != 0)
            return not_kiln(hello, got, err);
    }
    return 0;
}

static int check_hello(const uint8_t *peer, bool initiator, bool keyed, struct error *err)
{
    const char *self = initiator ? "sender" : "receiver";
    const char *other = initiator ? "receiver" : "sender";
    uint32_t version = get_le32(peer + HELLO_MAGIC_SIZE);
    uint32_t flags = get_le32(peer + HELLO_MAGIC_SIZE + 4);
    if (version != HELLO_VERSION || (flags & ~HELLO_FLAG_KEYED) != 0)
        return error_fmt(err, -EPROTONOSUPPORT,
                         "migration: the %s speaks migration format version %u (flags 0x%x); "
                         "this kiln speaks version %u",
                         other, version, flags, HELLO_VERSION);
    bool peer_keyed = (flags & HELLO_FLAG_KEYED) != 0;
    if (peer_keyed && !keyed)
        return error_fmt(err, -EACCES,
                         "migration: the %s uses a pre-shared key and this %s has none", other,
                         self);
    if (!peer_keyed && keyed)
        return error_fmt(err, -EACCES,
                         "migration: this %s uses a pre-shared key and the %s has none", self,
                         other);
    return 0;
}

/* One direction's key: BLAKE2b keyed with the psk over the direction's label and both hellos,
 * so it is new for every connection and differs from the other direction's. */
static void derive_key(const uint8_t *psk, const char *label, const uint8_t *sender_hello,
                       const uint8_t *receiver_hello,
                       uint8_t key[crypto_secretstream_xchacha20poly1305_KEYBYTES])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, psk, MIG_PSK_SIZE, crypto_secretstream_xchacha20poly1305_KEYBYTES);
    crypto_generichash_update(&h, (const uint8_t *)label, strlen(label) + 1);
    crypto_generichash_update(&h, sender_hello, HELLO_SIZE);
    crypto_generichash_update(&h, receiver_hello, HELLO_SIZE);
    crypto_generichash_final(&h, key, crypto_secretstream_xchacha20poly1305_KEYBYTES);
    sodium_memzero(&h, sizeof(h));
}

/* Sends this side's stream header and key proof, then opens the peer's. Both sides send before
 * they read, and what they send fits any socket buffer, so neither waits on the other. */
static int prove_keys(struct mig_link *l, const uint8_t tx_key[], const uint8_t rx_key[],
                      struct error *err)
{
    uint8_t header[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
    crypto_secretstream_xchacha20poly1305_init_push(&l->tx, header, tx_key);
    int r = mig_io_write(l, header, sizeof(header));
    if (r < 0)
        return io_failure(l, r, err);
    memcpy(l->out_data, KEY_PROOF, KEY_PROOF_SIZE);
    l->out_len = KEY_PROOF_SIZE;
    r = mig_frame_send(l);
    if (r < 0)
        return io_failure(l, r, err);

    r = mig_io_read(l, header, sizeof(header));
    if (r < 0)
        return io_failure(l, r, err);
    if (crypto_secretstream_xchacha20poly1305_init_pull(&l->rx, header, rx_key) != 0)
        return error_fmt(err, -EKEYREJECTED, "migration: wrong pre-shared key");
    r = mig_frame_recv(l);
    if (r == -EBADMSG || (r == 0 && (l->in_len != KEY_PROOF_SIZE ||
                                     memcmp(l->in_data, KEY_PROOF, KEY_PROOF_SIZE) != 0)))
        return error_fmt(err, -EKEYREJECTED,
                         "migration: wrong pre-shared key (the peer's key differs from this "
                         "one)");
    if (r < 0)
        return io_failure(l, r, err);
    l->in_pos = l->in_len; /* the proof is not data */
    return 0;
}

int mig_handshake(struct mig_link *l, bool initiator, const uint8_t *psk, struct error *err)
{
    uint8_t mine[HELLO_SIZE], theirs[HELLO_SIZE];
    memcpy(mine, HELLO_MAGIC, HELLO_MAGIC_SIZE);
    put_le32(mine + HELLO_MAGIC_SIZE, HELLO_VERSION);
    put_le32(mine + HELLO_MAGIC_SIZE + 4, psk ? HELLO_FLAG_KEYED : 0);
    randombytes_buf(mine + HELLO_MAGIC_SIZE + 8, HELLO_RANDOM);
    int r = mig_io_write(l, mine, sizeof(mine));
    if (r < 0)
        return io_failure(l, r, err);
    r = read_hello(l, theirs, err);
    if (r < 0)
        return r;
    r = check_hello(theirs, initiator, psk != NULL, err);
    if (r < 0 || !psk)
        return r;

    const uint8_t *sender_hello = initiator ? mine : theirs;
    const uint8_t *receiver_hello = initiator ? theirs : mine;
    uint8_t to_receiver[crypto_secretstream_xchacha20poly1305_KEYBYTES];
    uint8_t to_sender[crypto_secretstream_xchacha20poly1305_KEYBYTES];
    derive_key(psk, "kiln migration: sender to receiver", sender_hello, receiver_hello,
               to_receiver);
    derive_key(psk, "kiln migration: receiver to sender", sender_hello, receiver_hello, to_sender);
    r = initiator ? prove_keys(l, to_receiver, to_sender, err)
                  : prove_keys(l, to_sender, to_receiver, err);
    sodium_memzero(to_receiver, sizeof(to_receiver));
    sodium_memzero(to_sender, sizeof(to_sender));
    return r;
}
