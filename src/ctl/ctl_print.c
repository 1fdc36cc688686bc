/* Human-readable forms of the control API's replies for kiln ctl: the VM's status line, the
 * counters listing, and the messages of accepted requests. */
#include "kiln/ctl/ctl_print.h"

#include <stdbool.h>
#include <stdlib.h>

static bool has_integer(const json_t *object, const char *key, json_int_t *value)
{
    json_t *field = json_object_get(object, key);
    if (!json_is_integer(field))
        return false;
    *value = json_integer_value(field);
    return true;
}

/* An integer member of a reply as printf's %lld takes it (0 when missing). */
static long long int_of(const json_t *object, const char *key)
{
    return (long long)json_integer_value(json_object_get(object, key));
}

static void print_fields(FILE *out, const json_t *object, const char *separator);

void ctl_print_status(FILE *out, const json_t *reply)
{
    const char *name = json_string_value(json_object_get(reply, "name"));
    const char *state = json_string_value(json_object_get(reply, "state"));
    json_int_t pid, uptime_ms, vcpus, memory_mib;
    fprintf(out, "%s", name ? name : "VM");
    if (has_integer(reply, "pid", &pid))
        fprintf(out, " (pid %lld)", (long long)pid);
    fprintf(out, ": %s", state ? state : "state unknown");
    if (has_integer(reply, "uptime_ms", &uptime_ms))
        fprintf(out, ", up %lld.%lld s", (long long)(uptime_ms / 1000),
                (long long)(uptime_ms % 1000 / 100));
    if (has_integer(reply, "vcpus", &vcpus))
        fprintf(out, ", %lld vCPU%s", (long long)vcpus, vcpus == 1 ? "" : "s");
    if (has_integer(reply, "memory_mib", &memory_mib))
        fprintf(out, ", %lld MiB", (long long)memory_mib);
    fprintf(out, "\n");
    const json_t *migration = json_object_get(reply, "migration");
    if (json_is_object(migration))
        fprintf(out,
                "migration: %s, round %lld, %lld pages left, %lld pages dirtied/s, expected "
                "downtime %lld ms, %.1f MiB sent, vCPUs throttled %lld%%\n",
                json_string_value(json_object_get(migration, "state")), int_of(migration, "round"),
                int_of(migration, "pages_left"), int_of(migration, "dirty_pages_per_s"),
                int_of(migration, "expected_downtime_ms"),
                (double)json_integer_value(json_object_get(migration, "bytes_sent")) /
                    (1024.0 * 1024.0),
                int_of(migration, "throttle_percent"));
    const json_t *balloon = json_object_get(reply, "balloon");
    if (json_is_object(balloon))
        fprintf(out, "balloon: target %lld MiB, the guest gave %lld MiB\n",
                int_of(balloon, "target_mib"), int_of(balloon, "actual_mib"));
}

void ctl_print_balloon(FILE *out, const json_t *reply)
{
    fprintf(out, "balloon: target %lld MiB, the guest gave %lld MiB (%lld pages)\n",
            int_of(reply, "target_mib"), int_of(reply, "actual_mib"),
            int_of(reply, "actual_pages"));
    fprintf(out,
            "pages: %lld in the balloon, %lld inflated, %lld deflated, %lld reported free, %lld "
            "given back to the host\n",
            int_of(reply, "pages_in_balloon"), int_of(reply, "inflated_pages"),
            int_of(reply, "deflated_pages"), int_of(reply, "reported_pages"),
            int_of(reply, "discarded_pages"));
    fprintf(out,
            "ignored: %lld PFNs outside RAM, %lld repeated, %lld past the VM's size; %lld "
            "discard errors\n",
            int_of(reply, "bad_pfns"), int_of(reply, "repeated_pfns"), int_of(reply, "excess_pfns"),
            int_of(reply, "discard_errors"));
    const json_t *stats = json_object_get(reply, "stats");
    if (json_is_object(stats)) {
        fprintf(out, "guest statistics: ");
        print_fields(out, stats, ", ");
        fprintf(out, "\n");
    }
}

/* "key value, key value" for an object of numbers (others printed as JSON). */
static void print_fields(FILE *out, const json_t *object, const char *separator)
{
    const char *key;
    json_t *value;
    bool first = true;
    json_object_foreach((json_t *)object, key, value)
    {
        fprintf(out, "%s%s ", first ? "" : separator, key);
        if (json_is_integer(value))
            fprintf(out, "%lld", (long long)json_integer_value(value));
        else {
            char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
            fprintf(out, "%s", text ? text : "?");
            free(text);
        }
        first = false;
    }
}

