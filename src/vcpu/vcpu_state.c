/* Reading one vCPU's whole state out of KVM and writing it back: which MSRs and XSAVE size
 * this host has, the order the ioctls must run in, and the checks a saved state must pass. */
#include <asm/mtrr.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kiln/util/bytes.h"
#include "kiln/vcpu/vcpu_state.h"

/* Architectural MSR numbers (Intel SDM vol. 4); the UAPI headers carry only the variable-range
 * MTRRs (asm/mtrr.h). */
#define MSR_IA32_TSC          0x10
#define MSR_MTRR_FIX_64K      0x250
#define MSR_MTRR_FIX_16K_80   0x258
#define MSR_MTRR_FIX_16K_A0   0x259
#define MSR_MTRR_FIX_4K_FIRST 0x268 /* MTRR_FIX_4K_COUNT of them: 0x268-0x26f */
#define MTRR_FIX_4K_COUNT     8
#define MSR_MTRR_DEF_TYPE     0x2ff
#define MSR_IA32_TSC_DEADLINE 0x6e0
#define MTRR_VAR_RANGES       8 /* what KVM emulates (MTRRcap.VCNT) */

/* The TSC frequency a host measures at boot differs by a few hundred ppm from one boot or
 * machine to the next; closer than this counts as the same frequency (no scaling asked). */
#define TSC_KHZ_TOLERANCE_PPM 250

#define ALL_EVENT_FLAGS                                                                            \
    (KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |                           \
     KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM | KVM_VCPUEVENT_VALID_PAYLOAD |          \
     KVM_VCPUEVENT_VALID_TRIPLE_FAULT)

