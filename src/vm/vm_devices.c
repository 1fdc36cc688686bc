/* The VM's device table: one kind (ops table) per device model, and the walk that builds the
 * devices from the config in a fixed order, plugs virtio ones into slots, attaches, tears down. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kiln/devices/i8042.h"
#include "kiln/devices/pm.h"
#include "kiln/devices/rtc.h"
#include "kiln/devices/serial.h"
#include "kiln/host/tap.h"
#include "kiln/devices/test_exit.h"
#include "kiln/devices/virtio_balloon.h"
#include "kiln/devices/virtio_blk.h"
#include "kiln/devices/virtio_console.h"
#include "kiln/devices/virtio_net.h"
#include "kiln/devices/virtio_rng.h"
#include "kiln/vm/vm.h"

/* Port 0x80 is the POST-code/delay port: Linux writes it for I/O delays, so claim it quietly. */
#define POST_CODE_PORT 0x80

static int register_pio(struct vm *vm, uint64_t base, uint64_t len, const char *name,
                        const struct bus_ops *ops, void *opaque, struct error *err)
{
    struct bus_range range = {.base = base, .len = len, .name = name, .ops = ops, .opaque = opaque};
    return bus_register(&vm->pio_bus, &range, err);
}

static struct stop_notifier vm_stop_notifier(struct vm *vm)
{
    return (struct stop_notifier){
        .request = vm_request_stop, .opaque = vm, .requested = vm_stop_requested};
}

static void *zalloc(size_t size, const char *what, struct error *err)
{
    void *p = calloc(1, size);
    if (!p)
        error_fmt(err, -ENOMEM, "%s: out of memory", what);
    return p;
}

/* Where a kind's counters function writes: at most max entries, however many it has. */
struct counter_list {
    struct vm_counter *out;
    size_t max, n;
};

static void put_counter(struct counter_list *list, const char *name, uint64_t value)
{
    if (list->n < list->max)
        list->out[list->n++] = (struct vm_counter){.name = name, .value = value};
}

/* ---- Platform devices ---- */

static bool line_discard_ready(void *opaque)
{
    return true;
}
static void line_discard(void *opaque, uint8_t byte)
{
}
static void line_no_rx(void *opaque)
{
}

static int serial_create(struct vm *vm, unsigned index, void **out, struct error *err)
{
    struct serial *serial = zalloc(sizeof(*serial), "serial", err);
    if (!serial)
        return -ENOMEM;
    struct serial_backend line = {
        .tx_ready = console_tx_ready,
        .tx = console_tx,
        .rx_space = console_rx_space,
        .opaque = &vm->console,
    };
    if (vm->config->console_device == CONSOLE_ON_VIRTIO) /* ttyS0 exists, its output goes nowhere */
        line = (struct serial_backend){
            .tx_ready = line_discard_ready, .tx = line_discard, .rx_space = line_no_rx};
    struct irq_line irq = {.set_level = vm_set_irq_level, .opaque = vm, .gsi = PLATFORM_COM1_IRQ};
    serial_init(serial, &line, &irq);
    *out = serial;
    return register_pio(vm, PLATFORM_COM1_PORT, 8, "serial (COM1)", &serial_bus_ops, serial, err);
}

static size_t serial_console_receive(void *opaque, const uint8_t *bytes, size_t len)
{
    return serial_receive(opaque, bytes, len);
}

static void serial_console_tx_ready(void *opaque)
{
    serial_tx_ready_again(opaque);
}

/* ttyS0 is fed by the VM's console unless the console is on hvc0. */
static bool serial_has_console(const struct vm *vm)
{
    return vm->config->console_device == CONSOLE_ON_SERIAL;
}

static int serial_attach(struct vm *vm, void *dev, struct error *err)
{
    if (!serial_has_console(vm))
        return 0;
    struct console_device line = {.receive = serial_console_receive,
                                  .tx_ready_again = serial_console_tx_ready,
                                  .opaque = dev};
    return console_attach(&vm->console, &vm->loop, &line, vm_console_quit, vm, err);
}

static void serial_detach(struct vm *vm, void *dev)
{
    if (serial_has_console(vm))
        console_detach(&vm->console);
}

static int serial_save_state(void *dev, void *state, struct error *err)
{
    serial_save(dev, state);
    return 0;
}

