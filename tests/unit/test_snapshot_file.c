/* Unit tests for the snapshot state file (snap_state.h) and the CPU identity (snap_cpu.h): a
 * round trip, and one clear refusal for every kind of damaged or hostile file. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "kiln/snapshot/crc32.h"
#include "kiln/snapshot/snap_cpu.h"
#include "kiln/snapshot/snap_state.h"
#include "snapshot_tmp.h"

/* Offsets of the format (docs/snapshots.md), as a reader of the documentation would use them. */
#define OFF_VERSION     8
#define OFF_HEADER_SIZE 12
#define OFF_FILE_SIZE   16
#define OFF_FLAGS       32
#define OFF_COUNT       36
#define OFF_KILN        40
#define OFF_CPU_PAD     116
#define OFF_RESERVED    120
#define FIRST_SECTION   128

struct vcpu_like {
    uint64_t rip, rsp;
    uint32_t id, pad;
};

static struct snap_info sample_info(void)
{
    struct snap_info info = {0};
    info.memory_size = 64ull << 20;
    info.flags = SNAP_FLAG_DIFF;
    snap_cpu_id_probe(&info.cpu);
    return info;
}

/* Writes a small valid file at path: "vm" (-1), "vcpu" 0 and 1, "serial" of 3 bytes. */
static void write_sample(const char *path)
{
    struct error err = {{0}};
    struct snap_writer w;
    struct snap_info info = sample_info();
    assert_int_equal(snap_writer_open(&w, path, &info, &err), 0);
    uint64_t vm = 0x1122334455667788ull;
    struct vcpu_like v0 = {.rip = 0x1000, .rsp = 0x8000, .id = 0};
    struct vcpu_like v1 = {.rip = 0x2000, .rsp = 0x9000, .id = 1};
    assert_int_equal(snap_writer_add(&w, "vm", -1, &vm, sizeof(vm), &err), 0);
    assert_int_equal(snap_writer_add(&w, "vcpu", 0, &v0, sizeof(v0), &err), 0);
    assert_int_equal(snap_writer_add(&w, "vcpu", 1, &v1, sizeof(v1), &err), 0);
    assert_int_equal(snap_writer_add(&w, "serial", -1, "abc", 3, &err), 0);
    assert_int_equal(snap_writer_finish(&w, &err), 0);
}

/* The sample file's bytes (malloc'd). */
static uint8_t *sample_bytes(struct snapshot_tmp *t, size_t *len)
{
    char path[4200];
    snapshot_tmp_file(t, "sample.kiln", path, sizeof(path));
    write_sample(path);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *bytes = malloc(4096);
    assert_non_null(bytes);
    *len = fread(bytes, 1, 4096, f);
    fclose(f);
    return bytes;
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4); /* the format is little-endian, like this host */
}

/* Recomputes the trailing CRC after a test changed the bytes on purpose. */
static void fix_crc(uint8_t *b, size_t len)
{
    put32(b + len - 4, crc32_update(0, b, len - 4));
}

/* Parsing b must fail with a message containing want (and naming the file). */
static void assert_refused(const uint8_t *b, size_t len, const char *want)
{
    struct snap_reader r;
    struct error err = {{0}};
    int rc = snap_reader_parse(&r, b, len, "snapshot S/state.kiln", &err);
    if (rc == 0 || !strstr(err.msg, want) || !strstr(err.msg, "snapshot S/state.kiln: "))
        fail_msg("len %zu: rc %d, message \"%s\", expected \"%s\"", len, rc, err.msg, want);
    snap_reader_free(&r);
}

static void test_crc32_check_value(void **state)
{
    assert_int_equal(crc32_update(0, "123456789", 9), 0xcbf43926u);
    /* In pieces, the same. */
    assert_int_equal(crc32_update(crc32_update(0, "1234", 4), "56789", 5), 0xcbf43926u);
    assert_int_equal(crc32_update(0, "", 0), 0);
}