static const struct {
    int cap;
    const char *name;
} required_caps[] = {
    {KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE"},
    {KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS"},
    {KVM_CAP_DEBUGREGS, "KVM_CAP_DEBUGREGS"},
};

/* MSRs KVM emulates without listing them in KVM_GET_MSR_INDEX_LIST; kiln sets the MTRRs at
 * boot (msr.c) and a guest may change them. Kept only where KVM_GET_MSRS reads them. */
static size_t extra_msrs(uint32_t *out)
{
    size_t n = 0;
    out[n++] = MSR_IA32_TSC;
    out[n++] = MSR_MTRR_DEF_TYPE;
    out[n++] = MSR_MTRR_FIX_64K;
    out[n++] = MSR_MTRR_FIX_16K_80;
    out[n++] = MSR_MTRR_FIX_16K_A0;
    for (uint32_t i = 0; i < MTRR_FIX_4K_COUNT; i++)
        out[n++] = MSR_MTRR_FIX_4K_FIRST + i;
    for (uint32_t i = 0; i < MTRR_VAR_RANGES; i++) {
        out[n++] = MTRRphysBase_MSR(i);
        out[n++] = MTRRphysMask_MSR(i);
    }
    return n;
}
#define EXTRA_MSRS_MAX (5 + MTRR_FIX_4K_COUNT + 2 * MTRR_VAR_RANGES)

/* KVM_GET_MSRS over indices[0..n), in calls of at most VCPU_STATE_MAX_MSRS. KVM stops at the
 * first MSR it cannot read and returns how many it read; that one is skipped (counted in
 * *skipped) and the call goes on after it. The ones read land in out (which holds n). */
static int read_msrs(int vcpu_fd, const uint32_t *indices, uint32_t n, struct kvm_msr_entry *out,
                     uint32_t *nout, uint32_t *skipped, struct error *err)
{
    struct kvm_msrs *buf =
        calloc(1, sizeof(*buf) + VCPU_STATE_MAX_MSRS * sizeof(struct kvm_msr_entry));
    if (!buf)
        return error_fmt(err, -ENOMEM, "vCPU state: out of memory");
    *nout = 0;
    *skipped = 0;
    uint32_t next = 0;
    while (next < n) {
        uint32_t chunk = n - next < VCPU_STATE_MAX_MSRS ? n - next : VCPU_STATE_MAX_MSRS;
        memset(buf->entries, 0, chunk * sizeof(buf->entries[0]));
        buf->nmsrs = chunk;
        for (uint32_t i = 0; i < chunk; i++)
            buf->entries[i].index = indices[next + i];
        int got = ioctl(vcpu_fd, KVM_GET_MSRS, buf);
        if (got < 0) {
            int e = errno;
            free(buf);
            return error_fmt(err, -e, "vCPU state: KVM_GET_MSRS failed: %s", strerror(e));
        }
        memcpy(out + *nout, buf->entries, (size_t)got * sizeof(buf->entries[0]));
        *nout += (uint32_t)got;
        next += (uint32_t)got;
        if ((uint32_t)got < chunk) {
            (*skipped)++;
            next++;
        }
    }
    free(buf);
    return 0;
}

static bool listed(const uint32_t *list, size_t n, uint32_t index)
{
    for (size_t i = 0; i < n; i++) {
        if (list[i] == index)
            return true;
    }
    return false;
}

/* KVM's list of MSRs worth saving (msrs_to_save and emulated_msrs), plus kiln's extras.
 * *out is malloc'd. */
static int list_msrs(int kvm_fd, uint32_t **out, uint32_t *n, struct error *err)
{
    struct kvm_msr_list probe = {.nmsrs = 0};
    if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
        return error_fmt(err, -errno, "vCPU state: KVM_GET_MSR_INDEX_LIST failed: %s",
                         strerror(errno));
    struct kvm_msr_list *list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(list->indices[0]));
    uint32_t *indices = calloc(probe.nmsrs + EXTRA_MSRS_MAX, sizeof(*indices));
    if (!list || !indices) {
        free(list);
        free(indices);
        return error_fmt(err, -ENOMEM, "vCPU state: out of memory");
    }
    list->nmsrs = probe.nmsrs;
    if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
        int e = errno;
        free(list);
        free(indices);
        return error_fmt(err, -e, "vCPU state: KVM_GET_MSR_INDEX_LIST failed: %s", strerror(e));
    }
    uint32_t count = list->nmsrs;
    memcpy(indices, list->indices, count * sizeof(*indices));
    free(list);
    uint32_t extras[EXTRA_MSRS_MAX];
    size_t nextra = extra_msrs(extras);
    for (size_t i = 0; i < nextra; i++) {
        if (!listed(indices, count, extras[i]))
            indices[count++] = extras[i];
    }
    *out = indices;
    *n = count;
    return 0;
}

int vcpu_state_probe(int kvm_fd, int vm_fd, int vcpu_fd, struct vcpu_state_caps *caps,
                     struct error *err)
{
    memset(caps, 0, sizeof(*caps));
    for (size_t i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++) {
        if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0)
            return error_fmt(err, -ENOTSUP, "vCPU state: KVM lacks %s", required_caps[i].name);
    }
    if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0) {
        /* KVM_CAP_XSAVE2 answers on the VM fd, with the size KVM_GET_XSAVE2 fills. */
        int size = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
        caps->xsave2 = size > 0;
        caps->xsave_size = size > 0 ? (uint32_t)size : VCPU_STATE_XSAVE_SIZE;
        if (caps->xsave_size > VCPU_STATE_XSAVE_SIZE)
            return error_fmt(err, -ENOTSUP,
                             "vCPU state: this host's XSAVE area is %u bytes (a dynamic feature "
                             "such as AMX is on); kiln's vCPU state holds %d",
                             caps->xsave_size, VCPU_STATE_XSAVE_SIZE);
    }
    caps->xcrs = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;

    uint32_t *indices = NULL, n = 0;
    int r = list_msrs(kvm_fd, &indices, &n, err);
    if (r < 0)
        return r;
    caps->nmsrs_listed = n;
    struct kvm_msr_entry *read = calloc(n ? n : 1, sizeof(*read));
    uint32_t nread = 0, skipped = 0;
    r = read ? read_msrs(vcpu_fd, indices, n, read, &nread, &skipped, err)
             : error_fmt(err, -ENOMEM, "vCPU state: out of memory");
    free(indices);
    if (r == 0 && nread > VCPU_STATE_MAX_MSRS)
        r = error_fmt(err, -ENOTSUP,
                      "vCPU state: KVM reads %u MSRs on this host; kiln's vCPU state holds %d",
                      nread, VCPU_STATE_MAX_MSRS);
    for (uint32_t i = 0; r == 0 && i < nread; i++)
        caps->msrs[i] = read[i].index;
    if (r == 0)
        caps->nmsrs = nread;
    free(read);
    return r;
}