static int serial_restore_state(void *dev, const void *state, struct error *err)
{
    return serial_restore(dev, state, err);
}

static size_t serial_counter_list(void *dev, struct vm_counter *out, size_t max)
{
    struct serial_counters c;
    serial_counters(dev, &c);
    struct counter_list list = {.out = out, .max = max};
    put_counter(&list, "rx_bytes", c.rx_bytes);
    put_counter(&list, "tx_bytes", c.tx_bytes);
    put_counter(&list, "tx_dropped", c.tx_dropped);
    return list.n;
}

static void serial_free(void *dev)
{
    serial_destroy(dev);
    free(dev);
}

static int i8042_create(struct vm *vm, unsigned index, void **out, struct error *err)
{
    struct i8042 *kbd = zalloc(sizeof(*kbd), "i8042", err);
    if (!kbd)
        return -ENOMEM;
    kbd->stop = vm_stop_notifier(vm);
    *out = kbd;
    return register_pio(vm, I8042_DATA_PORT, I8042_COMMAND_PORT - I8042_DATA_PORT + 1, "i8042",
                        &i8042_bus_ops, kbd, err);
}

static int test_exit_create(struct vm *vm, unsigned index, void **out, struct error *err)
{
    struct test_exit *te = zalloc(sizeof(*te), "test-exit", err);
    if (!te)
        return -ENOMEM;
    te->stop = vm_stop_notifier(vm);
    *out = te;
    return register_pio(vm, TEST_EXIT_PORT, TEST_EXIT_SIZE, "test-exit", &test_exit_bus_ops, te,
                        err);
}

static void ignore_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
    memset(data, 0xff, size);
}

static void ignore_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
}

static const struct bus_ops post_code_ops = {.read = ignore_read, .write = ignore_write};

static int post_code_create(struct vm *vm, unsigned index, void **out, struct error *err)
{
    *out = NULL; /* ports only, no state */
    return register_pio(vm, POST_CODE_PORT, 1, "POST code", &post_code_ops, NULL, err);
}

static int rtc_create(struct vm *vm, unsigned index, void **out, struct error *err)
{
    struct rtc *rtc = zalloc(sizeof(*rtc), "CMOS RTC", err);
    if (!rtc)
        return -ENOMEM;
    rtc_init(rtc, NULL, NULL);
    *out = rtc;
    return register_pio(vm, PLATFORM_RTC_PORT, 2, "CMOS RTC", &rtc_bus_ops, rtc, err);
}

static int rtc_save_state(void *dev, void *state, struct error *err)
{
    rtc_save(dev, state);
    return 0;
}

static int rtc_restore_state(void *dev, const void *state, struct error *err)
{
    return rtc_restore(dev, state, err);
}

static void rtc_free(void *dev)
{
    rtc_destroy(dev);
    free(dev);
}

static int pm_create(struct vm *vm, unsigned index, void **out, struct error *err)
{
    struct pm *pm = zalloc(sizeof(*pm), "ACPI power registers", err);
    if (!pm)
        return -ENOMEM;
    pm->stop = vm_stop_notifier(vm);
    pm->log = &vm->log;
    *out = pm;
    return register_pio(vm, PLATFORM_PM_PORT, PLATFORM_PM_PORT_COUNT, "ACPI power registers",
                        &pm_bus_ops, pm, err);
}

/* i8042, test-exit, the POST-code port and the PM registers hold nothing a guest can read back
 * (their headers say why): no state to save. */
static const struct vm_device_kind serial_kind = {
    .name = "serial",
    .create = serial_create,
    .attach = serial_attach,
    .detach = serial_detach,
    .destroy = serial_free,
    .state_size = sizeof(struct serial_state),
    .save = serial_save_state,
    .restore = serial_restore_state,
    .counters = serial_counter_list,
};
static const struct vm_device_kind i8042_kind = {
    .name = "i8042",
    .create = i8042_create,
    .destroy = free,
};
static const struct vm_device_kind test_exit_kind = {
    .name = "test-exit",
    .create = test_exit_create,
    .destroy = free,
};
static const struct vm_device_kind post_code_kind = {
    .name = "post-code",
    .create = post_code_create,
};
static const struct vm_device_kind rtc_kind = {
    .name = "rtc",
    .create = rtc_create,
    .destroy = rtc_free,
    .state_size = sizeof(struct rtc_state),
    .save = rtc_save_state,
    .restore = rtc_restore_state,
};
static const struct vm_device_kind pm_kind = {
    .name = "pm",
    .create = pm_create,
    .destroy = free,
};

