/* Host-compat kernel command line: the options that keep a Linux guest off what an emulated
 * ring 0 cannot run, merged into the user's command line without overriding anything in it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/boot/cmdline.h"
#include "kiln/hostcompat/hostcompat.h"

/* Why each option (docs/host-compat.md has the long form):
 * - noxsave: the xsave family and xgetbv are not emulated; the kernel falls back to fxsave.
 * - clearcpuid=: leaf 1/7 features KVM_SET_CPUID2 cannot hide here and whose instructions the
 *   emulator lacks (cmpxchg16b, popcnt, SSE3+ ALU, crypto, rdtscp/rdpid, invpcid, cache
 *   flushes, SMAP's stac/clac in every uaccess, fast-string paths, BMI2/ADX). The kernel keeps
 *   only 127 characters of its value, so the list must stay short (a unit test checks).
 * - lpj=, tsc=reliable, no_timer_check, nowatchdog: skip delay-loop calibration, TSC and timer
 *   checks and lockup detectors, which crawl or misfire at ~1000x slower ring-0 speed.
 * - nofsgsbase: with FSGSBASE, an NMI's paranoid entry reads the CPU number with `lsl`, which
 *   the emulator lacks (seen: an RCU stall's backtrace NMI stopped a 2-vCPU minimal kernel). */
#define OPT_NOXSAVE "noxsave"
#define OPT_CLEARCPUID                                                                             \
    "clearcpuid=cx16,popcnt,ssse3,sse4_1,sse4_2,pclmulqdq,aes,rdtscp,rdpid,invpcid,clflushopt,"    \
    "clwb,smap,erms,fsrm,bmi2,adx"
#define OPT_LPJ            "lpj=5000000"
#define OPT_TSC            "tsc=reliable"
#define OPT_NO_TIMER_CHECK "no_timer_check"
#define OPT_NOWATCHDOG     "nowatchdog"
#define OPT_NOFSGSBASE     "nofsgsbase"

static const char *const extra_options[] = {
    OPT_NOXSAVE,        OPT_CLEARCPUID, OPT_LPJ,        OPT_TSC,
    OPT_NO_TIMER_CHECK, OPT_NOWATCHDOG, OPT_NOFSGSBASE,
};
#define EXTRA_COUNT (sizeof(extra_options) / sizeof(extra_options[0]))

static const char extra_joined[] =
    OPT_NOXSAVE " " OPT_CLEARCPUID " " OPT_LPJ " " OPT_TSC " " OPT_NO_TIMER_CHECK " " OPT_NOWATCHDOG
                " " OPT_NOFSGSBASE;

const char *hostcompat_cmdline_extra(void)
{
    return extra_joined;
}

int hostcompat_cmdline_merge(const char *user_cmdline, char **out,
                             struct hostcompat_cmdline_note *note)
{
    struct cmdline_note merged;
    int r = cmdline_add_options(user_cmdline, extra_options, EXTRA_COUNT, true, out, &merged);
    if (note) {
        snprintf(note->added, sizeof(note->added), "%s", merged.added);
        snprintf(note->kept, sizeof(note->kept), "%s", merged.kept);
    }
    return r;
}

int hostcompat_cmdline_append(const char *user_cmdline, char **out)
{
    return hostcompat_cmdline_merge(user_cmdline, out, NULL);
}
