/* The control API's balloon endpoints (docs/api.md): the target set with PUT /vm/balloon, and
 * what the guest answered, its statistics and kiln's counters with GET. Loop thread. */
#include <errno.h>

#include "kiln/devices/virtio_balloon.h"
#include "kiln/vm/vm.h"
#include "vm_api_balloon.h"

/* 4 KiB pages to MiB, rounded down (a guest's actual may be any number of pages). */
static json_int_t pages_mib(uint64_t pages)
{
    return (json_int_t)(pages >> (20 - VIRTIO_BALLOON_PAGE_SHIFT));
}

static struct virtio_balloon *balloon_or_refuse(struct vm *vm, struct api_call *call)
{
    struct virtio_balloon *b = vm_devices_balloon(vm);
    if (!b)
        api_call_error(call, 400,
                       "balloon: this VM has no balloon (start it with --balloon SIZE, e.g. "
                       "--balloon 0)");
    return b;
}

json_t *vm_api_balloon_summary(struct vm *vm)
{
    struct virtio_balloon *b = vm_devices_balloon(vm);
    if (!b)
        return NULL;
    struct virtio_balloon_info info;
    virtio_balloon_read_info(b, &info);
    return json_pack("{s:I, s:I}", "target_mib", pages_mib(info.target_pages), "actual_mib",
                     pages_mib(info.actual_pages));
}

void vm_api_get_balloon(void *opaque, struct api_call *call)
{
    struct virtio_balloon *b = balloon_or_refuse(opaque, call);
    if (!b)
        return;
    struct virtio_balloon_info info;
    virtio_balloon_read_info(b, &info);
    const struct virtio_balloon_counters *c = &info.counters;
    json_t *body = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "target_mib",
        pages_mib(info.target_pages), "target_pages", (json_int_t)info.target_pages, "actual_mib",
        pages_mib(info.actual_pages), "actual_pages", (json_int_t)info.actual_pages,
        "pages_in_balloon", (json_int_t)info.pages_in_balloon, "inflated_pages",
        (json_int_t)c->inflated_pages, "deflated_pages", (json_int_t)c->deflated_pages,
        "discarded_pages", (json_int_t)c->discarded_pages, "reported_pages",
        (json_int_t)c->reported_pages, "bad_pfns", (json_int_t)c->bad_pfns, "repeated_pfns",
        (json_int_t)c->repeated_pfns, "excess_pfns", (json_int_t)c->excess_pfns, "discard_errors",
        (json_int_t)c->discard_errors);
    if (body && info.stats_enabled) {
        json_t *stats = json_object();
        for (unsigned tag = 0; tag < VIRTIO_BALLOON_STAT_TAGS; tag++)
            if (info.stats_seen & (1u << tag))
                json_object_set_new(stats, virtio_balloon_stat_name(tag),
                                    json_integer((json_int_t)info.stats[tag]));
        json_object_set_new(stats, "updates", json_integer((json_int_t)info.stats_updates));
        json_object_set_new(body, "stats", stats);
    }
    if (body)
        api_call_reply(call, 200, body);
    else
        api_call_error(call, 500, "out of memory");
}

/* {"target_mib": N}: the guest is asked to give back N MiB (0: all of it back to the guest). */
void vm_api_put_balloon(void *opaque, struct api_call *call)
{
    struct virtio_balloon *b = balloon_or_refuse(opaque, call);
    if (!b)
        return;
    json_t *body = api_call_body(call);
    json_int_t mib = -1;
    json_error_t jerr;
    if (!body || json_unpack_ex(body, &jerr, JSON_STRICT, "{s:I}", "target_mib", &mib) < 0) {
        api_call_error(call, 400, "balloon: the body must be {\"target_mib\": N}%s%s",
                       body ? ": " : " (no body)", body ? jerr.text : "");
        return;
    }
    struct error err = {{0}};
    if (mib < 0 || mib > (json_int_t)(UINT32_MAX >> 8)) {
        api_call_error(call, 400, "balloon: target_mib %lld (expected 0 to the VM's memory)",
                       (long long)mib);
        return;
    }
    if (virtio_balloon_set_target(b, (uint64_t)mib << (20 - VIRTIO_BALLOON_PAGE_SHIFT), &err) < 0) {
        api_call_error(call, 400, "balloon: %s", err.msg);
        return;
    }
    api_call_reply(call, 204, NULL);
}