/* ---- virtio devices ---- */

static int blk_create(struct vm *vm, unsigned index, void **out, struct error *err)
{
    struct virtio_blk *blk;
    struct disk_config disk = vm->config->disks[index];
    disk.lock_later = vm->receiving; /* the source VM holds the lock until the switch-over */
    int r = virtio_blk_create(&blk, &disk, &vm->loop, &vm->mem, &vm->log, err);
    *out = r == 0 ? blk : NULL;
    return r;
}

static struct virtio_dev *blk_virtio(void *dev)
{
    return virtio_blk_dev(dev);
}

static int blk_attach(struct vm *vm, void *dev, struct error *err)
{
    return virtio_blk_attach(dev, err);
}

static void blk_detach(struct vm *vm, void *dev)
{
    virtio_blk_detach(dev);
}

static int blk_hand_over(void *dev, bool release, struct error *err)
{
    return virtio_blk_hand_over(dev, release, err);
}

static unsigned blk_in_flight(void *dev)
{
    return virtio_blk_in_flight(dev);
}

static void blk_free(void *dev)
{
    virtio_blk_destroy(dev);
}

static int blk_flush(void *dev, struct error *err)
{
    return virtio_blk_flush_image(dev, err);
}

static int blk_save(void *dev, void *state, struct error *err)
{
    return virtio_blk_save(dev, state, err);
}

static int blk_restore(void *dev, const void *state, struct error *err)
{
    return virtio_blk_restore(dev, state, err);
}

/* Every virtio device's first counter: requests the bad-chain policy or a device refused as
 * malformed, and other driver misuse (virtio_dev_log_once). */
static void put_virtio_errors(struct counter_list *list, const struct virtio_dev *vdev)
{
    put_counter(list, "malformed", virtio_dev_error_count(vdev));
}

/* A rate limit's counters, named "throttled", "rx_throttled"...: requests that waited, the
 * milliseconds they waited, and the tokens left (gauges: they go down as well as up). */
static void put_limit_counters(struct counter_list *list, const struct io_throttle_counters *c,
                               const char *const names[4])
{
    put_counter(list, names[0], c->throttled);
    put_counter(list, names[1], c->throttled_ms);
    put_counter(list, names[2], c->bytes_tokens);
    put_counter(list, names[3], c->ops_tokens);
}

static const char *const limit_names[4] = {"throttled", "throttled_ms", "bw_tokens", "ops_tokens"};
static const char *const rx_limit_names[4] = {"rx_throttled", "rx_throttled_ms", "rx_bw_tokens",
                                              "rx_ops_tokens"};
static const char *const tx_limit_names[4] = {"tx_throttled", "tx_throttled_ms", "tx_bw_tokens",
                                              "tx_ops_tokens"};

static size_t blk_counter_list(void *dev, struct vm_counter *out, size_t max)
{
    struct virtio_blk_counters c;
    virtio_blk_counters(dev, &c);
    struct counter_list list = {.out = out, .max = max};
    put_virtio_errors(&list, virtio_blk_dev(dev));
    put_counter(&list, "read_ops", c.read_ops);
    put_counter(&list, "read_bytes", c.read_bytes);
    put_counter(&list, "write_ops", c.write_ops);
    put_counter(&list, "write_bytes", c.write_bytes);
    put_counter(&list, "flush_ops", c.flush_ops);
    put_counter(&list, "discard_ops", c.discard_ops);
    put_counter(&list, "write_zeroes_ops", c.write_zeroes_ops);
    put_counter(&list, "errors", c.errors);
    struct io_throttle_counters limit;
    virtio_blk_limit_counters(dev, &limit);
    put_limit_counters(&list, &limit, limit_names);
    return list.n;
}

static unsigned blk_get_limits(void *dev, struct rate_limit_config *limits)
{
    virtio_blk_get_limit(dev, &limits[0]);
    return 1;
}

static int blk_set_limits(void *dev, const struct rate_limit_config *limits, struct error *err)
{
    return virtio_blk_set_limit(dev, &limits[0], err);
}