static void print_vcpus(FILE *out, const json_t *vcpus)
{
    size_t i;
    json_t *vcpu;
    json_array_foreach(vcpus, i, vcpu)
    {
        json_int_t index;
        if (has_integer(vcpu, "index", &index))
            fprintf(out, "vCPU %lld\n", (long long)index);
        else
            fprintf(out, "vCPU\n");
        json_t *exits = json_object_get(vcpu, "exits");
        if (json_is_object(exits)) {
            fprintf(out, "  exits: ");
            print_fields(out, exits, ", ");
            fprintf(out, "\n");
        }
    }
}

static void print_devices(FILE *out, const json_t *devices)
{
    size_t i, q;
    json_t *device, *queue;
    json_array_foreach(devices, i, device)
    {
        const char *name = json_string_value(json_object_get(device, "name"));
        json_int_t slot;
        fprintf(out, "%s", name ? name : "device");
        if (has_integer(device, "slot", &slot))
            fprintf(out, " (slot %lld)", (long long)slot);
        fprintf(out, "\n");
        json_t *counters = json_object_get(device, "counters");
        const char *key;
        json_t *value;
        if (json_is_object(counters))
            json_object_foreach(counters, key, value)
            {
                fprintf(out, "  %s: ", key);
                if (json_is_integer(value))
                    fprintf(out, "%lld\n", (long long)json_integer_value(value));
                else {
                    char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
                    fprintf(out, "%s\n", text ? text : "?");
                    free(text);
                }
            }
        json_array_foreach(json_object_get(device, "queues"), q, queue)
        {
            json_t *rest = json_deep_copy(queue);
            json_int_t index;
            if (has_integer(queue, "index", &index))
                fprintf(out, "  queue %lld: ", (long long)index);
            else
                fprintf(out, "  queue: ");
            json_object_del(rest, "index");
            print_fields(out, rest, ", ");
            json_decref(rest);
            fprintf(out, "\n");
        }
    }
}

void ctl_print_counters(FILE *out, const json_t *reply)
{
    print_vcpus(out, json_object_get(reply, "vcpus"));
    print_devices(out, json_object_get(reply, "devices"));
}

void ctl_print_message(FILE *out, const json_t *reply, const char *fallback)
{
    const char *message = json_string_value(json_object_get(reply, "message"));
    fprintf(out, "%s\n", message ? message : fallback);
}

void ctl_print_snapshot(FILE *out, const json_t *reply)
{
    double mib = 1024.0 * 1024.0;
    json_int_t memory = json_integer_value(json_object_get(reply, "memory_bytes"));
    json_int_t data = json_integer_value(json_object_get(reply, "memory_data_bytes"));
    json_int_t paused = json_integer_value(json_object_get(reply, "paused_ms"));
    if (json_is_true(json_object_get(reply, "diff"))) {
        json_int_t dirty = json_integer_value(json_object_get(reply, "dirty_pages"));
        fprintf(out,
                "diff snapshot written: %lld dirty pages, %.1f MiB in the memory file, vCPUs "
                "held %lld ms%s\n",
                (long long)dirty, (double)data / mib, (long long)paused,
                json_is_true(json_object_get(reply, "stopped")) ? "; the VM stops now" : "");
        return;
    }
    fprintf(out,
            "snapshot written: %.1f of %.0f MiB of RAM in the memory file, vCPUs held %lld ms%s\n",
            (double)data / mib, (double)memory / mib, (long long)paused,
            json_is_true(json_object_get(reply, "stopped")) ? "; the VM stops now" : "");
}

void ctl_print_migrate(FILE *out, const json_t *reply)
{
    fprintf(out,
            "migrated: %lld rounds, %.1f MiB sent, %lld ms in all, vCPUs stopped %.1f ms; the VM "
            "runs on the destination now\n",
            int_of(reply, "rounds"),
            (double)json_integer_value(json_object_get(reply, "bytes_sent")) / (1024.0 * 1024.0),
            int_of(reply, "total_ms"),
            (double)json_integer_value(json_object_get(reply, "downtime_us")) / 1000.0);
}