static void test_round_trip(void **state)
{
    struct snapshot_tmp *t = *state;
    char path[4200], tmp[4300];
    snapshot_tmp_file(t, "state.kiln", path, sizeof(path));
    write_sample(path);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    struct stat st;
    assert_int_equal(stat(tmp, &st), -1); /* renamed away */
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size % 8, 0);

    struct snap_reader r;
    struct error err = {{0}};
    assert_int_equal(snap_reader_load(&r, path, &err), 0);
    struct snap_info want = sample_info();
    assert_string_equal(r.info.kiln_version, KILN_VERSION);
    assert_int_equal(r.info.memory_size, want.memory_size);
    assert_int_equal(r.info.flags, SNAP_FLAG_DIFF);
    assert_memory_equal(&r.info.cpu, &want.cpu, sizeof(want.cpu));
    assert_int_equal(r.count, 4);

    const uint64_t *vm = snap_reader_find(&r, "vm", -1, sizeof(uint64_t), &err);
    assert_non_null(vm);
    assert_int_equal(*vm, 0x1122334455667788ull);
    const struct vcpu_like *v1 = snap_reader_find(&r, "vcpu", 1, sizeof(*v1), &err);
    assert_non_null(v1);
    assert_int_equal(v1->rip, 0x2000);
    assert_int_equal(v1->id, 1);
    const struct vcpu_like *v0 = snap_reader_find(&r, "vcpu", 0, sizeof(*v0), &err);
    assert_non_null(v0);
    assert_int_equal(v0->rsp, 0x8000);
    const char *serial = snap_reader_find(&r, "serial", -1, 3, &err);
    assert_non_null(serial);
    assert_memory_equal(serial, "abc", 3);
    assert_int_equal((uintptr_t)serial % 8, 0);
    struct snap_section sec;
    assert_int_equal(snap_reader_section(&r, 2, &sec), 0); /* in the order written */
    assert_string_equal(sec.name, "vcpu");
    assert_int_equal(sec.slot, 1);
    assert_int_equal(sec.size, sizeof(struct vcpu_like));
    assert_ptr_equal(sec.data, v1);
    assert_int_equal(snap_reader_section(&r, 4, &sec), -ENOENT);
    snap_reader_free(&r);
    snap_reader_free(&r); /* twice is harmless */
}

/* The fuzzer's seeds are written by a Python script from docs/snapshots.md's layout alone: the
 * reader accepting them checks the document and the code agree. */
static void test_seeds_from_the_documented_layout(void **state)
{
    static const char *const seeds[] = {"empty", "vm", "diff", "odd_sizes"};
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/fuzz_snapshot_state/%s", TEST_SOURCE_DIR,
                 seeds[i]);
        struct snap_reader r;
        struct error err = {{0}};
        if (snap_reader_load(&r, path, &err) < 0)
            fail_msg("%s", err.msg);
        assert_string_equal(r.info.cpu.vendor, "GenuineIntel");
        assert_int_equal(r.info.memory_size, 64 << 20);
        if (strcmp(seeds[i], "vm") == 0) {
            assert_int_equal(r.count, 7);
            const char *serial = snap_reader_find(&r, "serial", -1, 3, &err);
            assert_non_null(serial);
            assert_memory_equal(serial, "abc", 3);
        }
        if (strcmp(seeds[i], "diff") == 0)
            assert_int_equal(r.info.flags, SNAP_FLAG_DIFF);
        snap_reader_free(&r);
    }
}

static void test_find_missing_or_resized(void **state)
{
    struct snapshot_tmp *t = *state;
    char path[4200];
    snapshot_tmp_file(t, "state.kiln", path, sizeof(path));
    write_sample(path);
    struct snap_reader r;
    struct error err = {{0}};
    assert_int_equal(snap_reader_load(&r, path, &err), 0);

    char want[4400];
    assert_null(snap_reader_find(&r, "vcpu", 2, sizeof(struct vcpu_like), &err));
    snprintf(want, sizeof(want), "snapshot %s: no section 'vcpu' slot 2", path);
    assert_string_equal(err.msg, want);
    assert_null(snap_reader_find(&r, "vcpu", 0, sizeof(struct vcpu_like) + 16, &err));
    snprintf(want, sizeof(want),
             "snapshot %s: section 'vcpu' slot 0 is 24 bytes (expected 40: saved by another "
             "kiln version?)",
             path);
    assert_string_equal(err.msg, want);
    assert_null(snap_reader_find(&r, "rtc", -1, 8, &err));
    snprintf(want, sizeof(want), "snapshot %s: no section 'rtc'", path);
    assert_string_equal(err.msg, want);
    snap_reader_free(&r);
}

