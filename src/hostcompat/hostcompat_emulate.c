/* hostcompat_emulate(): decoding and executing the few ring-0 instructions KVM's emulator lacks
 * (int3, fwait, fnclex, emms, clac, stac, ldmxcsr, stmxcsr), on plain state, with no KVM. */
#include <asm/processor-flags.h>

#include "kiln/hostcompat/hostcompat.h"

/* Intel SDM vol. 2, 2.1.1 and 2.2.1: legacy prefixes and REX. */
#define PREFIX_OPSIZE   0x66
#define PREFIX_ADDRSIZE 0x67
#define PREFIX_LOCK     0xF0
#define PREFIX_REPNE    0xF2
#define PREFIX_REP      0xF3
#define REX_X           0x02
#define REX_B           0x01
#define MAX_INSN_LEN    15 /* SDM vol. 2, 2.3.11: longer is #GP */

/* x87 status word (SDM vol. 1, 8.1.3): exception flags 0-5, SF 6, ES 7, B 15. */
#define FSW_ES           0x0080u
#define FSW_FNCLEX_CLEAR 0x80FFu
/* MXCSR bits 16-31 are reserved (SDM vol. 1, 10.2.3); kiln assumes DAZ (bit 6) exists, as on
 * every x86-64 CPU with a non-zero MXCSR_MASK, so only the upper half makes ldmxcsr #GP. */
#define MXCSR_RESERVED 0xFFFF0000u

#define PAGE_SIZE 4096u

struct decoder {
    const uint8_t *bytes;
    size_t len;  /* bytes available */
    size_t pos;  /* next byte to decode */
    int segment; /* override prefix, or -1 */
    bool addr_override;
    bool bad_prefix; /* 66/F2/F3/F0: changes or invalidates every opcode we handle */
    uint8_t rex;
    const struct hostcompat_memory_ops *mem;
};

static bool next_byte(struct decoder *d, uint8_t *byte)
{
    if (d->pos >= d->len || d->pos >= MAX_INSN_LEN)
        return false;
    *byte = d->bytes[d->pos++];
    return true;
}

static int segment_prefix(uint8_t byte)
{
    switch (byte) {
    case 0x26:
        return HOSTCOMPAT_SEG_ES;
    case 0x2E:
        return HOSTCOMPAT_SEG_CS;
    case 0x36:
        return HOSTCOMPAT_SEG_SS;
    case 0x3E:
        return HOSTCOMPAT_SEG_DS;
    case 0x64:
        return HOSTCOMPAT_SEG_FS;
    case 0x65:
        return HOSTCOMPAT_SEG_GS;
    default:
        return -1;
    }
}

/* Consumes prefixes; returns false if the bytes end first. *opcode is the first non-prefix. */
static bool decode_prefixes(struct decoder *d, unsigned code_bits, uint8_t *opcode)
{
    uint8_t byte;
    while (next_byte(d, &byte)) {
        int seg = segment_prefix(byte);
        if (seg >= 0) {
            d->segment = seg;
            d->rex = 0; /* a REX not directly before the opcode is ignored (SDM 2.2.1) */
        } else if (byte == PREFIX_ADDRSIZE) {
            d->addr_override = true;
            d->rex = 0;
        } else if (byte == PREFIX_OPSIZE || byte == PREFIX_LOCK || byte == PREFIX_REPNE ||
                   byte == PREFIX_REP) {
            d->bad_prefix = true;
            d->rex = 0;
        } else if (code_bits == 64 && (byte & 0xF0) == 0x40) {
            d->rex = byte;
        } else {
            *opcode = byte;
            return true;
        }
    }
    return false;
}

static uint64_t address_mask(unsigned bits)
{
    return bits == 64 ? UINT64_MAX : 0xFFFFFFFFull;
}

static bool read_disp(struct decoder *d, unsigned size, int64_t *disp)
{
    uint8_t b[4];
    for (unsigned i = 0; i < size; i++) {
        if (!next_byte(d, &b[i]))
            return false;
    }
    if (size == 1)
        *disp = (int8_t)b[0];
    else
        *disp = (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                          (uint32_t)b[3] << 24);
    return true;
}

