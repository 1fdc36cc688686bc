/* Host-compat per-VM state: deciding the mode (probe or --host-compat), the boot command line,
 * the one "mode on" log line, and the per-instruction counters shared by vCPU threads. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/hostcompat/hostcompat.h"

int hostcompat_init(struct hostcompat *hc, enum host_compat_mode mode, int kvm_fd,
                    const struct log *log, struct error *err)
{
    memset(hc, 0, sizeof(*hc));
    hc->mode = mode;
    if (mode == HOST_COMPAT_ON) {
        hc->enabled = true;
        return 0;
    }
    if (mode == HOST_COMPAT_OFF)
        return 0;
    int r = hostcompat_probe_run(kvm_fd, &hc->probe, err);
    if (r < 0)
        return r;
    hc->probed = true;
    hc->enabled = hc->probe.emulated_ring0;
    log_debug(log, "host-compat probe: %s (exit reason %" PRIu32 ", %.2f ms)",
              hc->enabled ? "guest ring 0 is emulated by KVM: host-compat on"
                          : "hardware virtualisation: host-compat stays off",
              hc->probe.exit_reason, (double)hc->probe.elapsed_ns / 1e6);
    return 0;
}

int hostcompat_boot_cmdline(struct hostcompat *hc, const char *user_cmdline, char **out,
                            const struct log *log, struct error *err)
{
    if (!user_cmdline)
        user_cmdline = "";
    if (!hc->enabled) {
        *out = strdup(user_cmdline);
        return *out ? 0 : error_fmt(err, -ENOMEM, "kernel command line: out of memory");
    }
    int r = hostcompat_cmdline_merge(user_cmdline, out, &hc->cmdline);
    if (r < 0)
        return error_fmt(err, r, "kernel command line: out of memory");
    hostcompat_announce(hc, log);
    return 0;
}

static void describe_reason(const struct hostcompat *hc, char *buf, size_t size)
{
    if (hc->mode == HOST_COMPAT_ON)
        snprintf(buf, size, "forced by --host-compat on");
    else if (hc->probed)
        snprintf(buf, size,
                 "/dev/kvm runs guest ring 0 in KVM's instruction emulator; probe %.1f ms",
                 (double)hc->probe.elapsed_ns / 1e6);
    else
        snprintf(buf, size, "KVM could not emulate a ring-0 instruction");
}

void hostcompat_announce(struct hostcompat *hc, const struct log *log)
{
    /* Whichever thread gets here first logs; the others see 1 and return. */
    if (__atomic_exchange_n(&hc->announced, 1, __ATOMIC_ACQ_REL))
        return;
    char reason[128], cmdline[sizeof(hc->cmdline.added) + sizeof(hc->cmdline.kept) + 96] = "";
    describe_reason(hc, reason, sizeof(reason));
    const struct hostcompat_cmdline_note *note = &hc->cmdline;
    size_t used = 0;
    if (note->added[0])
        used = (size_t)snprintf(cmdline, sizeof(cmdline), "; kernel command line += '%s'",
                                note->added);
    if (note->kept[0] && used < sizeof(cmdline))
        snprintf(cmdline + used, sizeof(cmdline) - used,
                 "; kept the command line's own %s (kiln's value not added)", note->kept);
    /* info, not warn: kiln's stderr stays silent on success and one line on error; the guest
     * kernel prints its whole command line itself ("Command line: ..."). */
    log_info(log,
             "host-compat mode on (%s): kiln injects #BP for ring-0 int3 and emulates fwait, "
             "fnclex, emms, clac, stac, ldmxcsr and stmxcsr%s",
             reason, cmdline);
}

void hostcompat_record(struct hostcompat *hc, enum hostcompat_insn insn, const struct log *log)
{
    if ((unsigned)insn < HOSTCOMPAT_INSN_COUNT)
        __atomic_fetch_add(&hc->emulated[insn], 1, __ATOMIC_RELAXED);
    hostcompat_announce(hc, log);
}

uint64_t hostcompat_count(const struct hostcompat *hc, enum hostcompat_insn insn)
{
    if ((unsigned)insn >= HOSTCOMPAT_INSN_COUNT)
        return 0;
    return __atomic_load_n(&hc->emulated[insn], __ATOMIC_RELAXED);
}

void hostcompat_log_stats(const struct hostcompat *hc, const struct log *log)
{
    if (!hc->enabled || !log_enabled(log, LOG_DEBUG))
        return;
    char line[512];
    size_t used = 0;
    for (int i = 0; i < HOSTCOMPAT_INSN_COUNT && used < sizeof(line); i++)
        used += (size_t)snprintf(line + used, sizeof(line) - used, "%s%s %" PRIu64, i ? ", " : "",
                                 hostcompat_insn_name(i), hostcompat_count(hc, i));
    log_debug(log,
              "host-compat: emulated %s; %" PRIu64 " emulation failures left to the diagnostic",
              line, __atomic_load_n(&hc->declined, __ATOMIC_RELAXED));
}