static int net_create(struct vm *vm, unsigned index, void **out, struct error *err)
{
    uint8_t mac[6];
    config_net_mac(vm->config, index, mac);
    *out = NULL;
    int fd = tap_open(vm->config->nets[index].tap, err);
    if (fd < 0)
        return fd;
    struct virtio_net *net;
    int r = virtio_net_create(&net, fd, mac, &vm->loop, &vm->mem, &vm->log, err);
    if (r < 0)
        return r;
    *out = net;
    const struct net_config *cfg = &vm->config->nets[index];
    if (cfg->mac_given) /* a restore must not undo mac= */
        virtio_net_keep_mac(net);
    return virtio_net_set_limits(net, &cfg->rx_limit, &cfg->tx_limit, err);
}

static struct virtio_dev *net_virtio(void *dev)
{
    return virtio_net_dev(dev);
}

static int net_attach(struct vm *vm, void *dev, struct error *err)
{
    return virtio_net_attach(dev, err);
}

static void net_detach(struct vm *vm, void *dev)
{
    virtio_net_detach(dev);
}

static void net_free(void *dev)
{
    virtio_net_destroy(dev);
}

static int net_save(void *dev, void *state, struct error *err)
{
    virtio_net_save(dev, state);
    return 0;
}

static int net_restore(void *dev, const void *state, struct error *err)
{
    return virtio_net_restore(dev, state, err);
}

static size_t net_counter_list(void *dev, struct vm_counter *out, size_t max)
{
    struct virtio_net_stats st;
    virtio_net_stats(dev, &st);
    struct counter_list list = {.out = out, .max = max};
    put_virtio_errors(&list, virtio_net_dev(dev));
    put_counter(&list, "rx_frames", st.rx_frames);
    put_counter(&list, "rx_bytes", st.rx_bytes);
    put_counter(&list, "tx_frames", st.tx_frames);
    put_counter(&list, "tx_bytes", st.tx_bytes);
    put_counter(&list, "rx_dropped", st.rx_dropped);
    put_counter(&list, "tx_dropped", st.tx_dropped);
    put_counter(&list, "announcements", st.announcements);
    struct io_throttle_counters rx, tx;
    virtio_net_limit_counters(dev, &rx, &tx);
    put_limit_counters(&list, &rx, rx_limit_names);
    put_limit_counters(&list, &tx, tx_limit_names);
    return list.n;
}

static unsigned net_get_limits(void *dev, struct rate_limit_config *limits)
{
    virtio_net_get_limits(dev, &limits[0], &limits[1]);
    return 2;
}

static int net_set_limits(void *dev, const struct rate_limit_config *limits, struct error *err)
{
    return virtio_net_set_limits(dev, &limits[0], &limits[1], err);
}

static int rng_create(struct vm *vm, unsigned index, void **out, struct error *err)
{
    struct virtio_rng *rng = zalloc(sizeof(*rng), "virtio-rng", err);
    if (!rng)
        return -ENOMEM;
    int r = virtio_rng_init(rng, &vm->mem, &vm->log, err);
    if (r < 0) {
        free(rng);
        return r;
    }
    *out = rng;
    return virtio_rng_set_limit(rng, &vm->config->rng_limit, err);
}

static int rng_attach(struct vm *vm, void *dev, struct error *err)
{
    return virtio_rng_attach(dev, &vm->loop, err);
}

static void rng_detach(struct vm *vm, void *dev)
{
    virtio_rng_detach(dev);
}

static struct virtio_dev *rng_virtio(void *dev)
{
    return &((struct virtio_rng *)dev)->vdev;
}

static void rng_free(void *dev)
{
    virtio_rng_destroy(dev);
    free(dev);
}

static int rng_save(void *dev, void *state, struct error *err)
{
    virtio_rng_save(dev, state);
    return 0;
}

static int rng_restore(void *dev, const void *state, struct error *err)
{
    return virtio_rng_restore(dev, state, err);
}

static size_t rng_counter_list(void *dev, struct vm_counter *out, size_t max)
{
    struct counter_list list = {.out = out, .max = max};
    put_virtio_errors(&list, rng_virtio(dev));
    put_counter(&list, "bytes", virtio_rng_bytes_served(dev));
    struct io_throttle_counters limit;
    io_throttle_read_counters(&((struct virtio_rng *)dev)->throttle, &limit);
    put_limit_counters(&list, &limit, limit_names);
    return list.n;
}