int vcpu_state_complete_io(int vcpu_fd, struct kvm_run *run, struct error *err)
{
    uint8_t was = __atomic_load_n(&run->immediate_exit, __ATOMIC_SEQ_CST);
    __atomic_store_n(&run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    int r = ioctl(vcpu_fd, KVM_RUN, 0);
    int e = errno;
    __atomic_store_n(&run->immediate_exit, was, __ATOMIC_SEQ_CST);
    if (r == 0)
        return error_fmt(err, -EIO, "vCPU state: KVM_RUN with immediate_exit ran the guest");
    if (e != EINTR)
        return error_fmt(err, -e, "vCPU state: KVM_RUN to complete I/O failed: %s", strerror(e));
    return 0;
}

static int vcpu_ioctl(int fd, unsigned long request, const void *arg, const char *name,
                      struct error *err)
{
    if (ioctl(fd, request, arg) < 0)
        return error_fmt(err, -errno, "vCPU state: %s failed: %s", name, strerror(errno));
    return 0;
}

/*
 * Save order. Everything is read from a stopped vCPU, so most reads are independent; two are
 * not:
 * - KVM_GET_MP_STATE first: it lets KVM act on a pending INIT or SIPI
 *   (kvm_apic_accept_events), which can rewrite CS:RIP and other registers. Read after it, the
 *   registers and the MP state agree.
 * - KVM_GET_VCPU_EVENTS last, so it sees whatever the reads before it settled.
 */
int vcpu_state_save(int vcpu_fd, const struct vcpu_state_caps *caps, struct vcpu_state *out,
                    struct error *err)
{
    memset(out, 0, sizeof(*out));
    int r = vcpu_ioctl(vcpu_fd, KVM_GET_MP_STATE, &out->mp_state, "KVM_GET_MP_STATE", err);
    if (r == 0)
        r = vcpu_ioctl(vcpu_fd, KVM_GET_REGS, &out->regs, "KVM_GET_REGS", err);
    if (r == 0)
        r = vcpu_ioctl(vcpu_fd, KVM_GET_SREGS, &out->sregs, "KVM_GET_SREGS", err);
    out->xsave_size = caps->xsave_size;
    if (r == 0 && caps->xsave_size == 0)
        r = vcpu_ioctl(vcpu_fd, KVM_GET_FPU, &out->fpu, "KVM_GET_FPU", err);
    /* KVM_GET_XSAVE2 writes exactly the KVM_CAP_XSAVE2 size, which probe checked fits. */
    else if (r == 0 && caps->xsave2)
        r = vcpu_ioctl(vcpu_fd, KVM_GET_XSAVE2, out->xsave, "KVM_GET_XSAVE2", err);
    else if (r == 0)
        r = vcpu_ioctl(vcpu_fd, KVM_GET_XSAVE, out->xsave, "KVM_GET_XSAVE", err);
    if (r == 0 && caps->xcrs)
        r = vcpu_ioctl(vcpu_fd, KVM_GET_XCRS, &out->xcrs, "KVM_GET_XCRS", err);
    if (r == 0)
        r = vcpu_ioctl(vcpu_fd, KVM_GET_DEBUGREGS, &out->debugregs, "KVM_GET_DEBUGREGS", err);
    if (r == 0)
        r = vcpu_ioctl(vcpu_fd, KVM_GET_LAPIC, &out->lapic, "KVM_GET_LAPIC", err);
    if (r == 0)
        r = read_msrs(vcpu_fd, caps->msrs, caps->nmsrs, out->msrs, &out->nmsrs, &out->msrs_skipped,
                      err);
    if (r == 0) {
        int khz = ioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0);
        out->tsc_khz = khz > 0 ? (uint32_t)khz : 0;
        /* The flags KVM returns say which fields KVM_SET_VCPU_EVENTS is to apply; it never
         * reports the SIPI vector (KVM_GET_MP_STATE has already acted on any SIPI). */
        r = vcpu_ioctl(vcpu_fd, KVM_GET_VCPU_EVENTS, &out->events, "KVM_GET_VCPU_EVENTS", err);
    }
    if (r < 0)
        memset(out, 0, sizeof(*out));
    return r;
}

