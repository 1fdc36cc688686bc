/* The control API's endpoints for one VM (docs/api.md), each run on the VM's loop thread:
 * GET /vm, pause, resume, shutdown, reboot and counters (rate limits: vm_api_limits.c); the
 * HTTP side is api_server.c. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln/api/api_server.h"
#include "kiln/config/config_settings.h"
#include "kiln/vm/vm.h"
#include "kiln/vm/vm_api.h"
#include "kiln/vm/vm_snapshot.h"
#include "vm_api_balloon.h"
#include "vm_api_limits.h"
#include "vm_api_migrate.h"

static const char *state_name(struct vm *vm)
{
    if (vm_is_stopping(vm))
        return "stopping";
    return vm->paused ? "paused" : "running";
}

/* One value as `kiln config` would write it (strings, as the getters give them); unset values
 * are left out. */
static void put_text(json_t *obj, const char *key, int got, char *text)
{
    if (got == 0 && text)
        json_object_set_new(obj, key, json_string(text));
    free(text);
}

static json_t *devices_json(const struct config_device_keys *kind, const void *devices, size_t size,
                            unsigned count)
{
    json_t *list = json_array();
    for (unsigned i = 0; i < count; i++) {
        const void *device = (const char *)devices + i * size;
        json_t *entry = json_object();
        for (size_t k = 0; k < kind->count; k++) {
            char *text = NULL;
            int got = kind->keys[k].get(device, &text);
            put_text(entry, kind->keys[k].key, got, text);
        }
        json_array_append_new(list, entry);
    }
    return list;
}

/* The effective configuration, keyed as in a VM definition file (docs/vm-yaml.md). */
static json_t *config_json(const struct vm_config *cfg)
{
    json_t *top = json_object(), *kernel = json_object();
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++) {
        const struct config_setting *setting = &config_settings[i];
        json_t *into = setting->place == CONFIG_PLACE_KERNEL ? kernel : top;
        char *text = NULL;
        if (setting->field == CONFIG_FIELD_DISK)
            json_object_set_new(
                top, setting->key,
                devices_json(&config_disk_keys, cfg->disks, sizeof(*cfg->disks), cfg->ndisks));
        else if (setting->field == CONFIG_FIELD_NET)
            json_object_set_new(
                top, setting->key,
                devices_json(&config_net_keys, cfg->nets, sizeof(*cfg->nets), cfg->nnets));
        else {
            int got = setting->get(cfg, &text);
            put_text(into, setting->key, got, text);
        }
    }
    json_object_set_new(top, CONFIG_KERNEL_KEY, kernel);
    return top;
}

static void get_vm(void *opaque, struct api_call *call)
{
    struct vm *vm = opaque;
    const struct vm_config *cfg = vm->config;
    uint64_t uptime_ms = (uv_hrtime() - vm->run_started_ns) / 1000000;
    json_t *body =
        json_pack("{s:s?, s:I, s:s, s:I, s:i, s:I, s:s, s:i}", "name", cfg->name, "pid",
                  (json_int_t)getpid(), "state", state_name(vm), "uptime_ms", (json_int_t)uptime_ms,
                  "vcpus", (int)cfg->cpus, "memory_mib", (json_int_t)(cfg->memory_bytes >> 20),
                  "kiln_version", KILN_VERSION, "boots", (int)vm->boot_index + 1);
    if (body)
        json_object_set_new(body, "config", config_json(cfg));
    json_t *migration = body ? vm_api_migration_json(vm) : NULL;
    if (migration)
        json_object_set_new(body, "migration", migration);
    json_t *balloon = body ? vm_api_balloon_summary(vm) : NULL;
    if (balloon)
        json_object_set_new(body, "balloon", balloon);
    if (!body)
        api_call_error(call, 500, "out of memory");
    else
        api_call_reply(call, 200, body);
}

static json_t *counters_object(const struct vm_counter *counters, size_t n)
{
    json_t *obj = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(obj, counters[i].name, json_integer((json_int_t)counters[i].value));
    return obj;
}