static unsigned rng_get_limits(void *dev, struct rate_limit_config *limits)
{
    virtio_rng_get_limit(dev, &limits[0]);
    return 1;
}

static int rng_set_limits(void *dev, const struct rate_limit_config *limits, struct error *err)
{
    return virtio_rng_set_limit(dev, &limits[0], err);
}

static int vconsole_create(struct vm *vm, unsigned index, void **out, struct error *err)
{
    struct virtio_console_dev *con = zalloc(sizeof(*con), "virtio-console", err);
    if (!con)
        return -ENOMEM;
    int r = virtio_console_init(con, vm_hvc_console(vm), &vm->mem, &vm->log, err);
    if (r < 0) {
        free(con);
        return r;
    }
    *out = con;
    return 0;
}

static struct virtio_dev *vconsole_virtio(void *dev)
{
    return &((struct virtio_console_dev *)dev)->vdev;
}

static int vconsole_attach(struct vm *vm, void *dev, struct error *err)
{
    struct console_device hvc;
    virtio_console_as_console_device(dev, &hvc);
    return console_attach(vm_hvc_console(vm), &vm->loop, &hvc, vm_console_quit, vm, err);
}

static void vconsole_detach(struct vm *vm, void *dev)
{
    console_detach(vm_hvc_console(vm));
}

static void vconsole_free(void *dev)
{
    virtio_console_destroy(dev);
    free(dev);
}

static int vconsole_save(void *dev, void *state, struct error *err)
{
    virtio_console_save(dev, state);
    return 0;
}

static int vconsole_restore(void *dev, const void *state, struct error *err)
{
    return virtio_console_restore(dev, state, err);
}

static size_t vconsole_counter_list(void *dev, struct vm_counter *out, size_t max)
{
    struct virtio_console_counters c;
    virtio_console_counters(dev, &c);
    struct counter_list list = {.out = out, .max = max};
    put_virtio_errors(&list, vconsole_virtio(dev));
    put_counter(&list, "rx_bytes", c.rx_bytes);
    put_counter(&list, "tx_bytes", c.tx_bytes);
    return list.n;
}

static int balloon_create(struct vm *vm, unsigned index, void **out, struct error *err)
{
    const struct balloon_config *cfg = &vm->config->balloon;
    struct virtio_balloon *b = zalloc(sizeof(*b), "virtio-balloon", err);
    if (!b)
        return -ENOMEM;
    struct virtio_balloon_options options = {
        .target_pages = (uint32_t)(cfg->target_bytes >> VIRTIO_BALLOON_PAGE_SHIFT),
        .deflate_on_oom = cfg->deflate_on_oom,
        .stats_seconds = cfg->stats_seconds,
        .free_page_reporting = cfg->free_page_reporting,
    };
    int r = virtio_balloon_init(b, &options, &vm->mem, &vm->log, err);
    if (r < 0) {
        free(b);
        return r;
    }
    *out = b;
    return 0;
}

static struct virtio_dev *balloon_virtio(void *dev)
{
    return &((struct virtio_balloon *)dev)->vdev;
}

/* Every vCPU runs: none is held by a pause, a snapshot's capture or a migration's. */
static bool vcpus_run(void *opaque)
{
    struct vm *vm = opaque;
    for (unsigned i = 0; i < vm->nvcpus; i++)
        if (vcpu_is_paused(&vm->vcpus[i]))
            return false;
    return true;
}

static int balloon_attach(struct vm *vm, void *dev, struct error *err)
{
    return virtio_balloon_attach(dev, &vm->loop, vcpus_run, vm, err);
}

static void balloon_detach(struct vm *vm, void *dev)
{
    virtio_balloon_detach(dev);
}

static void balloon_free(void *dev)
{
    virtio_balloon_destroy(dev);
    free(dev);
}

static int balloon_save(void *dev, void *state, struct error *err)
{
    virtio_balloon_save(dev, state);
    return 0;
}

static int balloon_restore(void *dev, const void *state, struct error *err)
{
    return virtio_balloon_restore(dev, state, err);
}

