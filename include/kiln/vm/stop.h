/* Why a VM stopped and with which exit status: the small vocabulary shared by devices, vCPU
 * threads and the loop, so a device can end the VM without knowing about struct vm. */
#ifndef KILN_STOP_H
#define KILN_STOP_H

#include <stdbool.h>

enum vm_stop_reason {
    VM_STOP_NONE = 0,
    VM_STOP_TEST_EXIT, /* guest wrote a status to the test-exit port */
    VM_STOP_POWER_OFF, /* guest powered off */
    VM_STOP_RESET,     /* guest reset: i8042, triple fault, KVM system event */
    VM_STOP_SIGNAL,    /* SIGINT/SIGTERM or the console's Ctrl-A x */
    VM_STOP_CRASH,     /* an exit kiln cannot handle: emulation failure, entry failure, ... */
    VM_STOP_REBOOT,    /* the control API asked for a reboot: main builds the VM again */
    VM_STOP_SNAPSHOT,  /* a snapshot asked to stop the VM once written (status 0) */
    VM_STOP_MIGRATED,  /* the VM runs on another kiln now (status 0) */
};

/* kiln's exit statuses (docs/cli.md). Guest test-exit statuses pass through unchanged. */
#define EXIT_GUEST_RESET 123
#define EXIT_KILN_ERROR  125
#define EXIT_GUEST_CRASH 126
#define EXIT_SIGNAL_BASE 128

struct stop_notifier {
    /* Thread-safe; the first request wins. message is copied. */
    void (*request)(void *opaque, enum vm_stop_reason reason, int exit_status, const char *message);
    void *opaque;
    /* Has anyone requested a stop yet? Lock-free, so a vCPU can ask after every exit and
     * not run the guest on after its own device ended the VM. May be NULL (never). */
    bool (*requested)(void *opaque);
};

static inline bool stop_is_requested(const struct stop_notifier *n)
{
    return n->requested && n->requested(n->opaque);
}

static inline void stop_request(const struct stop_notifier *n, enum vm_stop_reason reason,
                                int exit_status, const char *message)
{
    n->request(n->opaque, reason, exit_status, message);
}

#endif
