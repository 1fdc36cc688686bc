/* Host compatibility for a /dev/kvm that runs guest ring 0 in KVM's instruction emulator: the
 * start-time probe, the guest command-line additions and the VMM-side emulation it needs. */
#ifndef KILN_HOSTCOMPAT_H
#define KILN_HOSTCOMPAT_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/config/config.h" /* enum host_compat_mode: --host-compat auto|on|off */
#include "kiln/util/error.h"
#include "kiln/vm/guest_mem.h"
#include "kiln/util/log.h"

/*
 * Why: on hosts whose KVM runs guest CPL0 code in its instruction emulator (our nested
 * "kvm-pvm" development machines), KVM_RUN stops with KVM_EXIT_INTERNAL_ERROR /
 * KVM_INTERNAL_ERROR_EMULATION on a handful of instructions a stock Linux kernel executes
 * even when told not to use the matching features. kiln emulates those few, and tells the
 * kernel on its command line to leave the rest alone. On a host with hardware virtualisation
 * the module is never enabled (auto mode) and, even when forced on, these exits do not occur.
 * See docs/host-compat.md.
 */

/* The instructions kiln emulates, for counters and log lines. */
enum hostcompat_insn {
    HOSTCOMPAT_INSN_INT3,    /* CC: #BP injected with RIP past the int3 */
    HOSTCOMPAT_INSN_FWAIT,   /* 9B */
    HOSTCOMPAT_INSN_FNCLEX,  /* DB E2, and fclex = 9B DB E2 */
    HOSTCOMPAT_INSN_EMMS,    /* 0F 77 */
    HOSTCOMPAT_INSN_CLAC,    /* 0F 01 CA */
    HOSTCOMPAT_INSN_STAC,    /* 0F 01 CB */
    HOSTCOMPAT_INSN_LDMXCSR, /* 0F AE /2, memory operand */
    HOSTCOMPAT_INSN_STMXCSR, /* 0F AE /3, memory operand */
    HOSTCOMPAT_INSN_COUNT
};

const char *hostcompat_insn_name(enum hostcompat_insn insn);

enum hostcompat_result {
    HOSTCOMPAT_EMULATED,    /* cpu updated (RIP past the instruction): write back, resume */
    HOSTCOMPAT_INJECT_BP,   /* int3: cpu->rip is past it; inject #BP (no error code), resume */
    HOSTCOMPAT_UNKNOWN,     /* not an instruction (or form, prefix, mode) this module emulates */
    HOSTCOMPAT_TRUNCATED,   /* the bytes given end before the instruction does */
    HOSTCOMPAT_NOT_CPL0,    /* only ring-0 code runs in KVM's emulator; never act elsewhere */
    HOSTCOMPAT_WOULD_FAULT, /* the CPU would raise #UD/#NM/#MF/#GP here: not ours to fake */
    HOSTCOMPAT_BAD_ADDRESS, /* memory operand non-canonical, unmapped or outside guest RAM */
};

const char *hostcompat_result_name(enum hostcompat_result result);

/* Segment registers, numbered like the sreg field of the x86 encoding (Intel SDM vol. 2,
 * table 3-6 "Segment Register Field"). */
enum hostcompat_seg {
    HOSTCOMPAT_SEG_ES,
    HOSTCOMPAT_SEG_CS,
    HOSTCOMPAT_SEG_SS,
    HOSTCOMPAT_SEG_DS,
    HOSTCOMPAT_SEG_FS,
    HOSTCOMPAT_SEG_GS,
    HOSTCOMPAT_SEG_COUNT
};

/* The slice of vCPU state the emulation reads and writes: no KVM types, so unit tests can
 * drive hostcompat_emulate() directly. hostcompat_cpu_from_kvm() fills it from KVM state. */