static size_t balloon_counter_list(void *dev, struct vm_counter *out, size_t max)
{
    struct virtio_balloon_counters c;
    virtio_balloon_read_counters(dev, &c);
    struct counter_list list = {.out = out, .max = max};
    put_virtio_errors(&list, balloon_virtio(dev));
    put_counter(&list, "inflated_pages", c.inflated_pages);
    put_counter(&list, "deflated_pages", c.deflated_pages);
    put_counter(&list, "discarded_pages", c.discarded_pages);
    put_counter(&list, "reported_pages", c.reported_pages);
    put_counter(&list, "bad_pfns", c.bad_pfns);
    put_counter(&list, "repeated_pfns", c.repeated_pfns);
    put_counter(&list, "excess_pfns", c.excess_pfns);
    put_counter(&list, "discard_errors", c.discard_errors);
    return list.n;
}

static const struct vm_device_kind blk_kind = {
    .name = "virtio-blk",
    .create = blk_create,
    .virtio = blk_virtio,
    .attach = blk_attach,
    .detach = blk_detach,
    .in_flight = blk_in_flight,
    .flush = blk_flush,
    .hand_over = blk_hand_over,
    .destroy = blk_free,
    .state_size = sizeof(struct virtio_blk_state),
    .save = blk_save,
    .restore = blk_restore,
    .counters = blk_counter_list,
    .get_limits = blk_get_limits,
    .set_limits = blk_set_limits,
};
static const struct vm_device_kind net_kind = {
    .name = "virtio-net",
    .create = net_create,
    .virtio = net_virtio,
    .attach = net_attach,
    .detach = net_detach,
    .destroy = net_free,
    .state_size = sizeof(struct virtio_net_state),
    .save = net_save,
    .restore = net_restore,
    .counters = net_counter_list,
    .get_limits = net_get_limits,
    .set_limits = net_set_limits,
};
static const struct vm_device_kind rng_kind = {
    .name = "virtio-rng",
    .create = rng_create,
    .virtio = rng_virtio,
    .attach = rng_attach,
    .detach = rng_detach,
    .destroy = rng_free,
    .state_size = sizeof(struct virtio_rng_state),
    .save = rng_save,
    .restore = rng_restore,
    .counters = rng_counter_list,
    .get_limits = rng_get_limits,
    .set_limits = rng_set_limits,
};
static const struct vm_device_kind balloon_kind = {
    .name = "virtio-balloon",
    .create = balloon_create,
    .virtio = balloon_virtio,
    .attach = balloon_attach,
    .detach = balloon_detach,
    .destroy = balloon_free,
    .state_size = sizeof(struct virtio_balloon_state),
    .save = balloon_save,
    .restore = balloon_restore,
    .counters = balloon_counter_list,
};
static const struct vm_device_kind vconsole_kind = {
    .name = "virtio-console",
    .create = vconsole_create,
    .virtio = vconsole_virtio,
    .attach = vconsole_attach,
    .detach = vconsole_detach,
    .destroy = vconsole_free,
    .state_size = sizeof(struct virtio_console_state),
    .save = vconsole_save,
    .restore = vconsole_restore,
    .counters = vconsole_counter_list,
};

/* ---- The walk ---- */

/* Adds instance `index` of kind: creates it, then gives a virtio device the next slot. */
static int add_device(struct vm *vm, const struct vm_device_kind *kind, unsigned index,
                      struct error *err)
{
    if (vm->ndevices == VM_MAX_DEVICES)
        return error_fmt(err, -E2BIG, "too many devices: kiln has room for %d", VM_MAX_DEVICES);
    struct vm_device *d = &vm->devices[vm->ndevices];
    *d = (struct vm_device){.kind = kind, .slot = -1};
    snprintf(d->name, sizeof(d->name), "%s %u", kind->name, index);
    int r = kind->create(vm, index, &d->dev, err);
    if (d->dev || r == 0)
        vm->ndevices++; /* counted once it exists, so a half-made one is destroyed */
    if (r < 0 || !kind->virtio)
        return r;
    if (vm->nvirtio == PLATFORM_VIRTIO_MMIO_MAX)
        return error_fmt(err, -E2BIG, "too many virtio devices: kiln has %d virtio-mmio slots",
                         PLATFORM_VIRTIO_MMIO_MAX);
    d->slot = (int)vm->nvirtio;
    struct virtio_slot *slot = &vm->virtio[vm->nvirtio];
    vm->nvirtio++; /* counted before creation, so a half-made slot is destroyed */
    return virtio_slot_create(slot, (unsigned)d->slot, vm->fd, &vm->mmio_bus, kind->virtio(d->dev),
                              err);
}