static void test_writer_refusals(void **state)
{
    struct snapshot_tmp *t = *state;
    char path[4200];
    snapshot_tmp_file(t, "refused.kiln", path, sizeof(path));
    struct snap_writer w;
    struct snap_info info = sample_info();
    struct error err = {{0}};
    assert_int_equal(snap_writer_open(&w, path, &info, &err), 0);
    assert_int_equal(snap_writer_add(&w, "vcpu", 0, "x", 1, &err), 0);
    assert_int_equal(snap_writer_add(&w, "vcpu", 0, "y", 1, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "section 'vcpu' slot 0 added twice"));
    assert_int_equal(snap_writer_add(&w, "", -1, NULL, 0, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "is 0 characters (expected 1 to 47)"));
    char long_name[49];
    memset(long_name, 'n', 48);
    long_name[48] = 0;
    assert_int_equal(snap_writer_add(&w, long_name, -1, NULL, 0, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "is 48 characters (expected 1 to 47)"));
    assert_int_equal(snap_writer_add(&w, "vm\r", -1, NULL, 0, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "section name has a control character"));
    assert_int_equal(snap_writer_add(&w, "vm", -1, NULL, 8, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "section 'vm' of 8 bytes has no data"));
    /* One section larger than the whole file may be. */
    static const uint8_t big[1] = {0};
    assert_int_equal(snap_writer_add(&w, "big", -1, big, SNAP_STATE_MAX_SIZE, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "exceed"));
    for (int i = 1; i < (int)SNAP_MAX_SECTIONS; i++)
        assert_int_equal(snap_writer_add(&w, "vcpu", i, NULL, 0, &err), 0);
    assert_int_equal(snap_writer_add(&w, "one too many", -1, NULL, 0, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "more than 1024 sections"));
    /* After refusals the writer still produces a valid file of what was accepted. */
    assert_int_equal(snap_writer_finish(&w, &err), 0);
    struct snap_reader r;
    assert_int_equal(snap_reader_load(&r, path, &err), 0);
    assert_int_equal(r.count, SNAP_MAX_SECTIONS);
    assert_non_null(snap_reader_find(&r, "vcpu", 1023, 0, &err));
    snap_reader_free(&r);
    snap_writer_abort(&w); /* after finish: nothing left to do */

    info.flags = 2;
    assert_int_equal(snap_writer_open(&w, path, &info, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "unknown snapshot flags 0x2"));
}