static int check_msrs(const struct vcpu_state_caps *caps, const struct vcpu_state *in,
                      struct error *err)
{
    if (in->nmsrs > VCPU_STATE_MAX_MSRS)
        return error_fmt(err, -EINVAL, "vCPU state: nmsrs is %u (expected at most %d)", in->nmsrs,
                         VCPU_STATE_MAX_MSRS);
    if (in->msrs_skipped > caps->nmsrs_listed)
        return error_fmt(err, -EINVAL,
                         "vCPU state: msrs_skipped is %u (expected at most the %u MSRs listed)",
                         in->msrs_skipped, caps->nmsrs_listed);
    for (uint32_t i = 0; i < in->nmsrs; i++) {
        if (in->msrs[i].reserved != 0)
            return error_fmt(err, -EINVAL, "vCPU state: msrs[%u].reserved is %u (expected 0)", i,
                             in->msrs[i].reserved);
        if (!listed(caps->msrs, caps->nmsrs, in->msrs[i].index))
            return error_fmt(err, -EINVAL,
                             "vCPU state: msrs[%u] is MSR 0x%x (expected one of the %u MSRs "
                             "this host's KVM saves)",
                             i, in->msrs[i].index, caps->nmsrs);
    }
    if (!bytes_all_zero(&in->msrs[in->nmsrs],
                        (VCPU_STATE_MAX_MSRS - in->nmsrs) * sizeof(in->msrs[0])))
        return error_fmt(err, -EINVAL, "vCPU state: msrs past nmsrs %u are not zero", in->nmsrs);
    return 0;
}

static int check_fpu(const struct vcpu_state_caps *caps, const struct vcpu_state *in,
                     struct error *err)
{
    if (in->xsave_size != caps->xsave_size)
        return error_fmt(err, -EINVAL,
                         "vCPU state: xsave_size is %u (expected %u, this host's XSAVE area; "
                         "0 means none)",
                         in->xsave_size, caps->xsave_size);
    if (!bytes_all_zero(in->xsave + in->xsave_size, sizeof(in->xsave) - in->xsave_size))
        return error_fmt(err, -EINVAL, "vCPU state: xsave past xsave_size %u is not zero",
                         in->xsave_size);
    if (in->xsave_size != 0 && !bytes_all_zero(&in->fpu, sizeof(in->fpu)))
        return error_fmt(err, -EINVAL,
                         "vCPU state: fpu is not zero (expected zero: XSAVE holds the FPU)");
    if (in->xcrs.nr_xcrs > (caps->xcrs ? KVM_MAX_XCRS : 0))
        return error_fmt(err, -EINVAL, "vCPU state: xcrs.nr_xcrs is %u (expected at most %d)",
                         in->xcrs.nr_xcrs, caps->xcrs ? KVM_MAX_XCRS : 0);
    if (in->xcrs.flags != 0)
        return error_fmt(err, -EINVAL, "vCPU state: xcrs.flags is 0x%x (expected 0)",
                         in->xcrs.flags);
    return 0;
}