struct hostcompat_cpu {
    /* In (and out, where the instruction changes them). */
    uint64_t rip;
    uint64_t rflags;
    uint64_t gpr[16]; /* RAX RCX RDX RBX RSP RBP RSI RDI R8..R15: the ModRM/SIB numbering */
    uint64_t seg_base[HOSTCOMPAT_SEG_COUNT];
    uint64_t cr0;
    uint64_t cr4;
    unsigned cpl;       /* SS.DPL, as KVM itself defines the CPL */
    unsigned code_bits; /* 64 (CS.L in long mode), 32 (CS.D) or 16 */
    uint32_t mxcsr;
    uint16_t fsw; /* x87 status word */
    uint8_t ftwx; /* abridged x87 tag word (FXSAVE format: a set bit = register in use) */
    /* Out, valid after HOSTCOMPAT_EMULATED or HOSTCOMPAT_INJECT_BP. */
    enum hostcompat_insn insn;
    unsigned length;  /* bytes of the instruction, prefixes included */
    bool fpu_changed; /* mxcsr, fsw or ftwx changed: KVM_SET_XSAVE needed */
};

/* Guest memory as the emulation sees it. translate() turns a linear address into a
 * guest-physical one (the offset within its page kept); read()/write() then access guest RAM
 * and are only ever called for ranges inside one page. Each returns 0 or a negative errno.
 * hostcompat_emulate() translates every page an operand touches before accessing any. */
struct hostcompat_memory_ops {
    int (*translate)(void *opaque, uint64_t linear, bool write, uint64_t *gpa);
    int (*read)(void *opaque, uint64_t gpa, void *dst, size_t len);
    int (*write)(void *opaque, uint64_t gpa, const void *src, size_t len);
    void *opaque;
};

/* Decodes the instruction in insn[0..len) at cpu->rip and, if it is one of ours and the CPU
 * would execute it without faulting, applies it to cpu (and to memory through mem). On any
 * other result cpu and guest memory are unchanged. Pure: no KVM, no globals. */
enum hostcompat_result hostcompat_emulate(struct hostcompat_cpu *cpu, const uint8_t *insn,
                                          size_t len, const struct hostcompat_memory_ops *mem);

/* KVM state <-> struct hostcompat_cpu. x87/SSE state comes from KVM_GET_XSAVE, because
 * KVM_GET/SET_FPU ignore kvm_fpu.mxcsr. to_kvm writes rip/rflags into regs and, if
 * cpu->fpu_changed, MXCSR, FSW and the tag byte into xsave (marking x87 and SSE present);
 * everything else stays as KVM_GET_* returned it. */
void hostcompat_cpu_from_kvm(struct hostcompat_cpu *cpu, const struct kvm_regs *regs,
                             const struct kvm_sregs *sregs, const struct kvm_xsave *xsave);
void hostcompat_cpu_to_kvm(const struct hostcompat_cpu *cpu, struct kvm_regs *regs,
                           struct kvm_xsave *xsave);

/* Turns events (from KVM_GET_VCPU_EVENTS) into a #BP injection for KVM_SET_VCPU_EVENTS.
 * Returns false, leaving events alone, if an exception is already pending or injected. */
bool hostcompat_events_inject_bp(struct kvm_vcpu_events *events);

/* ---- Start-time probe ------------------------------------------------------------------- */

struct hostcompat_probe_result {
    bool emulated_ring0;
    uint32_t exit_reason; /* the KVM exit that decided it */
    uint64_t failed_rip;  /* the probe instruction KVM's emulator gave up on, if any */
    uint64_t elapsed_ns;  /* whole probe: VM creation to teardown */
};

/* Runs a throwaway one-vCPU VM (no irqchip) with two ring-0 instructions KVM's emulator lacks
 * in 32-bit protected mode: `pxor xmm0,xmm0; out 0x80,al; int3`. Hardware virtualisation runs
 * pxor natively (the out exits), then int3 triple-faults for want of an IDT (a shutdown
 * exit); an emulated ring 0 stops with an emulation failure at the first of them.
 * A few milliseconds; see docs/host-compat.md for measurements. */
int hostcompat_probe(int kvm_fd, bool *emulated_ring0, struct error *err);
int hostcompat_probe_run(int kvm_fd, struct hostcompat_probe_result *result, struct error *err);

/* ---- Guest command line ----------------------------------------------------------------- */