static void test_abort_leaves_nothing(void **state)
{
    struct snapshot_tmp *t = *state;
    char path[4200], tmp[4300];
    snapshot_tmp_file(t, "aborted.kiln", path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    struct snap_writer w;
    struct snap_info info = sample_info();
    struct error err = {{0}};
    assert_int_equal(snap_writer_open(&w, path, &info, &err), 0);
    assert_int_equal(snap_writer_add(&w, "vm", -1, "abcd", 4, &err), 0);
    struct stat st;
    assert_int_equal(stat(tmp, &st), 0); /* being written under the temporary name */
    snap_writer_abort(&w);
    snap_writer_abort(&w);
    assert_int_equal(stat(tmp, &st), -1);
    assert_int_equal(stat(path, &st), -1);

    /* A stale .tmp left as a symlink (by a crash, or planted) is replaced, not followed. */
    char victim[4200];
    snapshot_tmp_file(t, "victim", victim, sizeof(victim));
    FILE *f = fopen(victim, "w");
    assert_non_null(f);
    fputs("keep me", f);
    fclose(f);
    assert_int_equal(symlink(victim, tmp), 0);
    write_sample(path);
    assert_int_equal(stat(victim, &st), 0);
    assert_int_equal(st.st_size, 7);
    assert_int_equal(lstat(tmp, &st), -1);

    char missing[4300];
    snprintf(missing, sizeof(missing), "%s/no/such/dir/state.kiln", t->dir);
    assert_int_equal(snap_writer_open(&w, missing, &info, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "creating it"));
}

static void test_truncated_at_every_length(void **state)
{
    size_t len;
    uint8_t *b = sample_bytes(*state, &len);
    for (size_t cut = 0; cut < len; cut++)
        assert_refused(b, cut, "truncated");
    /* and one byte too many */
    b[len] = 0;
    assert_refused(b, len + 1, "1 bytes after the end of the file the header gives");
    free(b);
}

static void test_every_flipped_byte_is_caught(void **state)
{
    size_t len;
    uint8_t *b = sample_bytes(*state, &len);
    for (size_t i = 0; i < len; i++) {
        b[i] ^= 0x40;
        const char *want = "CRC mismatch, the file is damaged";
        if (i < 8)
            want = "not a kiln snapshot state file";
        else if (i < OFF_HEADER_SIZE)
            want = "format version";
        else if (i < OFF_FILE_SIZE)
            want = "header is";
        else if (i < OFF_FILE_SIZE + 8)
            want = "truncated (file is";
        assert_refused(b, len, want);
        b[i] ^= 0x40;
    }
    free(b);
}

static void test_header_refusals(void **state)
{
    size_t len;
    uint8_t *b = sample_bytes(*state, &len);
    uint8_t *bad = malloc(len);
    assert_non_null(bad);

    memcpy(bad, b, len);
    memcpy(bad,
           "ELF\x7f"
           "abcd",
           8);
    assert_refused(bad, len,
                   "not a kiln snapshot state file (expected it to start with \"KILNSNAP\")");
    memcpy(bad, b, len);
    put32(bad + OFF_VERSION, 2);
    assert_refused(bad, len, "format version 2 (this kiln reads 1)");
    memcpy(bad, b, len);
    put32(bad + OFF_HEADER_SIZE, 136);
    assert_refused(bad, len, "header is 136 bytes (format 1 has 128)");
    /* The rest with a valid CRC: a file written wrongly rather than damaged. */
    memcpy(bad, b, len);
    put32(bad + OFF_FLAGS, 5);
    fix_crc(bad, len);
    assert_refused(bad, len, "unknown flags 0x5");
    memcpy(bad, b, len);
    put32(bad + OFF_COUNT, SNAP_MAX_SECTIONS + 1);
    fix_crc(bad, len);
    assert_refused(bad, len, "1025 sections (at most 1024)");
    memcpy(bad, b, len);
    memset(bad + OFF_KILN, 'v', 32);
    fix_crc(bad, len);
    assert_refused(bad, len, "the kiln version has no NUL in its 32 bytes");
    memcpy(bad, b, len);
    bad[OFF_KILN] = 0x7f;
    fix_crc(bad, len);
    assert_refused(bad, len, "the kiln version has byte 0x7f at offset 0 (expected text)");
    memcpy(bad, b, len);
    bad[OFF_KILN + 31] = 1;
    fix_crc(bad, len);
    assert_refused(bad, len, "nonzero bytes after the kiln version");
    memcpy(bad, b, len);
    bad[OFF_CPU_PAD] = 1;
    fix_crc(bad, len);
    assert_refused(bad, len, "nonzero padding in the header");
    memcpy(bad, b, len);
    bad[OFF_RESERVED + 7] = 1;
    fix_crc(bad, len);
    assert_refused(bad, len, "nonzero padding in the header");
    memcpy(bad, b, len);
    bad[len - 8] = 1;
    fix_crc(bad, len);
    assert_refused(bad, len, "nonzero padding before the CRC");
    free(bad);
    free(b);
}

static void test_section_refusals(void **state)
{
    size_t len;
    uint8_t *b = sample_bytes(*state, &len);
    uint8_t *bad = malloc(len);
    assert_non_null(bad);
    /* Sections: "vm" at 128 (8 bytes: span 64), "vcpu" 0 at 192 (24: span 80), "vcpu" 1 at
     * 272, "serial" at 352 (3 bytes: data at 408, padding 411-415), trailer at 416. */
    assert_int_equal(len, 424);
    const size_t vm = FIRST_SECTION, vcpu1 = 272, serial = 352;

    memcpy(bad, b, len);
    put32(bad + OFF_COUNT, 5);
    fix_crc(bad, len);
    assert_refused(bad, len, "section 4 of 5 at offset 416 runs past the end of the sections");
    memcpy(bad, b, len);
    put32(bad + OFF_COUNT, 3);
    fix_crc(bad, len);
    assert_refused(bad, len, "64 bytes between the last of 3 sections and the CRC");
    memcpy(bad, b, len);
    put32(bad + serial + 52, 12);
    fix_crc(bad, len);
    assert_refused(bad, len, "section 'serial' of 12 bytes at offset 352 runs past the end");
    memcpy(bad, b, len);
    put32(bad + vm + 52, 0xffffffffu); /* a size that would wrap a 32-bit sum */
    fix_crc(bad, len);
    assert_refused(bad, len, "section 'vm' of 4294967295 bytes at offset 128 runs past the end");
    memcpy(bad, b, len);
    memset(bad + vm, 'x', 48);
    fix_crc(bad, len);
    assert_refused(bad, len, "section 0's name has no NUL in its 48 bytes");
    memcpy(bad, b, len);
    bad[vm + 40] = 'x';
    fix_crc(bad, len);
    assert_refused(bad, len, "nonzero bytes after section 0's name");
    memcpy(bad, b, len);
    bad[vcpu1 + 2] = '\n'; /* found by fuzz_snapshot_state: a two-line error message */
    fix_crc(bad, len);
    assert_refused(bad, len, "section 2's name has byte 0x0a at offset 2 (expected text)");
    memcpy(bad, b, len);
    memset(bad + vm, 0, 2); /* "vm" gone */
    fix_crc(bad, len);
    assert_refused(bad, len, "section 0's name is empty");
    memcpy(bad, b, len);
    bad[serial + 56 + 5] = 1;
    fix_crc(bad, len);
    assert_refused(bad, len, "nonzero padding after section 'serial'");
    memcpy(bad, b, len);
    put32(bad + vcpu1 + 48, 0);
    fix_crc(bad, len);
    assert_refused(bad, len, "section 'vcpu' slot 0 appears twice");
    free(bad);
    free(b);
}

static void test_load_refusals(void **state)
{
    struct snapshot_tmp *t = *state;
    struct snap_reader r;
    struct error err = {{0}};
    char path[4200];
    snapshot_tmp_file(t, "none.kiln", path, sizeof(path));
    assert_int_equal(snap_reader_load(&r, path, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "none.kiln: No such file"));
    assert_int_equal(snap_reader_load(&r, t->dir, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "not a regular file"));
    snapshot_tmp_file(t, "huge.kiln", path, sizeof(path));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), SNAP_STATE_MAX_SIZE + 1), 0);
    fclose(f);
    assert_int_equal(snap_reader_load(&r, path, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "67108865 bytes (a state file is at most 67108864)"));
    snap_reader_free(&r);
}