/* The order is the guest's ABI: platform devices, then virtio slots for disks in --disk order,
 * nets in --net order, the rng, the virtio console and the balloon. */
int vm_devices_create(struct vm *vm, struct error *err)
{
    const struct vm_config *cfg = vm->config;
    static const struct vm_device_kind *const platform[] = {
        &serial_kind, &i8042_kind, &test_exit_kind, &post_code_kind, &rtc_kind, &pm_kind,
    };
    int r = 0;
    for (size_t i = 0; r == 0 && i < sizeof(platform) / sizeof(platform[0]); i++)
        r = add_device(vm, platform[i], 0, err);
    for (unsigned i = 0; r == 0 && i < cfg->ndisks; i++)
        r = add_device(vm, &blk_kind, i, err);
    for (unsigned i = 0; r == 0 && i < cfg->nnets; i++)
        r = add_device(vm, &net_kind, i, err);
    if (r == 0 && cfg->rng)
        r = add_device(vm, &rng_kind, 0, err);
    if (r == 0 && (cfg->console_device == CONSOLE_ON_VIRTIO || cfg->vconsole))
        r = add_device(vm, &vconsole_kind, 0, err);
    if (r == 0 && cfg->balloon.enabled)
        r = add_device(vm, &balloon_kind, 0, err);
    return r;
}

size_t vm_virtio_describe(const struct vm *vm, struct acpi_virtio_device *out)
{
    for (unsigned i = 0; i < vm->nvirtio; i++) {
        out[i].base = vm->virtio[i].base;
        out[i].size = PLATFORM_VIRTIO_MMIO_SLOT_SIZE;
        out[i].gsi = vm->virtio[i].gsi;
    }
    return vm->nvirtio;
}

int vm_devices_attach(struct vm *vm, struct error *err)
{
    for (unsigned i = 0; i < vm->nvirtio; i++) {
        int r = virtio_slot_attach(&vm->virtio[i], &vm->loop, err);
        if (r < 0)
            return r;
    }
    for (unsigned i = 0; i < vm->ndevices; i++) {
        const struct vm_device *d = &vm->devices[i];
        int r = d->kind->attach ? d->kind->attach(vm, d->dev, err) : 0;
        if (r < 0)
            return r;
    }
    return 0;
}

void vm_devices_detach(struct vm *vm)
{
    for (unsigned i = 0; i < vm->nvirtio; i++)
        virtio_slot_detach(&vm->virtio[i]);
    for (unsigned i = 0; i < vm->ndevices; i++) {
        const struct vm_device *d = &vm->devices[i];
        if (d->kind->detach)
            d->kind->detach(vm, d->dev);
    }
}

struct vm_device *vm_devices_find(struct vm *vm, const char *kind_name, unsigned index)
{
    for (unsigned i = 0; i < vm->ndevices; i++)
        if (strcmp(vm->devices[i].kind->name, kind_name) == 0 && index-- == 0)
            return &vm->devices[i];
    return NULL;
}

size_t vm_device_counters(const struct vm_device *d, struct vm_counter *out, size_t max)
{
    return d->kind->counters ? d->kind->counters(d->dev, out, max) : 0;
}

unsigned vm_device_queue_count(const struct vm_device *d)
{
    return d->kind->virtio ? d->kind->virtio(d->dev)->info.num_queues : 0;
}

size_t vm_device_queue_counters(const struct vm_device *d, unsigned q, struct vm_counter *out,
                                size_t max)
{
    if (q >= vm_device_queue_count(d))
        return 0;
    struct virtqueue_counters c;
    virtio_dev_queue_counters(d->kind->virtio(d->dev), q, &c);
    struct counter_list list = {.out = out, .max = max};
    put_counter(&list, "notifications", c.notifications);
    put_counter(&list, "chains", c.chains);
    put_counter(&list, "used", c.used);
    put_counter(&list, "interrupts", c.interrupts);
    put_counter(&list, "bad_chains", c.bad_chains);
    return list.n;
}