/* The options kiln adds in host-compat mode (a constant string). */
const char *hostcompat_cmdline_extra(void);

/* Which of the extra options the user's command line already set (their value wins). */
struct hostcompat_cmdline_note {
    char added[512]; /* the options appended, space-separated; "" if none */
    char kept[128];  /* names of our options the user gave, e.g. "clearcpuid lpj"; "" if none */
};

/* *out = user_cmdline with each extra option the user did not already give inserted (before a
 * "--" that starts init's arguments, else at the end). Options match by name, '-' and '_'
 * alike, as the kernel compares them; a user's clearcpuid= is kept as is, never merged.
 * *out is malloc'd (free it). Returns 0 or -ENOMEM. note may be NULL. */
int hostcompat_cmdline_append(const char *user_cmdline, char **out);
int hostcompat_cmdline_merge(const char *user_cmdline, char **out,
                             struct hostcompat_cmdline_note *note);

/* ---- Per-VM state and the KVM glue ------------------------------------------------------ */

struct hostcompat {
    /* Decided by hostcompat_init() before any vCPU runs; read-only afterwards. */
    enum host_compat_mode mode;
    bool enabled;
    bool probed;
    struct hostcompat_probe_result probe;
    struct hostcompat_cmdline_note cmdline; /* set by hostcompat_boot_cmdline() */
    /* Shared by vCPU threads: only touched with __atomic builtins. */
    int announced; /* the one "host-compat mode on" line has been logged */
    uint64_t emulated[HOSTCOMPAT_INSN_COUNT];
    uint64_t declined; /* emulation failures left to kiln's normal diagnostic */
};

/* Decides whether the module is on: HOST_COMPAT_ON/OFF as told, HOST_COMPAT_AUTO by running
 * the probe on kvm_fd (an open /dev/kvm). Logs the probe outcome at debug level. */
int hostcompat_init(struct hostcompat *hc, enum host_compat_mode mode, int kvm_fd,
                    const struct log *log, struct error *err);

/* The kernel command line to boot with: user_cmdline unchanged when the module is off, else
 * with the extra options merged in; then logs the one "host-compat mode on" line (info level:
 * kiln is silent on success by default) naming what kiln emulates and what it added.
 * *out is malloc'd. Returns 0 or a negative errno with err set. */
int hostcompat_boot_cmdline(struct hostcompat *hc, const char *user_cmdline, char **out,
                            const struct log *log, struct error *err);

/* Logs the "host-compat mode on" line if no thread has yet. Thread-safe. */
void hostcompat_announce(struct hostcompat *hc, const struct log *log);

/* Counts one emulated instruction (and announces the mode if nothing has yet). Thread-safe. */
void hostcompat_record(struct hostcompat *hc, enum hostcompat_insn insn, const struct log *log);
uint64_t hostcompat_count(const struct hostcompat *hc, enum hostcompat_insn insn);

/* For the vCPU thread, on any exit kiln does not otherwise handle. Returns 1 if the exit was
 * an emulation failure this module dealt with (call KVM_RUN again), 0 if it is not ours
 * (module off, another exit, an instruction or operand we do not handle, an ioctl failure):
 * then report it as before. Uses KVM's instruction bytes when it gives them, else reads them at
 * RIP through KVM_TRANSLATE + guest_mem_read. Thread-safe; per-vCPU state stays in KVM. */
int hostcompat_handle_exit(struct hostcompat *hc, int vcpu_fd, struct kvm_run *run,
                           const struct guest_mem *mem, const struct log *log);

/* KVM paravirtual features that a guest uses through `vmcall` (PV IPIs, directed yield,
 * PV TLB flush, PV spinlock kick): our hosts' ring-0 emulation hangs on vmcall, so when the
 * module is on they are cleared from CPUID 0x40000001 (the guest falls back to plain IPIs). */
void hostcompat_adjust_cpuid(const struct hostcompat *hc, struct kvm_cpuid2 *cpuid);

/* One debug line with the per-instruction counters; nothing when the module is off. */
void hostcompat_log_stats(const struct hostcompat *hc, const struct log *log);

#endif