struct operand {
    uint64_t effective;  /* offset within the segment, before RIP-relative fix-up */
    bool rip_relative;   /* effective is a displacement from the next instruction */
    int default_segment; /* SS for rSP/rBP bases, else DS (SDM vol. 1, 3.7.4) */
};

/* ModRM (+SIB, +displacement) memory operand, 32- or 64-bit addressing (SDM vol. 2, 2.1.5 and
 * 2.2.1.3-2.2.1.6). Returns HOSTCOMPAT_EMULATED when decoded. */
static enum hostcompat_result decode_memory_operand(struct decoder *d,
                                                    const struct hostcompat_cpu *cpu, uint8_t modrm,
                                                    unsigned addr_bits, struct operand *op)
{
    unsigned mod = modrm >> 6, rm = modrm & 7;
    uint64_t ea = 0;
    int64_t disp = 0;
    unsigned disp_size = mod == 1 ? 1 : mod == 2 ? 4 : 0;
    op->rip_relative = false;
    op->default_segment = HOSTCOMPAT_SEG_DS;

    if (rm == 4) {
        uint8_t sib;
        if (!next_byte(d, &sib))
            return HOSTCOMPAT_TRUNCATED;
        unsigned scale = sib >> 6;
        unsigned index = ((sib >> 3) & 7) | (d->rex & REX_X ? 8 : 0);
        unsigned base = (sib & 7) | (d->rex & REX_B ? 8 : 0);
        if (index != 4) /* 100b without REX.X means "no index"; with REX.X it is R12 */
            ea += cpu->gpr[index] << scale;
        if ((sib & 7) == 5 && mod == 0) {
            disp_size = 4; /* no base register, disp32 (whatever REX.B says) */
        } else {
            ea += cpu->gpr[base];
            if (base == 4 || base == 5)
                op->default_segment = HOSTCOMPAT_SEG_SS;
        }
    } else if (rm == 5 && mod == 0) {
        disp_size = 4;
        op->rip_relative = cpu->code_bits == 64; /* in 32-bit mode: plain disp32 */
    } else {
        unsigned base = rm | (d->rex & REX_B ? 8 : 0);
        ea += cpu->gpr[base];
        if (base == 5)
            op->default_segment = HOSTCOMPAT_SEG_SS;
    }
    if (disp_size && !read_disp(d, disp_size, &disp))
        return HOSTCOMPAT_TRUNCATED;
    op->effective = (ea + (uint64_t)disp) & address_mask(addr_bits);
    return HOSTCOMPAT_EMULATED;
}

/* Bits 63:47 all equal (SDM vol. 1, 3.3.7.1); anything else is #GP before any page walk. */
static bool canonical(uint64_t linear)
{
    uint64_t top = linear >> 47;
    return top == 0 || top == 0x1FFFF;
}

/* An operand of len bytes at linear, possibly split across two pages: both pages are
 * translated before either is read or written, so a fault leaves guest memory untouched. */
static enum hostcompat_result access_memory(const struct hostcompat_memory_ops *mem,
                                            uint64_t linear, uint64_t mask, void *buf, size_t len,
                                            bool write)
{
    size_t first = PAGE_SIZE - (linear & (PAGE_SIZE - 1));
    if (first > len)
        first = len;
    uint64_t pieces_linear[2] = {linear, (linear + first) & mask};
    size_t pieces_len[2] = {first, len - first};
    uint64_t gpa[2];
    unsigned n = pieces_len[1] ? 2 : 1;
    for (unsigned i = 0; i < n; i++) {
        if (mem->translate(mem->opaque, pieces_linear[i], write, &gpa[i]) < 0)
            return HOSTCOMPAT_BAD_ADDRESS;
    }
    uint8_t *bytes = buf;
    if (!write) {
        for (unsigned i = 0; i < n; i++) {
            if (mem->read(mem->opaque, gpa[i], bytes + (i ? first : 0), pieces_len[i]) < 0)
                return HOSTCOMPAT_BAD_ADDRESS;
        }
        return HOSTCOMPAT_EMULATED;
    }
    /* Read both pieces back first so that a piece outside RAM fails before anything is
     * written: the guest must never see half a store. */
    uint8_t probe[4];
    for (unsigned i = 0; i < n; i++) {
        if (mem->read(mem->opaque, gpa[i], probe, pieces_len[i]) < 0)
            return HOSTCOMPAT_BAD_ADDRESS;
    }
    for (unsigned i = 0; i < n; i++) {
        if (mem->write(mem->opaque, gpa[i], bytes + (i ? first : 0), pieces_len[i]) < 0)
            return HOSTCOMPAT_BAD_ADDRESS;
    }
    return HOSTCOMPAT_EMULATED;
}