static int check_state(const struct vcpu_state_caps *caps, const struct vcpu_state *in,
                       struct error *err)
{
    if (in->mp_state.mp_state > KVM_MP_STATE_SIPI_RECEIVED)
        return error_fmt(err, -EINVAL,
                         "vCPU state: mp_state is %u (expected %d-%d, an x86 MP state)",
                         in->mp_state.mp_state, KVM_MP_STATE_RUNNABLE, KVM_MP_STATE_SIPI_RECEIVED);
    if (in->events.flags & ~(uint32_t)ALL_EVENT_FLAGS)
        return error_fmt(err, -EINVAL,
                         "vCPU state: events.flags is 0x%x (expected only bits 0x%x set)",
                         in->events.flags, (unsigned)ALL_EVENT_FLAGS);
    if (!bytes_all_zero(in->events.reserved, sizeof(in->events.reserved)))
        return error_fmt(err, -EINVAL, "vCPU state: events.reserved is not zero");
    if (in->debugregs.flags != 0 ||
        !bytes_all_zero(in->debugregs.reserved, sizeof(in->debugregs.reserved)))
        return error_fmt(err, -EINVAL, "vCPU state: debugregs.flags/reserved are not zero");
    if (in->pad != 0)
        return error_fmt(err, -EINVAL, "vCPU state: pad is %u (expected 0)", in->pad);
    int r = check_fpu(caps, in, err);
    return r < 0 ? r : check_msrs(caps, in, err);
}

/* A vCPU created on another host may run its TSC at another rate: ask KVM to scale it to the
 * saved one, before any TSC value is written (KVM converts them at the current ratio). */
static int restore_tsc_khz(int vcpu_fd, uint32_t saved_khz, struct error *err)
{
    int here = ioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0);
    if (saved_khz == 0 || here <= 0)
        return 0; /* unknown on one side: nothing to compare */
    int64_t diff = (int64_t)here - (int64_t)saved_khz;
    if (diff < 0)
        diff = -diff;
    if (diff * 1000000 <= (int64_t)saved_khz * TSC_KHZ_TOLERANCE_PPM)
        return 0;
    if (ioctl(vcpu_fd, KVM_SET_TSC_KHZ, (unsigned long)saved_khz) < 0)
        return error_fmt(err, -errno,
                         "vCPU state: the saved TSC ran at %u kHz, this host's at %d kHz, and "
                         "KVM_SET_TSC_KHZ cannot scale it: %s",
                         saved_khz, here, strerror(errno));
    return 0;
}

/* KVM_SET_MSRS for entries[0..n), which must all be taken. */
static int write_msrs(int vcpu_fd, const struct kvm_msr_entry *entries, uint32_t n,
                      struct error *err)
{
    if (n == 0)
        return 0;
    struct kvm_msrs *buf = calloc(1, sizeof(*buf) + n * sizeof(*entries));
    if (!buf)
        return error_fmt(err, -ENOMEM, "vCPU state: out of memory");
    buf->nmsrs = n;
    memcpy(buf->entries, entries, n * sizeof(*entries));
    int set = ioctl(vcpu_fd, KVM_SET_MSRS, buf);
    int e = errno;
    free(buf);
    if (set < 0)
        return error_fmt(err, -e, "vCPU state: KVM_SET_MSRS failed: %s", strerror(e));
    /* KVM stops at the first MSR it refuses and says how many it took. */
    if ((uint32_t)set < n)
        return error_fmt(err, -EINVAL, "vCPU state: KVM refused MSR 0x%x = 0x%llx",
                         entries[set].index, (unsigned long long)entries[set].data);
    return 0;
}

