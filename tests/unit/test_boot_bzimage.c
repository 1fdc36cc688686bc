/* Unit tests for the bzImage loader: synthetic images with a real setup header layout,
 * checked at the zero-page offsets of the Linux boot protocol, plus every rejection. */
#include <asm/bootparam.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/boot/boot.h"
#include "kiln/boot/layout.h"

#define MIB         (1ULL << 20)
#define GIB         (1ULL << 30)
#define RAM_SIZE    (64 * MIB)
#define MAX_FILES   4
#define PM_SIZE     0x3000 /* protected-mode kernel bytes in the test images */
#define INITRD_SIZE 5000
#define HDR_START   0x1f1
#define HDR_END     0x268 /* 0x1f1 + sizeof(struct setup_header): protocol 2.15 */

struct fixture {
    struct guest_mem mem;
    char dir[64];
    char paths[MAX_FILES][160];
    int nfiles;
    uint8_t *image;
    size_t image_len;
};

static int fixture_setup_size(void **state, uint64_t ram_size)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct error err;
    if (!f || guest_mem_init(&f->mem, ram_size, &err) != 0)
        return -1;
    strcpy(f->dir, "/tmp/kiln-boot-bz-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    *state = f;
    return 0;
}

static int fixture_setup(void **state)
{
    return fixture_setup_size(state, RAM_SIZE);
}

/* 3 GiB + 64 MiB: RAM on both sides of the MMIO hole (NORESERVE, so it is cheap). */
static int fixture_setup_big(void **state)
{
    return fixture_setup_size(state, 3 * GIB + 64 * MIB);
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < f->nfiles; i++)
        unlink(f->paths[i]);
    rmdir(f->dir);
    guest_mem_destroy(&f->mem);
    free(f->image);
    free(f);
    return 0;
}

