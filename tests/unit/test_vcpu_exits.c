/* vCPU exit counters on /dev/kvm: a real-mode guest does N port writes and M MMIO writes, then
 * halts; the counters say exactly that, read while the vCPU runs. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/vcpu/vcpu.h"
#include "kiln/vm/kvm.h"

#define CODE_GPA   0x1000
#define DATA_BASE  0x300000 /* DS base: past the 2 MiB of RAM, so every data write is MMIO */
#define PORT       0x80
#define PORT_LOOPS 37
#define MMIO_LOOPS 11

/* 16-bit real mode at CODE_GPA:
 *   mov cx, PORT_LOOPS     b9 25 00
 *   out PORT, al           e6 80         (PORT_LOOPS port writes)
 *   loop -4                e2 fc
 *   mov cx, MMIO_LOOPS     b9 0b 00
 *   mov [0], al            a2 00 00      (MMIO_LOOPS MMIO writes at DATA_BASE)
 *   loop -5                e2 fb
 * then it halts for good. */
static const uint8_t guest_writes[] = {0xb9,       PORT_LOOPS, 0x00, 0xe6, PORT, 0xe2, 0xfc, 0xb9,
                                       MMIO_LOOPS, 0x00,       0xa2, 0x00, 0x00, 0xe2, 0xfb};
/*   cli; hlt; jmp back to the hlt   fa f4 eb fd */
static const uint8_t end_halted[] = {0xfa, 0xf4, 0xeb, 0xfd};

struct port_writes {
    uint64_t count; /* atomically: counted on the vCPU thread */
};

static void port_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
    memset(data, 0, size);
}

static void port_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
    struct port_writes *p = opaque;
    __atomic_add_fetch(&p->count, 1, __ATOMIC_SEQ_CST);
}

static const struct bus_ops port_ops = {.read = port_read, .write = port_write};

struct stop_record {
    int requests;
};

static void record_stop(void *opaque, enum vm_stop_reason reason, int status, const char *message)
{
    struct stop_record *r = opaque;
    __atomic_add_fetch(&r->requests, 1, __ATOMIC_SEQ_CST);
}

struct machine {
    struct kvm_host kvm;
    int vm_fd;
    struct guest_mem mem;
    struct log log;
    struct bus pio, mmio;
    struct port_writes port;
    struct stop_record stops;
    struct kvm_cpuid2 *cpuid;
    struct vcpu_env env;
    struct vcpu vcpu;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t exits_of(const struct machine *m, enum vcpu_exit_counter c)
{
    uint64_t exits[VCPU_EXITS_COUNT];
    vcpu_read_exit_counters(&m->vcpu, exits);
    return exits[c];
}

/* A one-vCPU VM running guest_writes then end_halted; NULL (test skipped) without /dev/kvm. */
static struct machine *start_machine(void)
{
    struct machine *m = calloc(1, sizeof(*m));
    struct error err = {.msg = ""};
    m->vm_fd = -1;
    if (kvm_host_open(&m->kvm, NULL, &err) < 0 ||
        (m->vm_fd = kvm_host_create_vm(&m->kvm, &err)) < 0) {
        fprintf(stderr, "SKIP: no /dev/kvm (%s)\n", err.msg);
        free(m);
        return NULL;
    }
    log_init(&m->log, LOG_ERROR);
    assert_int_equal(guest_mem_init(&m->mem, 2 << 20, &err), 0);
    struct kvm_userspace_memory_region region = {
        .slot = 0,
        .guest_phys_addr = 0,
        .memory_size = m->mem.regions[0].size,
        .userspace_addr = (uint64_t)(uintptr_t)m->mem.regions[0].hva,
    };
    assert_int_equal(ioctl(m->vm_fd, KVM_SET_USER_MEMORY_REGION, &region), 0);
    assert_int_equal(ioctl(m->vm_fd, KVM_CREATE_IRQCHIP, 0), 0);
    assert_int_equal(guest_mem_write(&m->mem, CODE_GPA, guest_writes, sizeof(guest_writes)), 0);
    assert_int_equal(
        guest_mem_write(&m->mem, CODE_GPA + sizeof(guest_writes), end_halted, sizeof(end_halted)),
        0);

