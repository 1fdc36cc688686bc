/* The VM's device table on /dev/kvm: vm_build (no kernel) makes every device of a config in
 * slot order, each with its ports or virtio slot, and every device with state round-trips
 * through its kind's save/restore byte for byte; vm_boot then loads a kernel on it. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/vm/platform.h"
#include "kiln/vm/vm.h"

static char disk_path[64], console_path[64];

/* A config with one of each virtio device kiln can make without root (no TAP). */
static void make_config(struct vm_config *cfg)
{
    config_init(cfg);
    struct error err = {{0}};
    snprintf(disk_path, sizeof(disk_path), "/tmp/kiln-vmdev-%d.img", (int)getpid());
    snprintf(console_path, sizeof(console_path), "/tmp/kiln-vmdev-%d.log", (int)getpid());
    int fd = open(disk_path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 1 << 20), 0);
    close(fd);
    struct disk_config disk;
    assert_int_equal(config_parse_disk(disk_path, &disk, &err), 0);
    assert_int_equal(config_add_disk(cfg, &disk, &err), 0);
    cfg->rng = true;
    char vconsole[80];
    snprintf(vconsole, sizeof(vconsole), "file:%s", console_path);
    assert_int_equal(config_set_vconsole(cfg, "--vconsole", vconsole, &err), 0);
    assert_int_equal(config_set_memory(cfg, "--memory", "64M", &err), 0);
    assert_int_equal(
        config_set_balloon(cfg, "--balloon", "16M,stats=1,free-page-reporting=on", &err), 0);
    cfg->log_level = LOG_ERROR;
}

static bool have_kvm(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "SKIP: no /dev/kvm (%s)\n", strerror(errno));
        return false;
    }
    close(fd);
    return true;
}

/* vm_build on make_config's config, or the test fails with vm_build's line. */
static struct vm *build_vm(struct vm_config *cfg)
{
    struct vm *vm = calloc(1, sizeof(*vm));
    struct error err = {{0}};
    if (vm_build(vm, cfg, &err) < 0)
        fail_msg("vm_build: %s", err.msg);
    return vm;
}

static void release(struct vm *vm, struct vm_config *cfg)
{
    vm_destroy(vm);
    free(vm);
    config_free(cfg);
    unlink(disk_path);
}

static const struct vm_device *find(const struct vm *vm, const char *name)
{
    for (unsigned i = 0; i < vm->ndevices; i++)
        if (strcmp(vm->devices[i].name, name) == 0)
            return &vm->devices[i];
    return NULL;
}

static void test_build_makes_the_devices_in_slot_order(void **state)
{
    if (!have_kvm())
        skip();
    struct vm_config cfg;
    make_config(&cfg);
    struct vm *vm = build_vm(&cfg);
    const char *platform[] = {"serial 0", "i8042 0", "test-exit 0", "post-code 0", "rtc 0", "pm 0"};
    for (size_t i = 0; i < sizeof(platform) / sizeof(platform[0]); i++) {
        const struct vm_device *d = find(vm, platform[i]);
        assert_non_null(d);
        assert_int_equal(d->slot, -1);
    }
    assert_non_null(bus_find(&vm->pio_bus, PLATFORM_COM1_PORT));
    assert_non_null(bus_find(&vm->pio_bus, PLATFORM_RTC_PORT));
    /* virtio: the disk, then the rng, the console and the balloon, in slots 0, 1, 2, 3. */
    assert_int_equal(find(vm, "virtio-blk 0")->slot, 0);
    assert_int_equal(find(vm, "virtio-rng 0")->slot, 1);
    assert_int_equal(find(vm, "virtio-console 0")->slot, 2);
    assert_int_equal(find(vm, "virtio-balloon 0")->slot, 3);
    assert_int_equal(vm->nvirtio, 4);
    assert_non_null(bus_find(&vm->mmio_bus, PLATFORM_VIRTIO_MMIO_BASE + 2 * 0x1000));
    assert_int_equal(vm->nvcpus, 1);
    release(vm, &cfg);
}

static void test_every_state_round_trips(void **state)
{
    if (!have_kvm())
        skip();
    struct vm_config cfg;
    make_config(&cfg);
    struct vm *vm = build_vm(&cfg);
    struct error err = {{0}};
    unsigned with_state = 0;
    for (unsigned i = 0; i < vm->ndevices; i++) {
        const struct vm_device *d = &vm->devices[i];
        if (!d->kind->save) {
            assert_int_equal(d->kind->state_size, 0);
            assert_null(d->kind->restore);
            continue;
        }
        assert_true(d->kind->state_size > 0);
        assert_non_null(d->kind->restore);
        uint8_t *a = calloc(1, d->kind->state_size), *b = calloc(1, d->kind->state_size);
        if (d->kind->save(d->dev, a, &err) < 0 || d->kind->restore(d->dev, a, &err) < 0 ||
            d->kind->save(d->dev, b, &err) < 0)
            fail_msg("%s: %s", d->name, err.msg);
        assert_memory_equal(a, b, d->kind->state_size);
        free(a);
        free(b);
        with_state++;
    }
    assert_int_equal(with_state, 6); /* serial, rtc, blk, rng, console, balloon */
    release(vm, &cfg);
}