static uint64_t next_rip(const struct hostcompat_cpu *cpu, size_t length)
{
    return (cpu->rip + length) & address_mask(cpu->code_bits);
}

/* Segment base + effective address, in the wrap-around of the current mode. */
static enum hostcompat_result operand_linear(const struct decoder *d,
                                             const struct hostcompat_cpu *cpu,
                                             const struct operand *op, unsigned addr_bits,
                                             uint64_t *linear)
{
    uint64_t ea = op->effective;
    if (op->rip_relative)
        ea = (next_rip(cpu, d->pos) + ea) & address_mask(addr_bits);
    int seg = d->segment >= 0 ? d->segment : op->default_segment;
    if (cpu->code_bits != 64) {
        /* Segment limits are not checked: Linux runs with flat 4 GiB segments. */
        *linear = (cpu->seg_base[seg] + ea) & 0xFFFFFFFFull;
        return HOSTCOMPAT_EMULATED;
    }
    /* Long mode: only FS and GS have a base (SDM vol. 1, 3.4.2.1). */
    bool based = seg == HOSTCOMPAT_SEG_FS || seg == HOSTCOMPAT_SEG_GS;
    *linear = (based ? cpu->seg_base[seg] : 0) + ea;
    if (!canonical(*linear) || !canonical(*linear + 3))
        return HOSTCOMPAT_BAD_ADDRESS; /* #GP */
    return HOSTCOMPAT_EMULATED;
}

