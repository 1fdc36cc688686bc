/* Unit tests for the boot memory map (e820 / PVH) and for boot_load()'s format detection:
 * missing, empty, non-regular and unrecognised kernel files. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/vm/platform.h"

#include "kiln/boot/boot.h"
#include "kiln/boot/layout.h"

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

struct fixture {
    struct guest_mem mem;
    char dir[64];
    char path[160];
};

static int fixture_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct error err;
    if (!f || guest_mem_init(&f->mem, 64 * MIB, &err) != 0)
        return -1;
    strcpy(f->dir, "/tmp/kiln-boot-layout-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    if (f->path[0])
        unlink(f->path);
    rmdir(f->dir);
    guest_mem_destroy(&f->mem);
    free(f);
    return 0;
}

static const char *write_kernel(struct fixture *f, const void *data, size_t len)
{
    snprintf(f->path, sizeof(f->path), "%s/kernel", f->dir);
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    if (len)
        assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    return f->path;
}

static void assert_range(const struct boot_mem_range *r, uint64_t addr, uint64_t size,
                         uint32_t type)
{
    assert_int_equal(r->addr, addr);
    assert_int_equal(r->size, size);
    assert_int_equal(r->type, type);
}

static void test_memory_map_64m(void **state)
{
    struct fixture *f = *state;
    struct boot_mem_range map[BOOT_MEMORY_MAP_MAX];
    assert_int_equal(boot_memory_map(&f->mem, map, BOOT_MEMORY_MAP_MAX), 3);
    assert_range(&map[0], 0, 0x9fc00, 1);
    assert_range(&map[1], 0x9fc00, 0x100000 - 0x9fc00, 2);
    assert_range(&map[2], 0x100000, 64 * MIB - 0x100000, 1);
    /* The VM generation ID's page is reserved, so the guest never hands it out as RAM. */
    assert_true(PLATFORM_VMGENID_ADDR >= map[1].addr);
    assert_true(PLATFORM_VMGENID_ADDR + PLATFORM_VMGENID_SIZE <= map[1].addr + map[1].size);
}

static void test_memory_map_above_4g(void **state)
{
    (void)state;
    struct guest_mem mem;
    struct error err;
    /* NORESERVE: 3 GiB + 64 MiB of address space costs nothing until touched. */
    assert_int_equal(guest_mem_init(&mem, 3 * GIB + 64 * MIB, &err), 0);
    struct boot_mem_range map[BOOT_MEMORY_MAP_MAX];
    assert_int_equal(boot_memory_map(&mem, map, BOOT_MEMORY_MAP_MAX), 4);
    assert_range(&map[0], 0, 0x9fc00, 1);
    assert_range(&map[1], 0x9fc00, 0x60400, 2);
    assert_range(&map[2], 0x100000, 0xc0000000 - 0x100000, 1);
    assert_range(&map[3], 4 * GIB, 64 * MIB, 1);
    guest_mem_destroy(&mem);
}

static void test_memory_map_exactly_3g(void **state)
{
    (void)state;
    struct guest_mem mem;
    struct error err;
    assert_int_equal(guest_mem_init(&mem, 3 * GIB, &err), 0);
    struct boot_mem_range map[BOOT_MEMORY_MAP_MAX];
    assert_int_equal(boot_memory_map(&mem, map, BOOT_MEMORY_MAP_MAX), 3);
    assert_range(&map[2], 0x100000, 0xc0000000 - 0x100000, 1);
    guest_mem_destroy(&mem);
}

static void test_memory_map_no_room(void **state)
{
    struct fixture *f = *state;
    struct boot_mem_range map[2] = {{0}};
    assert_int_equal(boot_memory_map(&f->mem, map, 2), -ENOSPC);
    assert_int_equal(map[0].size, 0); /* nothing written on failure */
}

static void expect_load_error(struct fixture *f, const char *path, int code, const char *msg)
{
    struct boot_config cfg = {.kernel_path = path, .cmdline = ""};
    struct boot_entry entry = {0};
    struct error err = {{0}};
    assert_int_equal(boot_load(&f->mem, &cfg, &entry, &err), code);
    assert_string_equal(err.msg, msg);
    assert_null(entry.format); /* entry is untouched on failure */
}

static void expect_not_a_kernel(struct fixture *f, const char *path)
{
    char msg[512];
    snprintf(msg, sizeof(msg),
             "kernel '%s': not an ELF or bzImage kernel image (expected an ELF vmlinux, a PVH ELF "
             "or a bzImage)",
             path);
    expect_load_error(f, path, -ENOEXEC, msg);
}

static void test_missing_kernel(void **state)
{
    struct fixture *f = *state;
    char path[160], msg[512];
    snprintf(path, sizeof(path), "%s/no-such-kernel", f->dir);
    snprintf(msg, sizeof(msg), "kernel '%s': cannot open: No such file or directory", path);
    expect_load_error(f, path, -ENOENT, msg);
}

static void test_kernel_is_directory(void **state)
{
    struct fixture *f = *state;
    char msg[512];
    snprintf(msg, sizeof(msg), "kernel '%s': not a regular file", f->dir);
    expect_load_error(f, f->dir, -EINVAL, msg);
}

static void test_no_kernel_path(void **state)
{
    struct fixture *f = *state;
    expect_load_error(f, NULL, -EINVAL, "kernel: no kernel image given");
}

static void test_empty_kernel(void **state)
{
    struct fixture *f = *state;
    expect_not_a_kernel(f, write_kernel(f, "", 0));
}

static void test_random_bytes(void **state)
{
    struct fixture *f = *state;
    uint8_t junk[8192];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(junk); i++) {
        x = x * 1103515245 + 12345; /* fixed LCG: the same "random" file every run */
        junk[i] = (uint8_t)(x >> 16);
    }
    expect_not_a_kernel(f, write_kernel(f, junk, sizeof(junk)));
}

static void test_magic_only_fragments(void **state)
{
    struct fixture *f = *state;
    /* Three bytes of ELF magic, and "HdrS" without the 0xAA55 boot flag: neither format. */
    expect_not_a_kernel(f, write_kernel(f, "\177EL", 3));
    uint8_t hdr[0x300] = {0};
    memcpy(hdr + 0x202, "HdrS", 4);
    expect_not_a_kernel(f, write_kernel(f, hdr, sizeof(hdr)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_memory_map_64m, fixture_setup, fixture_teardown),
        cmocka_unit_test(test_memory_map_above_4g),
        cmocka_unit_test(test_memory_map_exactly_3g),
        cmocka_unit_test_setup_teardown(test_memory_map_no_room, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_missing_kernel, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_kernel_is_directory, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_no_kernel_path, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_empty_kernel, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_random_bytes, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_magic_only_fragments, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