static struct snap_cpu_id intel_like(void)
{
    struct snap_cpu_id id = {0};
    strcpy(id.vendor, "GenuineIntel");
    id.leaf1_ecx = (1u << 0) | (1u << 28) | (1u << 27);
    id.leaf1_edx = (1u << 26) | (1u << 25);
    id.leaf7_ebx = (1u << 5) | (1u << 3);
    id.ext1_edx = 1u << 29;
    return id;
}

static void test_cpu_id_probe_and_self_check(void **state)
{
    struct snap_cpu_id host;
    snap_cpu_id_probe(&host);
    assert_true(strlen(host.vendor) == 12);   /* every x86 vendor string is 12 characters */
    assert_true(host.leaf1_edx & (1u << 26)); /* x86-64 has SSE2 */
    assert_true(host.ext1_edx & (1u << 29));  /* and long mode */
    struct error err = {{0}};
    assert_int_equal(snap_cpu_id_check(&host, &host, "snapshot S", &err), 0);
}

static void test_cpu_id_mismatches(void **state)
{
    struct error err = {{0}};
    struct snap_cpu_id saved = intel_like(), host = intel_like();
    host.leaf7_ecx = 0xff; /* a host with more is fine */
    assert_int_equal(snap_cpu_id_check(&saved, &host, "snapshot S", &err), 0);

    strcpy(host.vendor, "AuthenticAMD");
    assert_int_equal(snap_cpu_id_check(&saved, &host, "snapshot S", &err), -ENODEV);
    assert_string_equal(err.msg,
                        "snapshot S: snapshot was taken on a GenuineIntel CPU, this host is "
                        "AuthenticAMD");

    host = intel_like();
    host.leaf7_ebx &= ~(1u << 5);
    assert_int_equal(snap_cpu_id_check(&saved, &host, "snapshot S", &err), -ENODEV);
    assert_string_equal(err.msg, "snapshot S: the snapshot's CPU had CPUID leaf 7 EBX bit 5 "
                                 "(avx2), this host lacks it");

    host.leaf1_ecx = 0;
    host.ext1_edx = 0;
    assert_int_equal(snap_cpu_id_check(&saved, &host, "snapshot S", &err), -ENODEV);
    assert_string_equal(err.msg, "snapshot S: the snapshot's CPU had CPUID leaf 1 ECX bit 0 "
                                 "(sse3), this host lacks it (and 3 more missing feature bits)");

    host = intel_like();
    saved.leaf7_edx = 1u << 1; /* a bit without a name in kiln's list */
    assert_int_equal(snap_cpu_id_check(&saved, &host, "snapshot S", &err), -ENODEV);
    assert_string_equal(err.msg,
                        "snapshot S: the snapshot's CPU had CPUID leaf 7 EDX bit 1, this host "
                        "lacks it");

    /* OSXSAVE and the hypervisor bit describe how the CPU is run: not compared. */
    saved = intel_like();
    host = intel_like();
    saved.leaf1_ecx |= 1u << 31;
    host.leaf1_ecx &= ~(1u << 27);
    assert_int_equal(snap_cpu_id_check(&saved, &host, "snapshot S", &err), 0);

    saved = intel_like();
    saved.pad = 1;
    assert_int_equal(snap_cpu_id_check(&saved, &host, "snapshot S", &err), -EINVAL);
    assert_string_equal(err.msg, "snapshot S: nonzero padding in the CPU identity");
    saved = intel_like();
    memset(saved.vendor, 'G', sizeof(saved.vendor));
    assert_int_equal(snap_cpu_id_check(&saved, &host, "snapshot S", &err), -EINVAL);
    assert_string_equal(err.msg, "snapshot S: the CPU vendor has no NUL in its 16 bytes");
    saved = intel_like();
    saved.vendor[3] = 0x1b; /* an escape sequence would reach the user's terminal */
    assert_int_equal(snap_cpu_id_check(&saved, &host, "snapshot S", &err), -EINVAL);
    assert_string_equal(err.msg,
                        "snapshot S: the CPU vendor has byte 0x1b at offset 3 (expected text)");
}