    bus_init(&m->pio, "port I/O", &m->log);
    bus_init(&m->mmio, "MMIO", &m->log);
    struct bus_range port = {
        .base = PORT, .len = 1, .name = "port", .ops = &port_ops, .opaque = &m->port};
    assert_int_equal(bus_register(&m->pio, &port, &err), 0);
    assert_int_equal(cpuid_get_supported(m->kvm.fd, &m->cpuid, &err), 0);
    m->env = (struct vcpu_env){
        .vm_fd = m->vm_fd,
        .run_size = (size_t)m->kvm.vcpu_mmap_size,
        .ncpus = 1,
        .pio_bus = &m->pio,
        .mmio_bus = &m->mmio,
        .mem = &m->mem,
        .log = &m->log,
        .cpuid = m->cpuid,
        .stop = {.request = record_stop, .opaque = &m->stops},
    };
    if (vcpu_create(&m->vcpu, &m->env, 0, &err) < 0)
        fail_msg("vcpu_create: %s", err.msg);

    /* Real mode at CODE_GPA (KVM's reset state with CS moved from the reset vector), data
     * outside RAM. */
    struct kvm_sregs sregs;
    assert_int_equal(ioctl(m->vcpu.fd, KVM_GET_SREGS, &sregs), 0);
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    sregs.ds.base = DATA_BASE;
    assert_int_equal(ioctl(m->vcpu.fd, KVM_SET_SREGS, &sregs), 0);
    struct kvm_regs regs = {.rip = CODE_GPA, .rflags = 2};
    assert_int_equal(ioctl(m->vcpu.fd, KVM_SET_REGS, &regs), 0);
    assert_int_equal(vcpu_install_kick_handler(&err), 0);
    if (vcpu_start(&m->vcpu, &err) < 0)
        fail_msg("vcpu_start: %s", err.msg);
    return m;
}

static void stop_machine(struct machine *m)
{
    vcpu_stop(&m->vcpu);
    vcpu_join(&m->vcpu);
    vcpu_destroy(&m->vcpu);
    free(m->cpuid);
    bus_destroy(&m->pio);
    bus_destroy(&m->mmio);
    guest_mem_destroy(&m->mem);
    close(m->vm_fd);
    kvm_host_close(&m->kvm);
    free(m);
}

/* Waits up to 10 s for an exit counter to reach `want`. */
static bool wait_for_exits(const struct machine *m, enum vcpu_exit_counter c, uint64_t want)
{
    for (int i = 0; i < 1000 && exits_of(m, c) < want; i++)
        sleep_ms(10);
    return exits_of(m, c) >= want;
}

static void test_exits_counted_by_reason(void **state)
{
    struct machine *m = start_machine();
    if (!m)
        skip();
    assert_true(wait_for_exits(m, VCPU_EXITS_MMIO, MMIO_LOOPS));
    sleep_ms(50); /* halted for good: nothing more may be counted */
    assert_int_equal(exits_of(m, VCPU_EXITS_IO), PORT_LOOPS);
    assert_int_equal(__atomic_load_n(&m->port.count, __ATOMIC_SEQ_CST), PORT_LOOPS);
    assert_int_equal(exits_of(m, VCPU_EXITS_MMIO), MMIO_LOOPS);
    /* kiln always has the in-kernel LAPIC, so KVM waits out the HLT itself. */
    assert_int_equal(exits_of(m, VCPU_EXITS_HLT), 0);
    assert_int_equal(exits_of(m, VCPU_EXITS_SHUTDOWN), 0);
    assert_int_equal(exits_of(m, VCPU_EXITS_INTERNAL_ERROR), 0);
    assert_int_equal(__atomic_load_n(&m->stops.requests, __ATOMIC_SEQ_CST), 0);
    /* Stopping kicks the halted vCPU out of KVM_RUN: one intr at least. */
    vcpu_stop(&m->vcpu);
    vcpu_join(&m->vcpu);
    assert_true(exits_of(m, VCPU_EXITS_INTR) >= 1);
    assert_int_equal(exits_of(m, VCPU_EXITS_IO), PORT_LOOPS);
    stop_machine(m);
}

static void test_exit_counter_names(void **state)
{
    const char *names[VCPU_EXITS_COUNT] = {
        "io",   "mmio",           "hlt",      "shutdown", "system_event",
        "intr", "internal_error", "emulated", "other"};
    for (unsigned c = 0; c < VCPU_EXITS_COUNT; c++)
        assert_string_equal(vcpu_exit_counter_name(c), names[c]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_counter_names),
        cmocka_unit_test(test_exits_counted_by_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