/* Read while the vCPUs and devices run: each counter is exact, the set is not one instant. */
static void get_counters(void *opaque, struct api_call *call)
{
    struct vm *vm = opaque;
    json_t *vcpus = json_array(), *devices = json_array();
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        uint64_t exits[VCPU_EXITS_COUNT];
        vcpu_read_exit_counters(&vm->vcpus[i], exits);
        json_t *by_reason = json_object();
        for (unsigned c = 0; c < VCPU_EXITS_COUNT; c++)
            json_object_set_new(by_reason, vcpu_exit_counter_name((enum vcpu_exit_counter)c),
                                json_integer((json_int_t)exits[c]));
        json_array_append_new(vcpus, json_pack("{s:i, s:o}", "index", (int)i, "exits", by_reason));
    }
    struct vm_counter counters[VM_DEVICE_MAX_COUNTERS];
    for (unsigned i = 0; i < vm->ndevices; i++) {
        const struct vm_device *d = &vm->devices[i];
        size_t n = vm_device_counters(d, counters, VM_DEVICE_MAX_COUNTERS);
        json_t *entry = json_pack("{s:s, s:i, s:o}", "name", d->name, "slot", d->slot, "counters",
                                  counters_object(counters, n));
        unsigned nqueues = vm_device_queue_count(d);
        if (nqueues > 0) {
            json_t *queues = json_array();
            for (unsigned q = 0; q < nqueues; q++) {
                json_t *queue = counters_object(
                    counters, vm_device_queue_counters(d, q, counters, VM_DEVICE_MAX_COUNTERS));
                json_object_set_new(queue, "index", json_integer(q));
                json_array_append_new(queues, queue);
            }
            json_object_set_new(entry, "queues", queues);
        }
        json_array_append_new(devices, entry);
    }
    json_t *body = json_pack("{s:o, s:o}", "vcpus", vcpus, "devices", devices);
    if (body)
        api_call_reply(call, 200, body);
    else
        api_call_error(call, 500, "out of memory");
}

/* Pause and resume answer 204 when the VM is (now) in the state asked for, so a retry is
 * harmless; a stopping VM cannot be paused or resumed any more. */
static bool refuse_if_stopping(struct vm *vm, struct api_call *call, const char *what)
{
    if (!vm_is_stopping(vm))
        return false;
    api_call_error(call, 409, "cannot %s: the VM is stopping", what);
    return true;
}

static void put_pause(void *opaque, struct api_call *call)
{
    struct vm *vm = opaque;
    if (refuse_if_stopping(vm, call, "pause"))
        return;
    if (!vm->paused) {
        vm_pause(vm);
        vm->paused = true;
        log_info(&vm->log, "API: paused the vCPUs");
    }
    api_call_reply(call, 204, NULL);
}

static void put_resume(void *opaque, struct api_call *call)
{
    struct vm *vm = opaque;
    if (refuse_if_stopping(vm, call, "resume"))
        return;
    if (vm->paused) {
        vm_resume(vm);
        vm->paused = false;
        log_info(&vm->log, "API: resumed the vCPUs");
    }
    api_call_reply(call, 204, NULL);
}

static void reply_message(struct api_call *call, int status, const char *message)
{
    json_t *body = json_pack("{s:s}", "message", message);
    if (body)
        api_call_reply(call, status, body);
    else
        api_call_error(call, 500, "out of memory");
}

/* Exactly what SIGTERM does (docs/cli.md): the power button, then the grace period. */
static void put_shutdown(void *opaque, struct api_call *call)
{
    struct vm *vm = opaque;
    if (refuse_if_stopping(vm, call, "shut down"))
        return;
    unsigned grace = vm->config->shutdown_grace_seconds;
    vm_graceful_stop(vm, SIGTERM, "the API");
    char message[128];
    if (grace > 0 && !vm_is_stopping(vm))
        snprintf(message, sizeof(message),
                 "pressed the guest's power button; stopping in %u s unless it powers off", grace);
    else
        snprintf(message, sizeof(message), "stopping the VM now");
    reply_message(call, 202, message);
}

/* The VM is built again from its configuration, as after a guest reset with --on-reset
 * restart. Building needs calls (open, any KVM ioctl) that the event loop's seccomp filter
 * keeps only with --on-reset restart (docs/security.md); the API does not widen the filter of
 * every VM for it, so elsewhere it refuses and says why. */
static void put_reboot(void *opaque, struct api_call *call)
{
    struct vm *vm = opaque;
    if (refuse_if_stopping(vm, call, "reboot"))
        return;
    if (vm->config->on_reset != RESET_RESTART && vm->config->seccomp != SANDBOX_OFF) {
        api_call_error(call, 409,
                       "cannot reboot: a VM is rebuilt only with --on-reset restart (or "
                       "--seccomp off), whose filter keeps the calls rebuilding needs; shut it "
                       "down and start it again instead");
        return;
    }
    vm_request_stop(vm, VM_STOP_REBOOT, 0, "rebooted through the API");
    reply_message(call, 202, "rebooting: the VM is built again from its configuration");
}