/* The names a device's counters must have, in order (NULL ends the list). */
struct expected_counters {
    const char *device;
    const char *names[VM_DEVICE_MAX_COUNTERS + 1];
    unsigned queues;
};

/* What GET /vm/counters will read: every device of a full config reports its counters by name,
 * each queue of a virtio device its five, every vCPU its exit reasons; all zero before the
 * guest ran. */
static void test_every_device_reports_its_counters(void **state)
{
    if (!have_kvm())
        skip();
    struct vm_config cfg;
    make_config(&cfg);
    struct vm *vm = build_vm(&cfg);
    static const struct expected_counters expected[] = {
        {"serial 0", {"rx_bytes", "tx_bytes", "tx_dropped"}, 0},
        {"i8042 0", {NULL}, 0},
        {"test-exit 0", {NULL}, 0},
        {"post-code 0", {NULL}, 0},
        {"rtc 0", {NULL}, 0},
        {"pm 0", {NULL}, 0},
        {"virtio-blk 0",
         {"malformed", "read_ops", "read_bytes", "write_ops", "write_bytes", "flush_ops",
          "discard_ops", "write_zeroes_ops", "errors", "throttled", "throttled_ms", "bw_tokens",
          "ops_tokens"},
         1},
        {"virtio-rng 0",
         {"malformed", "bytes", "throttled", "throttled_ms", "bw_tokens", "ops_tokens"},
         1},
        {"virtio-console 0", {"malformed", "rx_bytes", "tx_bytes"}, 2},
        {"virtio-balloon 0",
         {"malformed", "inflated_pages", "deflated_pages", "discarded_pages", "reported_pages",
          "bad_pfns", "repeated_pfns", "excess_pfns", "discard_errors"},
         4},
    };
    static const char *const queue_names[] = {"notifications", "chains", "used", "interrupts",
                                              "bad_chains"};
    size_t ndevices = sizeof(expected) / sizeof(expected[0]);
    assert_int_equal(vm->ndevices, ndevices);
    struct vm_counter counters[VM_DEVICE_MAX_COUNTERS];
    for (size_t i = 0; i < ndevices; i++) {
        const struct vm_device *d = find(vm, expected[i].device);
        assert_non_null(d);
        size_t n = vm_device_counters(d, counters, VM_DEVICE_MAX_COUNTERS);
        size_t want = 0;
        while (expected[i].names[want])
            want++;
        if (n != want)
            fail_msg("%s: %zu counters (expected %zu)", d->name, n, want);
        for (size_t c = 0; c < n; c++) {
            assert_string_equal(counters[c].name, expected[i].names[c]);
            assert_int_equal(counters[c].value, 0);
        }
        assert_int_equal(vm_device_queue_count(d), expected[i].queues);
        for (unsigned q = 0; q < expected[i].queues; q++) {
            assert_int_equal(vm_device_queue_counters(d, q, counters, VM_DEVICE_MAX_COUNTERS), 5);
            for (size_t c = 0; c < 5; c++) {
                assert_string_equal(counters[c].name, queue_names[c]);
                assert_int_equal(counters[c].value, 0);
            }
        }
        assert_int_equal(vm_device_queue_counters(d, expected[i].queues, counters, 5), 0);
    }
    /* A caller with less room gets the first ones. */
    assert_int_equal(vm_device_counters(find(vm, "virtio-blk 0"), counters, 2), 2);
    assert_string_equal(counters[1].name, "read_ops");

    uint64_t exits[VCPU_EXITS_COUNT];
    vcpu_read_exit_counters(&vm->vcpus[0], exits);
    for (unsigned c = 0; c < VCPU_EXITS_COUNT; c++)
        assert_int_equal(exits[c], 0);
    release(vm, &cfg);
}

/* A bad kernel fails vm_boot with its own line and leaves a VM that vm_destroy releases. */
static void test_boot_after_build(void **state)
{
    if (!have_kvm())
        skip();
    struct vm_config cfg;
    make_config(&cfg);
    struct error err = {{0}};
    assert_int_equal(config_set_kernel(&cfg, "--kernel", disk_path, &err), 0);
    struct vm *vm = build_vm(&cfg);
    assert_true(vm_boot(vm, &err) < 0); /* a zero-filled disk image is no kernel */
    assert_non_null(strstr(err.msg, disk_path));
    release(vm, &cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_makes_the_devices_in_slot_order),
        cmocka_unit_test(test_every_state_round_trips),
        cmocka_unit_test(test_every_device_reports_its_counters),
        cmocka_unit_test(test_boot_after_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