/*
 * Restore order, and why (KVM's x86.c and lapic.c; QEMU, Firecracker and Cloud Hypervisor
 * agree on the constraints, not always on the order of the free parts):
 *  1. TSC frequency: KVM converts the TSC values written below at the current ratio.
 *  2. SREGS: CR0/CR4/EFER set the mode the rest is read in, and the APIC base (enabled,
 *     x2APIC) decides how KVM_SET_LAPIC reads its blob. It also queues any interrupt in
 *     interrupt_bitmap, and may mark a BSP sitting at the reset vector runnable.
 *  3. REGS: KVM_SET_REGS drops a pending exception, so it must precede the events.
 *  4. FPU/XSAVE and XCRs, debug registers: independent of the rest.
 *  5. LAPIC, after SREGS (APIC base). KVM_SET_LAPIC reprograms the APIC timer.
 *  6. MSRs, except the TSC deadline: after SREGS (EFER, APIC base) and the LAPIC. IA32_TSC is
 *     among them (a host-initiated write sets the TSC offset); so are the kvmclock MSRs.
 *  7. IA32_TSC_DEADLINE alone, last of the MSRs: KVM drops the write unless LVTT (from the
 *     LAPIC) is in TSC-deadline mode, and arms the timer against the guest TSC just written.
 *  8. vCPU events, after REGS and SREGS: the pending exception, the interrupt and NMI state
 *     and the interrupt shadow they carry are the last word over what those two left.
 *  9. MP state last: SREGS may have made the vCPU runnable (a BSP at the reset vector), and
 *     KVM refuses INIT_RECEIVED and SIPI_RECEIVED while the events say an INIT is latched
 *     (in SMM).
 */
int vcpu_state_restore(int vcpu_fd, const struct vcpu_state_caps *caps, const struct vcpu_state *in,
                       struct error *err)
{
    int r = check_state(caps, in, err);
    if (r < 0)
        return r;
    uint32_t ndeadline = 0, nrest = 0;
    struct kvm_msr_entry deadline = {0}, *rest = calloc(in->nmsrs ? in->nmsrs : 1, sizeof(*rest));
    if (!rest)
        return error_fmt(err, -ENOMEM, "vCPU state: out of memory");
    for (uint32_t i = 0; i < in->nmsrs; i++) {
        if (in->msrs[i].index == MSR_IA32_TSC_DEADLINE && ndeadline == 0) {
            deadline = in->msrs[i];
            ndeadline = 1;
        } else {
            rest[nrest++] = in->msrs[i];
        }
    }

    r = restore_tsc_khz(vcpu_fd, in->tsc_khz, err);
    if (r == 0)
        r = vcpu_ioctl(vcpu_fd, KVM_SET_SREGS, &in->sregs, "KVM_SET_SREGS", err);
    if (r == 0)
        r = vcpu_ioctl(vcpu_fd, KVM_SET_REGS, &in->regs, "KVM_SET_REGS", err);
    if (r == 0 && in->xsave_size == 0)
        r = vcpu_ioctl(vcpu_fd, KVM_SET_FPU, &in->fpu, "KVM_SET_FPU", err);
    else if (r == 0) /* KVM_SET_XSAVE reads the KVM_CAP_XSAVE2 size: xsave_size, checked */
        r = vcpu_ioctl(vcpu_fd, KVM_SET_XSAVE, in->xsave, "KVM_SET_XSAVE", err);
    if (r == 0 && caps->xcrs)
        r = vcpu_ioctl(vcpu_fd, KVM_SET_XCRS, &in->xcrs, "KVM_SET_XCRS", err);
    if (r == 0)
        r = vcpu_ioctl(vcpu_fd, KVM_SET_DEBUGREGS, &in->debugregs, "KVM_SET_DEBUGREGS", err);
    if (r == 0)
        r = vcpu_ioctl(vcpu_fd, KVM_SET_LAPIC, &in->lapic, "KVM_SET_LAPIC", err);
    if (r == 0)
        r = write_msrs(vcpu_fd, rest, nrest, err);
    if (r == 0)
        r = write_msrs(vcpu_fd, &deadline, ndeadline, err);
    if (r == 0)
        r = vcpu_ioctl(vcpu_fd, KVM_SET_VCPU_EVENTS, &in->events, "KVM_SET_VCPU_EVENTS", err);
    if (r == 0)
        r = vcpu_ioctl(vcpu_fd, KVM_SET_MP_STATE, &in->mp_state, "KVM_SET_MP_STATE", err);
    free(rest);
    return r;
}