static const char *write_file(struct fixture *f, const char *name, const void *data, size_t len)
{
    assert_true(f->nfiles < MAX_FILES);
    char *path = f->paths[f->nfiles++];
    snprintf(path, sizeof(f->paths[0]), "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (len)
        assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    return path;
}

static const char *write_initrd(struct fixture *f, size_t size)
{
    uint8_t *data = malloc(size);
    for (size_t i = 0; i < size; i++)
        data[i] = (uint8_t)(0x3c ^ i);
    const char *path = write_file(f, "initrd", data, size);
    free(data);
    return path;
}

/* ---- bzImage builder ---- */

struct bz_spec {
    uint16_t version;
    uint16_t xloadflags;
    uint8_t setup_sects; /* 0 means 4 */
    uint8_t jump;        /* header ends at 0x202 + jump */
    uint32_t init_size;
    uint64_t pref_address;
    uint32_t cmdline_size;
    uint32_t initrd_addr_max;
};

static struct bz_spec bz_default(void)
{
    return (struct bz_spec){
        .version = 0x020f,
        .xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G,
        .setup_sects = 3,
        .jump = HDR_END - 0x202,
        .init_size = 0x400000,
        .pref_address = 0x1000000,
        .cmdline_size = 2047,
        .initrd_addr_max = 0x7fffffff,
    };
}

static size_t bz_setup_size(const struct bz_spec *spec)
{
    return ((size_t)(spec->setup_sects ? spec->setup_sects : 4) + 1) * 512;
}

/* Setup sectors full of 0xee (so copying too much shows), the header at 0x1f1 with
 * distinctive values, then PM_SIZE bytes of protected-mode "kernel". */
static const char *bz_write(struct fixture *f, const struct bz_spec *spec, size_t cut)
{
    size_t setup = bz_setup_size(spec);
    f->image_len = setup + PM_SIZE;
    free(f->image);
    f->image = malloc(f->image_len);
    memset(f->image, 0xee, setup);
    for (size_t i = setup; i < f->image_len; i++)
        f->image[i] = (uint8_t)(i * 13 + 5);

    struct setup_header hdr = {
        .setup_sects = spec->setup_sects,
        .root_flags = 1,
        .syssize = PM_SIZE / 16,
        .vid_mode = 0xffff,
        .root_dev = 0x0301,
        .boot_flag = 0xaa55,
        .jump = (uint16_t)(0xeb | spec->jump << 8),
        .header = 0x53726448,
        .version = spec->version,
        .start_sys_seg = 0x1000,
        .kernel_version = 0x0300,
        .loadflags = CAN_USE_HEAP,
        .setup_move_size = 0x8000,
        .code32_start = 0x100000,
        .heap_end_ptr = 0x5000,
        .initrd_addr_max = spec->initrd_addr_max,
        .kernel_alignment = 0x200000,
        .relocatable_kernel = 1,
        .min_alignment = 21,
        .xloadflags = spec->xloadflags,
        .cmdline_size = spec->cmdline_size,
        .payload_offset = 0x2a0,
        .payload_length = 0x1234,
        .pref_address = spec->pref_address,
        .init_size = spec->init_size,
        .handover_offset = 0x190,
        .kernel_info_offset = 0x3c0,
    };
    /* Only the bytes up to the jump target are header; the rest stays 0xee. */
    memcpy(f->image + HDR_START, &hdr, 0x202 + spec->jump - HDR_START);
    return write_file(f, "bzImage", f->image, cut ? cut : f->image_len);
}

/* ---- helpers ---- */

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static const uint8_t *ram(struct fixture *f, uint64_t gpa, uint64_t len)
{
    const uint8_t *p = guest_mem_ptr(&f->mem, gpa, len);
    assert_non_null(p);
    return p;
}

static int load(struct fixture *f, const char *kernel, const char *initrd, const char *cmdline,
                struct boot_entry *entry, struct error *err)
{
    struct boot_config cfg = {
        .kernel_path = kernel, .initrd_path = initrd, .cmdline = cmdline, .rsdp_gpa = 0xe0000};
    memset(entry, 0, sizeof(*entry));
    memset(err, 0, sizeof(*err));
    return boot_load(&f->mem, &cfg, entry, err);
}

static void expect_error(struct fixture *f, const char *kernel, const char *initrd,
                         const char *cmdline, int code, const char *fmt)
{
    struct boot_entry entry;
    struct error err;
    char msg[512];
    snprintf(msg, sizeof(msg), fmt, initrd ? initrd : kernel);
    assert_int_equal(load(f, kernel, initrd, cmdline, &entry, &err), code);
    assert_string_equal(err.msg, msg);
}

/* The zero page's header must be the image's, byte for byte, except what the loader sets. */
static void assert_header_copied(struct fixture *f, uint64_t initrd_gpa, uint32_t initrd_size)
{
    /* Indexed, not expected + 0x218 - HDR_START: that pointer would first point past the
     * array, which is undefined (clang's UBSan stops there). */
    uint8_t expected[HDR_END - HDR_START];
    memcpy(expected, f->image + HDR_START, sizeof(expected));
    uint8_t jump = f->image[0x201];
    memset(&expected[0x202 + jump - HDR_START], 0, HDR_END - 0x202 - jump);
    expected[0x210 - HDR_START] = 0xff;                               /* type_of_loader */
    expected[0x211 - HDR_START] |= LOADED_HIGH;                       /* loadflags */
    put_le32(&expected[0x218 - HDR_START], (uint32_t)initrd_gpa);     /* ramdisk_image */
    put_le32(&expected[0x21c - HDR_START], initrd_size);              /* ramdisk_size */
    put_le32(&expected[0x228 - HDR_START], (uint32_t)LAYOUT_CMDLINE); /* cmd_line_ptr */
    assert_memory_equal(ram(f, LAYOUT_BOOT_PARAMS + HDR_START, sizeof(expected)), expected,
                        sizeof(expected));
}

static void assert_e820(struct fixture *f, const uint64_t (*map)[3], int n)
{
    const uint8_t *bp = ram(f, LAYOUT_BOOT_PARAMS, 4096);
    assert_int_equal(bp[0x1e8], n);
    for (int i = 0; i < n; i++) {
        const uint8_t *e = bp + 0x2d0 + 20 * i;
        assert_int_equal(le64(e), map[i][0]);
        assert_int_equal(le64(e + 8), map[i][1]);
        assert_int_equal(le32(e + 16), map[i][2]);
    }
}

/* Everything in the zero page before the e820 count stays zero: no BIOS data to report. */
static void assert_low_zero_page_clear(struct fixture *f)
{
    const uint8_t *bp = ram(f, LAYOUT_BOOT_PARAMS, 4096);
    assert_int_equal(le64(bp + 0x70), 0xe0000); /* acpi_rsdp_addr */
    for (int i = 0; i < 0x1e8; i++)
        if ((i < 0xc0 || i >= 0xcc) && (i < 0x70 || i >= 0x78)) /* checked separately */
            assert_int_equal(bp[i], 0);
    assert_int_equal(bp[0x1ef], 0); /* sentinel: we copied only the header */
}

/* ---- loading ---- */

static void test_bzimage_loads(void **state)
{
    struct fixture *f = *state;
    struct bz_spec spec = bz_default();
    const char *kernel = bz_write(f, &spec, 0);
    const char *initrd = write_initrd(f, INITRD_SIZE);
    struct boot_entry entry;
    struct error err;
    assert_int_equal(load(f, kernel, initrd, "console=ttyS0", &entry, &err), 0);

    assert_int_equal(entry.mode, BOOT_ENTRY_LINUX64);
    assert_int_equal(entry.rip, 0x100200);
    assert_int_equal(entry.boot_info_gpa, LAYOUT_BOOT_PARAMS);
    assert_string_equal(entry.format, "bzImage");
    size_t setup = bz_setup_size(&spec);
    assert_memory_equal(ram(f, 0x100000, PM_SIZE), f->image + setup, PM_SIZE);
    assert_memory_equal(ram(f, LAYOUT_CMDLINE, 14), "console=ttyS0", 14);

    uint64_t initrd_gpa = (RAM_SIZE - INITRD_SIZE) & ~0xfffULL;
    assert_header_copied(f, initrd_gpa, INITRD_SIZE);
    const uint8_t *rd = ram(f, initrd_gpa, INITRD_SIZE);
    for (size_t i = 0; i < INITRD_SIZE; i++)
        assert_int_equal(rd[i], (uint8_t)(0x3c ^ i));
    const uint64_t map[3][3] = {
        {0, 0x9fc00, 1}, {0x9fc00, 0x60400, 2}, {0x100000, RAM_SIZE - 0x100000, 1}};
    assert_e820(f, map, 3);
    assert_low_zero_page_clear(f);
    const uint8_t *bp = ram(f, LAYOUT_BOOT_PARAMS, 4096);
    assert_int_equal(le32(bp + 0xc0), 0); /* ext_ramdisk_image */
    assert_int_equal(le32(bp + 0xc4), 0); /* ext_ramdisk_size */
    assert_int_equal(le32(bp + 0xc8), 0); /* ext_cmd_line_ptr */
}

static void test_bzimage_above_4g(void **state)
{
    struct fixture *f = *state;
    struct bz_spec spec = bz_default();
    const char *kernel = bz_write(f, &spec, 0);
    const char *initrd = write_initrd(f, INITRD_SIZE);
    struct boot_entry entry;
    struct error err;
    assert_int_equal(load(f, kernel, initrd, "", &entry, &err), 0);
    const uint64_t map[4][3] = {{0, 0x9fc00, 1},
                                {0x9fc00, 0x60400, 2},
                                {0x100000, 0xc0000000 - 0x100000, 1},
                                {4 * GIB, 64 * MIB, 1}};
    assert_e820(f, map, 4);
    /* Below initrd_addr_max (2 GiB - 1), not at the top of the 3 GiB low RAM. */
    uint64_t initrd_gpa = (0x80000000 - INITRD_SIZE) & ~0xfffULL;
    assert_int_equal(initrd_gpa, 0x7fffe000);
    assert_header_copied(f, initrd_gpa, INITRD_SIZE);
}

static void test_bzimage_setup_sects_zero_means_4(void **state)
{
    struct fixture *f = *state;
    struct bz_spec spec = bz_default();
    spec.setup_sects = 0;
    const char *kernel = bz_write(f, &spec, 0);
    struct boot_entry entry;
    struct error err;
    assert_int_equal(load(f, kernel, NULL, "", &entry, &err), 0);
    assert_memory_equal(ram(f, 0x100000, PM_SIZE), f->image + 5 * 512, PM_SIZE);
}

static void test_bzimage_short_header(void **state)
{
    struct fixture *f = *state;
    struct bz_spec spec = bz_default();
    spec.version = 0x020c;
    spec.jump = 0x3a; /* header ends at 0x23c, right after cmdline_size */
    const char *kernel = bz_write(f, &spec, 0);
    struct boot_entry entry;
    struct error err;
    assert_int_equal(load(f, kernel, NULL, "", &entry, &err), 0);
    /* Bytes 0x23c..0x268 of the image are 0xee setup code, not header: zero in the page. */
    assert_header_copied(f, 0, 0);
}

static void test_bzimage_initrd_addr_max(void **state)
{
    struct fixture *f = *state;
    struct bz_spec spec = bz_default();
    spec.initrd_addr_max = 0x1ffffff;
    const char *kernel = bz_write(f, &spec, 0);
    const char *initrd = write_initrd(f, INITRD_SIZE);
    struct boot_entry entry;
    struct error err;
    assert_int_equal(load(f, kernel, initrd, "", &entry, &err), 0);
    assert_header_copied(f, (0x2000000 - INITRD_SIZE) & ~0xfffULL, INITRD_SIZE);
}

static void test_bzimage_initrd_above_kernel(void **state)
{
    struct fixture *f = *state;
    struct bz_spec spec = bz_default();
    /* The kernel runs at 16 MiB (pref_address) and needs init_size = 20 MiB from there. */
    spec.init_size = 20 * MIB;
    spec.initrd_addr_max = 0x1ffffff;
    const char *kernel = bz_write(f, &spec, 0);
    const char *initrd = write_initrd(f, INITRD_SIZE);
    expect_error(f, kernel, initrd, "", -ENOMEM,
                 "--initrd '%s': 1 MiB does not fit in guest RAM below 0x2000000 (0 MiB free; "
                 "give the VM more --memory)");
}

static void test_bzimage_cmdline_limit(void **state)
{
    struct fixture *f = *state;
    struct bz_spec spec = bz_default();
    spec.cmdline_size = 255;
    const char *kernel = bz_write(f, &spec, 0);
    char cmdline[257];
    memset(cmdline, 'c', 256);
    cmdline[256] = '\0';
    expect_error(f, kernel, NULL, cmdline, -E2BIG,
                 "--cmdline: 256 bytes is longer than the kernel's limit of 255 bytes");
    cmdline[255] = '\0';
    struct boot_entry entry;
    struct error err;
    assert_int_equal(load(f, kernel, NULL, cmdline, &entry, &err), 0);
    assert_memory_equal(ram(f, LAYOUT_CMDLINE, 256), cmdline, 256);
}

/* ---- rejections ---- */

static void test_bzimage_protocol_too_old(void **state)
{
    struct fixture *f = *state;
    struct bz_spec spec = bz_default();
    spec.version = 0x020b;
    expect_error(f, bz_write(f, &spec, 0), NULL, "", -ENOEXEC,
                 "kernel '%s': bzImage boot protocol 2.11 is too old (need 2.12 or newer with a "
                 "64-bit entry point)");
}

static void test_bzimage_no_64bit_entry(void **state)
{
    struct fixture *f = *state;
    struct bz_spec spec = bz_default();
    spec.xloadflags = XLF_CAN_BE_LOADED_ABOVE_4G;
    expect_error(f, bz_write(f, &spec, 0), NULL, "", -ENOEXEC,
                 "kernel '%s': bzImage (boot protocol 2.15) has no 64-bit entry point (need 2.12 "
                 "or newer with a 64-bit entry point)");
}

static void test_bzimage_truncated_kernel(void **state)
{
    struct fixture *f = *state;
    struct bz_spec spec = bz_default();
    /* 2048 setup bytes + 0x3000 per syssize = 14336 expected; cut 100 bytes short. */
    expect_error(f, bz_write(f, &spec, 14236), NULL, "", -ENOEXEC,
                 "kernel '%s': truncated (bzImage protected-mode kernel; file has 14236 bytes, "
                 "expected 14336 bytes)");
}

static void test_bzimage_truncated_header(void **state)
{
    struct fixture *f = *state;
    struct bz_spec spec = bz_default();
    expect_error(f, bz_write(f, &spec, 0x230), NULL, "", -ENOEXEC,
                 "kernel '%s': truncated (bzImage setup header; file has 560 bytes, expected 616 "
                 "bytes)");
}

static void test_bzimage_too_big_for_ram(void **state)
{
    struct fixture *f = *state;
    struct bz_spec spec = bz_default();
    spec.init_size = 60 * MIB; /* 16 MiB + 60 MiB > 64 MiB */
    expect_error(f, bz_write(f, &spec, 0), NULL, "", -ENOMEM,
                 "kernel '%s': bzImage needs guest RAM up to 0x4c00000 to load and decompress, "
                 "but guest RAM below 4 GiB ends at 0x4000000; give the VM more --memory");
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_bzimage_loads),
        cmocka_unit_test_setup_teardown(test_bzimage_above_4g, fixture_setup_big, fixture_teardown),
        TEST(test_bzimage_setup_sects_zero_means_4),
        TEST(test_bzimage_short_header),
        TEST(test_bzimage_initrd_addr_max),
        TEST(test_bzimage_initrd_above_kernel),
        TEST(test_bzimage_cmdline_limit),
        TEST(test_bzimage_protocol_too_old),
        TEST(test_bzimage_no_64bit_entry),
        TEST(test_bzimage_truncated_kernel),
        TEST(test_bzimage_truncated_header),
        TEST(test_bzimage_too_big_for_ram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