/* "virtio-blk 0: read_ops 2, read_bytes 8192, ..." at debug level. */
static void log_counters(const struct log *log, const char *what, const struct vm_counter *c,
                         size_t n)
{
    char line[512];
    size_t used = 0;
    line[0] = '\0';
    for (size_t i = 0; i < n && used < sizeof(line); i++)
        used += (size_t)snprintf(line + used, sizeof(line) - used, "%s%s %llu", i ? ", " : "",
                                 c[i].name, (unsigned long long)c[i].value);
    log_debug(log, "%s: %s", what, line);
}

void vm_devices_log_stats(const struct vm *vm)
{
    struct vm_counter counters[VM_DEVICE_MAX_COUNTERS];
    for (unsigned i = 0; i < vm->ndevices; i++) {
        const struct vm_device *d = &vm->devices[i];
        size_t n = vm_device_counters(d, counters, VM_DEVICE_MAX_COUNTERS);
        if (n > 0)
            log_counters(&vm->log, d->name, counters, n);
        for (unsigned q = 0; q < vm_device_queue_count(d); q++) {
            char what[64];
            snprintf(what, sizeof(what), "%s queue %u", d->name, q);
            n = vm_device_queue_counters(d, q, counters, VM_DEVICE_MAX_COUNTERS);
            log_counters(&vm->log, what, counters, n);
        }
    }
}

struct virtio_balloon *vm_devices_balloon(const struct vm *vm)
{
    for (unsigned i = 0; i < vm->ndevices; i++)
        if (vm->devices[i].kind == &balloon_kind)
            return vm->devices[i].dev;
    return NULL;
}

void vm_devices_terminal_resized(struct vm *vm, uint16_t cols, uint16_t rows)
{
    for (unsigned i = 0; i < vm->ndevices; i++)
        if (vm->devices[i].kind == &vconsole_kind)
            virtio_console_set_size(vm->devices[i].dev, cols, rows);
}

int vm_devices_disk_fd(const struct vm *vm, unsigned disk)
{
    for (unsigned i = 0; i < vm->ndevices; i++)
        if (vm->devices[i].kind == &blk_kind && disk-- == 0)
            return virtio_blk_image_fd(vm->devices[i].dev);
    return -1;
}

int vm_devices_hand_over(struct vm *vm, bool release, struct error *err)
{
    for (unsigned i = 0; i < vm->ndevices; i++) {
        const struct vm_device *d = &vm->devices[i];
        int r = d->kind->hand_over ? d->kind->hand_over(d->dev, release, err) : 0;
        if (r < 0)
            return r;
    }
    return 0;
}

unsigned vm_devices_in_flight(const struct vm *vm)
{
    unsigned in_flight = 0;
    for (unsigned i = 0; i < vm->ndevices; i++) {
        const struct vm_device *d = &vm->devices[i];
        if (d->kind->in_flight)
            in_flight += d->kind->in_flight(d->dev);
    }
    return in_flight;
}

void vm_devices_hold(struct vm *vm, bool hold)
{
    for (unsigned i = 0; i < vm->ndevices; i++) {
        const struct vm_device *d = &vm->devices[i];
        if (!d->kind->virtio)
            continue;
        struct virtio_dev *v = d->kind->virtio(d->dev);
        if (hold)
            virtio_dev_hold(v);
        else
            virtio_dev_release(v);
    }
}

/* Work on the thread pool holds pointers into the devices: let it finish on the loop. */
static void drain_in_flight(struct vm *vm)
{
    while (vm->loop_initialized && vm_devices_in_flight(vm) > 0)
        uv_run(&vm->loop, UV_RUN_ONCE);
}

void vm_devices_destroy(struct vm *vm)
{
    drain_in_flight(vm);
    for (unsigned i = 0; i < vm->nvirtio; i++)
        virtio_slot_destroy(&vm->virtio[i]);
    vm->nvirtio = 0;
    for (unsigned i = vm->ndevices; i-- > 0;) {
        struct vm_device *d = &vm->devices[i];
        if (d->kind->destroy && d->dev)
            d->kind->destroy(d->dev);
        d->dev = NULL;
    }
    vm->ndevices = 0;
}