static void snapshot_done(void *opaque, const struct vm_snapshot_result *result)
{
    struct api_call *call = opaque;
    if (result->r < 0) {
        api_call_error(
            call,
            result->r == -EEXIST || result->r == -ENOTEMPTY || result->r == -ESTALE ? 409 : 500,
            "snapshot: %s", result->message);
        return;
    }
    json_t *body = json_pack(
        "{s:I, s:I, s:I, s:I, s:b, s:b}", "memory_bytes", (json_int_t)result->memory_bytes,
        "memory_data_bytes", (json_int_t)result->memory_data_bytes, "paused_ms",
        (json_int_t)result->paused_ms, "total_ms", (json_int_t)result->total_ms, "stopped",
        result->stopped, "diff", result->diff);
    if (body && result->diff)
        json_object_set_new(body, "dirty_pages", json_integer((json_int_t)result->dirty_pages));
    if (body)
        api_call_reply(call, 200, body);
    else
        api_call_error(call, 500, "out of memory");
}

/* {"dir": "/abs/folder", "stop": false, "base": "/abs/last"}: the reply comes once the files
 * are written; with base, a diff against that snapshot. */
static void put_snapshot(void *opaque, struct api_call *call)
{
    struct vm *vm = opaque;
    if (refuse_if_stopping(vm, call, "snapshot"))
        return;
    json_t *body = api_call_body(call);
    const char *dir = NULL, *base = NULL;
    int stop = 0;
    json_error_t jerr;
    if (!body || json_unpack_ex(body, &jerr, JSON_STRICT, "{s:s, s?b, s?s}", "dir", &dir, "stop",
                                &stop, "base", &base) < 0) {
        api_call_error(call, 400,
                       "snapshot: the body must be {\"dir\": \"/absolute/folder\", \"stop\": "
                       "false, \"base\": \"/absolute/last/snapshot\" (optional)}%s%s",
                       body ? ": " : " (no body)", body ? jerr.text : "");
        return;
    }
    struct error err = {{0}};
    int r = vm_snapshot_take(vm, dir, base, stop, snapshot_done, call, &err);
    if (r < 0)
        api_call_error(call, r == -EBUSY ? 409 : r == -EINVAL ? 400 : 500, "snapshot: %s", err.msg);
}

static const struct api_route routes[] = {
    {"GET", "/vm", get_vm},
    {"GET", "/vm/counters", get_counters},
    {"PUT", "/vm/pause", put_pause},
    {"PUT", "/vm/resume", put_resume},
    {"PUT", "/vm/shutdown", put_shutdown},
    {"PUT", "/vm/reboot", put_reboot},
    {"PUT", "/vm/snapshot", put_snapshot},
    {"PUT", "/vm/migrate", vm_api_put_migrate},
    {"PUT", "/vm/migrate/cancel", vm_api_put_migrate_cancel},
    {"PATCH", "/vm/disks/*", vm_api_patch_disk},
    {"PATCH", "/vm/nets/*", vm_api_patch_net},
    {"PATCH", "/vm/rng", vm_api_patch_rng},
    {"GET", "/vm/balloon", vm_api_get_balloon},
    {"PUT", "/vm/balloon", vm_api_put_balloon},
};

int vm_api_start(struct vm *vm, struct error *err)
{
    vm->api = calloc(1, sizeof(*vm->api));
    if (!vm->api)
        return error_fmt(err, -ENOMEM, "control API: out of memory");
    /* The server closes what it is given when it stops; main's socket must outlive this
     * boot (a reboot serves it again), so the server gets a copy. */
    int fd = fcntl(vm->api_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        free(vm->api);
        vm->api = NULL;
        return error_fmt(err, -e, "control API: cannot copy its socket: %s", strerror(e));
    }
    int r = api_server_start(vm->api, &vm->loop, fd, routes, sizeof(routes) / sizeof(routes[0]), vm,
                             &vm->log, err);
    if (r < 0) {
        free(vm->api);
        vm->api = NULL;
    }
    return r;
}

void vm_api_stop(struct vm *vm)
{
    if (!vm->api)
        return;
    api_server_stop(vm->api);
}