/* A state holding its VM's CPUID: only the vendor must match; features are checked against the
 * restoring host's KVM instead. */
static void test_cpu_vendor_check(void **state)
{
    struct error err = {{0}};
    struct snap_cpu_id saved = intel_like(), host = intel_like();
    host.leaf7_ebx = 0;
    host.leaf1_ecx = 0;
    assert_int_equal(snap_cpu_vendor_check(&saved, &host, "snapshot S", &err), 0);
    strcpy(host.vendor, "AuthenticAMD");
    assert_int_equal(snap_cpu_vendor_check(&saved, &host, "snapshot S", &err), -ENODEV);
    assert_string_equal(err.msg,
                        "snapshot S: snapshot was taken on a GenuineIntel CPU, this host is "
                        "AuthenticAMD");
    saved.pad = 1;
    assert_int_equal(snap_cpu_vendor_check(&saved, &host, "snapshot S", &err), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_check_value),
        cmocka_unit_test_setup_teardown(test_round_trip, snapshot_tmp_setup, snapshot_tmp_teardown),
        cmocka_unit_test(test_seeds_from_the_documented_layout),
        cmocka_unit_test_setup_teardown(test_find_missing_or_resized, snapshot_tmp_setup,
                                        snapshot_tmp_teardown),
        cmocka_unit_test_setup_teardown(test_writer_refusals, snapshot_tmp_setup,
                                        snapshot_tmp_teardown),
        cmocka_unit_test_setup_teardown(test_abort_leaves_nothing, snapshot_tmp_setup,
                                        snapshot_tmp_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_at_every_length, snapshot_tmp_setup,
                                        snapshot_tmp_teardown),
        cmocka_unit_test_setup_teardown(test_every_flipped_byte_is_caught, snapshot_tmp_setup,
                                        snapshot_tmp_teardown),
        cmocka_unit_test_setup_teardown(test_header_refusals, snapshot_tmp_setup,
                                        snapshot_tmp_teardown),
        cmocka_unit_test_setup_teardown(test_section_refusals, snapshot_tmp_setup,
                                        snapshot_tmp_teardown),
        cmocka_unit_test_setup_teardown(test_load_refusals, snapshot_tmp_setup,
                                        snapshot_tmp_teardown),
        cmocka_unit_test(test_cpu_id_probe_and_self_check),
        cmocka_unit_test(test_cpu_id_mismatches),
        cmocka_unit_test(test_cpu_vendor_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
