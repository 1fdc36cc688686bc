/* libFuzzer target for host-compat's instruction decoder and emulator: arbitrary vCPU state and
 * instruction bytes against a small fake MMU. Besides the sanitizers it checks the contract in
 * hostcompat.h: memory accesses stay inside one page, and a refusal changes nothing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/hostcompat/hostcompat.h"

#define FAKE_PAGES 4 /* guest RAM: four pages, one page past it is "outside RAM" */
#define PAGE       4096u

/* Linear page n (n < 8) maps to guest page map[n]; map[n] == 0xff means not mapped, and
 * guest page FAKE_PAGES is a page the MMU maps but RAM does not have. */
struct fake_mmu {
    uint8_t map[8];
    uint8_t ram[FAKE_PAGES * PAGE];
    unsigned writes;
};

static int fake_translate(void *opaque, uint64_t linear, bool write, uint64_t *gpa)
{
    struct fake_mmu *m = opaque;
    uint64_t page = linear / PAGE;
    if (page >= 8 || m->map[page] == 0xff)
        return -14; /* -EFAULT */
    *gpa = (uint64_t)(m->map[page] % (FAKE_PAGES + 1)) * PAGE + linear % PAGE;
    return 0;
}

/* The contract: every access lies inside one page. */
static int fake_access(struct fake_mmu *m, uint64_t gpa, size_t len)
{
    if (len == 0 || gpa / PAGE != (gpa + len - 1) / PAGE)
        abort();
    return gpa + len <= sizeof(m->ram) ? 0 : -14;
}

static int fake_read(void *opaque, uint64_t gpa, void *dst, size_t len)
{
    struct fake_mmu *m = opaque;
    int rc = fake_access(m, gpa, len);
    if (!rc)
        memcpy(dst, m->ram + gpa, len);
    return rc;
}

static int fake_write(void *opaque, uint64_t gpa, const void *src, size_t len)
{
    struct fake_mmu *m = opaque;
    int rc = fake_access(m, gpa, len);
    if (!rc) {
        memcpy(m->ram + gpa, src, len);
        m->writes++;
    }
    return rc;
}

/* Field by field: struct padding is not state. */
static bool same_state(const struct hostcompat_cpu *a, const struct hostcompat_cpu *b)
{
    return a->rip == b->rip && a->rflags == b->rflags && !memcmp(a->gpr, b->gpr, sizeof(a->gpr)) &&
           !memcmp(a->seg_base, b->seg_base, sizeof(a->seg_base)) && a->cr0 == b->cr0 &&
           a->cr4 == b->cr4 && a->mxcsr == b->mxcsr && a->fsw == b->fsw && a->ftwx == b->ftwx &&
           a->insn == b->insn && a->length == b->length && a->fpu_changed == b->fpu_changed;
}

/* Input: [0] code bits (64 or 32, odd bytes something else) and CPL (bit 1), [1..8] map,
 * [9] gpr index to place near a page end, then struct hostcompat_cpu's in-fields as raw bytes
 * (what is missing is zero), then the instruction bytes. */
/* Guest RAM holds a fixed pattern at the start of every run (so ldmxcsr loads vary with the
 * address); only a run that wrote has to restore it. */
static void fill_ram(struct fake_mmu *m)
{
    for (size_t i = 0; i < sizeof(m->ram); i++)
        m->ram[i] = (uint8_t)(i * 7 + i / 251);
    m->writes = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fake_mmu m;
    static bool filled;
    if (size < 10)
        return 0;
    if (!filled || m.writes)
        fill_ram(&m);
    filled = true;
    memcpy(m.map, data + 1, sizeof(m.map));
    struct hostcompat_cpu cpu = {0};
    size_t state = offsetof(struct hostcompat_cpu, insn);
    size_t take = size - 10 < state ? size - 10 : state;
    memcpy(&cpu, data + 10, take);
    cpu.code_bits = data[0] & 1 ? 16 + (data[0] >> 4) : (data[0] & 4 ? 32 : 64);
    cpu.cpl = (data[0] >> 1) & 1;
    /* Small addresses reach the fake pages, including their edges. */
    cpu.gpr[data[9] % 16] = (uint64_t)(data[9] >> 4) * 0x400 + 0x3fe;
    const uint8_t *insn = data + 10 + take;
    size_t insn_len = size - 10 - take;

    struct hostcompat_cpu before = cpu;
    struct hostcompat_memory_ops ops = {
        .translate = fake_translate, .read = fake_read, .write = fake_write, .opaque = &m};
    enum hostcompat_result r = hostcompat_emulate(&cpu, insn, insn_len, &ops);
    if (r == HOSTCOMPAT_EMULATED || r == HOSTCOMPAT_INJECT_BP) {
        if (cpu.length == 0 || cpu.length > 15 || cpu.length > insn_len)
            abort();
        if (cpu.insn >= HOSTCOMPAT_INSN_COUNT || m.writes > 2)
            abort();
    } else if (!same_state(&cpu, &before) || m.writes) {
        abort(); /* a refusal must leave vCPU state and guest memory as they were */
    }
    if (!hostcompat_result_name(r)[0])
        abort();
    return 0;
}
