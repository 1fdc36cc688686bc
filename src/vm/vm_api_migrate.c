/* The control API's migration endpoints (docs/api.md): starting a migration (answered when it
 * ends), cancelling it, and its progress for GET /vm. Run on the VM's loop thread. */
#include <errno.h>
#include <string.h>

#include "kiln/vm/vm.h"
#include "kiln/vm/vm_migrate.h"
#include "vm_api_migrate.h"

static void migrate_done(void *opaque, const struct vm_migrate_result *result)
{
    struct api_call *call = opaque;
    if (result->r < 0) {
        int status = result->r == -ECANCELED ? 409 : result->r == -ECONNABORTED ? 502 : 500;
        api_call_error(call, status, "migrate: %s", result->message);
        return;
    }
    json_t *body =
        json_pack("{s:I, s:I, s:i, s:I, s:I, s:I}", "total_ms", (json_int_t)result->total_ms,
                  "downtime_us", (json_int_t)result->downtime_us, "rounds", (int)result->rounds,
                  "pages_sent", (json_int_t)result->pages_sent, "zero_pages",
                  (json_int_t)result->zero_pages, "bytes_sent", (json_int_t)result->bytes_sent);
    if (body)
        api_call_reply(call, 200, body);
    else
        api_call_error(call, 500, "out of memory");
}

#define MIGRATE_BODY                                                                               \
    "{\"destination\": \"unix:PATH\" or \"tcp:IP:PORT\", \"downtime_ms\": 300, \"timeout_s\": "    \
    "600, \"bandwidth_mib\": 0, \"psk\": \"64 hex digits\", \"auto_converge\": false} (all but "   \
    "destination optional)"

/* The body's fields into a request, or one line of what is wrong. */
static int parse_request(json_t *body, struct vm_migrate_request *req, struct error *err)
{
    const char *to = NULL, *psk = NULL;
    json_int_t downtime = VM_MIGRATE_DEFAULT_DOWNTIME_MS, timeout = VM_MIGRATE_DEFAULT_TIMEOUT_S;
    json_int_t bandwidth = 0;
    int auto_converge = 0;
    json_error_t jerr;
    if (!body ||
        json_unpack_ex(body, &jerr, JSON_STRICT, "{s:s, s?I, s?I, s?I, s?s, s?b}", "destination",
                       &to, "downtime_ms", &downtime, "timeout_s", &timeout, "bandwidth_mib",
                       &bandwidth, "psk", &psk, "auto_converge", &auto_converge) < 0)
        return error_fmt(err, -EINVAL, "the body must be " MIGRATE_BODY "%s%s",
                         body ? ": " : " (no body)", body ? jerr.text : "");
    memset(req, 0, sizeof(*req));
    if (downtime < 1 || downtime > 60000)
        return error_fmt(err, -EINVAL, "downtime_ms %lld (expected 1 to 60000)",
                         (long long)downtime);
    if (timeout < 1 || timeout > 86400)
        return error_fmt(err, -EINVAL, "timeout_s %lld (expected 1 to 86400)", (long long)timeout);
    if (bandwidth < 0 || bandwidth > 1000000)
        return error_fmt(err, -EINVAL, "bandwidth_mib %lld (expected 0 for no limit, to 1000000)",
                         (long long)bandwidth);
    req->downtime_ms = (uint32_t)downtime;
    req->timeout_s = (uint32_t)timeout;
    req->bandwidth_mib = (uint32_t)bandwidth;
    req->auto_converge = auto_converge != 0;
    if (psk) {
        int r = mig_psk_parse(psk, req->psk, err);
        if (r < 0)
            return r;
        req->has_psk = true;
    }
    return mig_addr_parse(to, &req->to, err);
}

void vm_api_put_migrate(void *opaque, struct api_call *call)
{
    struct vm *vm = opaque;
    if (vm_is_stopping(vm)) {
        api_call_error(call, 409, "migrate: the VM is stopping");
        return;
    }
    struct vm_migrate_request req;
    struct error err = {{0}};
    int r = parse_request(api_call_body(call), &req, &err);
    if (r == 0)
        r = vm_migrate_start(vm, &req, migrate_done, call, &err);
    if (r < 0)
        api_call_error(call,
                       r == -EBUSY || r == -ENOTSUP ? 409
                       : r == -EINVAL               ? 400
                                                    : 500,
                       "migrate: %s", err.msg);
}

void vm_api_put_migrate_cancel(void *opaque, struct api_call *call)
{
    struct vm *vm = opaque;
    struct error err = {{0}};
    int r = vm_migrate_cancel(vm, &err);
    if (r < 0) {
        api_call_error(call, r == -ENOENT ? 404 : 409, "migrate cancel: %s", err.msg);
        return;
    }
    json_t *body = json_pack("{s:s}", "message", "cancelling: the VM runs on here");
    api_call_reply(call, 202, body);
}

json_t *vm_api_migration_json(struct vm *vm)
{
    struct vm_migrate_progress p;
    if (!vm_migrate_progress(vm, &p))
        return NULL;
    return json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:i}", "state", p.state, "round",
                     (int)p.round, "pages_left", (json_int_t)p.pages_left, "dirty_pages_per_s",
                     (json_int_t)p.dirty_pages_per_s, "expected_downtime_ms",
                     (json_int_t)p.expected_downtime_ms, "bytes_sent", (json_int_t)p.bytes_sent,
                     "mib_per_s", (json_int_t)p.mib_per_s, "throttle_percent",
                     (int)p.throttle_percent);
}