/* ldmxcsr m32 / stmxcsr m32 (SDM vol. 2, LDMXCSR and STMXCSR). */
static enum hostcompat_result emulate_mxcsr(struct decoder *d, struct hostcompat_cpu *cpu,
                                            uint8_t modrm)
{
    if (cpu->code_bits == 32 && d->addr_override)
        return HOSTCOMPAT_UNKNOWN; /* 16-bit addressing: never used by the kernel */
    unsigned addr_bits = cpu->code_bits == 64 && !d->addr_override ? 64 : 32;
    struct operand op;
    enum hostcompat_result r = decode_memory_operand(d, cpu, modrm, addr_bits, &op);
    if (r != HOSTCOMPAT_EMULATED)
        return r;
    /* #UD without SSE enabled, #NM with CR0.TS: the guest's own handlers must see those. */
    if ((cpu->cr0 & X86_CR0_EM) || !(cpu->cr4 & X86_CR4_OSFXSR) || (cpu->cr0 & X86_CR0_TS))
        return HOSTCOMPAT_WOULD_FAULT;
    uint64_t linear;
    r = operand_linear(d, cpu, &op, addr_bits, &linear);
    if (r != HOSTCOMPAT_EMULATED)
        return r;

    uint8_t bytes[4];
    bool load = ((modrm >> 3) & 7) == 2;
    if (!load) {
        for (unsigned i = 0; i < 4; i++)
            bytes[i] = (uint8_t)(cpu->mxcsr >> (8 * i));
        cpu->insn = HOSTCOMPAT_INSN_STMXCSR;
        return access_memory(d->mem, linear, address_mask(cpu->code_bits), bytes, 4, true);
    }
    r = access_memory(d->mem, linear, address_mask(cpu->code_bits), bytes, 4, false);
    if (r != HOSTCOMPAT_EMULATED)
        return r;
    uint32_t value = (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 | (uint32_t)bytes[2] << 16 |
                     (uint32_t)bytes[3] << 24;
    if (value & MXCSR_RESERVED)
        return HOSTCOMPAT_WOULD_FAULT; /* #GP(0) */
    cpu->mxcsr = value;
    cpu->fpu_changed = true;
    cpu->insn = HOSTCOMPAT_INSN_LDMXCSR;
    return HOSTCOMPAT_EMULATED;
}

/* fnclex (SDM vol. 2, FCLEX/FNCLEX): #NM with CR0.EM or CR0.TS. */
static enum hostcompat_result emulate_fnclex(struct hostcompat_cpu *cpu)
{
    if (cpu->cr0 & (X86_CR0_EM | X86_CR0_TS))
        return HOSTCOMPAT_WOULD_FAULT;
    cpu->fsw &= (uint16_t)~FSW_FNCLEX_CLEAR;
    cpu->fpu_changed = true;
    cpu->insn = HOSTCOMPAT_INSN_FNCLEX;
    return HOSTCOMPAT_EMULATED;
}

/* fwait (SDM vol. 2, WAIT/FWAIT): #NM with CR0.MP and CR0.TS, #MF with an unmasked x87
 * exception pending (FSW.ES). fclex is encoded as fwait; fnclex, so take both at once. */
static enum hostcompat_result emulate_fwait(struct decoder *d, struct hostcompat_cpu *cpu)
{
    if ((cpu->cr0 & X86_CR0_MP) && (cpu->cr0 & X86_CR0_TS))
        return HOSTCOMPAT_WOULD_FAULT;
    if (cpu->fsw & FSW_ES)
        return HOSTCOMPAT_WOULD_FAULT;
    if (d->pos + 2 <= d->len && d->pos + 2 <= MAX_INSN_LEN && d->bytes[d->pos] == 0xDB &&
        d->bytes[d->pos + 1] == 0xE2) {
        d->pos += 2;
        return emulate_fnclex(cpu);
    }
    cpu->insn = HOSTCOMPAT_INSN_FWAIT;
    return HOSTCOMPAT_EMULATED;
}

/* emms (SDM vol. 2, EMMS): #UD with CR0.EM, #NM with CR0.TS, #MF with FSW.ES. */
static enum hostcompat_result emulate_emms(struct hostcompat_cpu *cpu)
{
    if ((cpu->cr0 & (X86_CR0_EM | X86_CR0_TS)) || (cpu->fsw & FSW_ES))
        return HOSTCOMPAT_WOULD_FAULT;
    cpu->ftwx = 0; /* every x87/MMX register empty */
    cpu->fpu_changed = true;
    cpu->insn = HOSTCOMPAT_INSN_EMMS;
    return HOSTCOMPAT_EMULATED;
}

/* clac/stac (SDM vol. 2, CLAC and STAC). Hardware also wants CR4.SMAP; kiln does not insist:
 * RFLAGS.AC only matters to ring 0 through SMAP, so toggling it cannot change what the guest
 * may access, and the guest's CPUID view of SMAP comes from the host on these machines. */
static enum hostcompat_result emulate_ac(struct hostcompat_cpu *cpu, bool set)
{
    if (set)
        cpu->rflags |= X86_EFLAGS_AC;
    else
        cpu->rflags &= ~(uint64_t)X86_EFLAGS_AC;
    cpu->insn = set ? HOSTCOMPAT_INSN_STAC : HOSTCOMPAT_INSN_CLAC;
    return HOSTCOMPAT_EMULATED;
}

static enum hostcompat_result execute_0f(struct decoder *d, struct hostcompat_cpu *cpu)
{
    uint8_t op, next;
    if (!next_byte(d, &op))
        return HOSTCOMPAT_TRUNCATED;
    if (op == 0x77)
        return emulate_emms(cpu);
    if (op != 0x01 && op != 0xAE)
        return HOSTCOMPAT_UNKNOWN;
    if (!next_byte(d, &next))
        return HOSTCOMPAT_TRUNCATED;
    if (op == 0x01) {
        if (next == 0xCA || next == 0xCB)
            return emulate_ac(cpu, next == 0xCB);
        return HOSTCOMPAT_UNKNOWN;
    }
    unsigned reg = (next >> 3) & 7;
    if ((next >> 6) == 3 || (reg != 2 && reg != 3))
        return HOSTCOMPAT_UNKNOWN; /* fences, other 0F AE group members */
    return emulate_mxcsr(d, cpu, next);
}

static enum hostcompat_result execute(struct decoder *d, struct hostcompat_cpu *cpu, uint8_t op)
{
    uint8_t next;
    switch (op) {
    case 0xCC: /* int3; later bytes are whatever live patching left there: never look */
        cpu->insn = HOSTCOMPAT_INSN_INT3;
        return HOSTCOMPAT_INJECT_BP;
    case 0x9B:
        return emulate_fwait(d, cpu);
    case 0xDB:
        if (!next_byte(d, &next))
            return HOSTCOMPAT_TRUNCATED;
        return next == 0xE2 ? emulate_fnclex(cpu) : HOSTCOMPAT_UNKNOWN;
    case 0x0F:
        return execute_0f(d, cpu);
    default:
        return HOSTCOMPAT_UNKNOWN;
    }
}

enum hostcompat_result hostcompat_emulate(struct hostcompat_cpu *cpu, const uint8_t *insn,
                                          size_t len, const struct hostcompat_memory_ops *mem)
{
    if (cpu->cpl != 0)
        return HOSTCOMPAT_NOT_CPL0;
    if (cpu->code_bits != 32 && cpu->code_bits != 64)
        return HOSTCOMPAT_UNKNOWN; /* kiln enters the kernel in 32- or 64-bit mode */
    struct decoder d = {.bytes = insn, .len = len, .segment = -1, .mem = mem};
    uint8_t op;
    if (!decode_prefixes(&d, cpu->code_bits, &op))
        return d.pos >= MAX_INSN_LEN ? HOSTCOMPAT_UNKNOWN : HOSTCOMPAT_TRUNCATED;
    if (d.bad_prefix)
        return HOSTCOMPAT_UNKNOWN;

    /* Work on a copy: whatever fails half-way leaves the caller's state untouched. */
    struct hostcompat_cpu next = *cpu;
    next.fpu_changed = false;
    enum hostcompat_result r = execute(&d, &next, op);
    if (r != HOSTCOMPAT_EMULATED && r != HOSTCOMPAT_INJECT_BP)
        return r == HOSTCOMPAT_TRUNCATED && d.pos >= MAX_INSN_LEN ? HOSTCOMPAT_UNKNOWN : r;
    next.length = (unsigned)d.pos;
    next.rip = next_rip(cpu, d.pos);
    *cpu = next;
    return r;
}

const char *hostcompat_insn_name(enum hostcompat_insn insn)
{
    static const char *const names[HOSTCOMPAT_INSN_COUNT] = {
        "int3", "fwait", "fnclex", "emms", "clac", "stac", "ldmxcsr", "stmxcsr",
    };
    return (unsigned)insn < HOSTCOMPAT_INSN_COUNT ? names[insn] : "?";
}

const char *hostcompat_result_name(enum hostcompat_result result)
{
    switch (result) {
    case HOSTCOMPAT_EMULATED:
        return "emulated";
    case HOSTCOMPAT_INJECT_BP:
        return "int3: #BP to inject";
    case HOSTCOMPAT_UNKNOWN:
        return "not an instruction host-compat emulates";
    case HOSTCOMPAT_TRUNCATED:
        return "instruction bytes cut short";
    case HOSTCOMPAT_NOT_CPL0:
        return "not at CPL0";
    case HOSTCOMPAT_WOULD_FAULT:
        return "the CPU would raise an exception here";
    case HOSTCOMPAT_BAD_ADDRESS:
        return "memory operand not in guest RAM";
    }
    return "?";
}
