/* vCPU pause, resume and stop on /dev/kvm: a real-mode guest loop counts in RAM and reads a
 * port; paused, nothing moves and the last port read is complete in AL; stop works paused too. */
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

#include "kiln/vm/kvm.h"
#include "kiln/vcpu/vcpu.h"

#define CODE_GPA    0x1000
#define COUNTER_GPA 0x2000
#define COUNT_PORT  0x80

/* 16-bit real mode at CODE_GPA:
 *   inc dword [COUNTER_GPA]   66 ff 06 00 20
 *   in al, COUNT_PORT         e4 80      (reads 1, 2, 3... as bytes)
 *   jmp CODE_GPA              eb f7 */
static const uint8_t guest_loop[] = {0x66, 0xff, 0x06, 0x00, 0x20, 0xe4, COUNT_PORT, 0xeb, 0xf7};

struct port_counter {
    uint64_t reads; /* atomically: counted on the vCPU thread */
};

static void count_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
    struct port_counter *c = opaque;
    uint64_t n = __atomic_add_fetch(&c->reads, 1, __ATOMIC_SEQ_CST);
    memset(data, 0, size);
    data[0] = (uint8_t)n;
}

static void count_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
}

static const struct bus_ops count_ops = {.read = count_read, .write = count_write};

struct stop_record {
    int requests;
};

static void record_stop(void *opaque, enum vm_stop_reason reason, int status, const char *message)
{
    struct stop_record *r = opaque;
    __atomic_add_fetch(&r->requests, 1, __ATOMIC_SEQ_CST);
    fprintf(stderr, "unexpected stop request: %s\n", message);
}

struct machine {
    struct kvm_host kvm;
    int vm_fd;
    struct guest_mem mem;
    struct log log;
    struct bus pio, mmio;
    struct port_counter port;
    struct stop_record stops;
    struct kvm_cpuid2 *cpuid;
    struct vcpu_env env;
    struct vcpu vcpu;
};

static uint32_t ram_count(const struct machine *m)
{
    uint32_t v;
    assert_int_equal(guest_mem_read(&m->mem, COUNTER_GPA, &v, sizeof(v)), 0);
    return v;
}

static uint64_t port_count(struct machine *m)
{
    return __atomic_load_n(&m->port.reads, __ATOMIC_SEQ_CST);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits up to 10 s for the guest's RAM counter to pass `above`. */
static bool wait_for_progress(const struct machine *m, uint32_t above)
{
    for (int i = 0; i < 1000; i++) {
        if (ram_count(m) > above)
            return true;
        sleep_ms(10);
    }
    return false;
}

static int setup(void **state)
{
    struct machine *m = calloc(1, sizeof(*m));
    struct error err = {.msg = ""};
    m->vm_fd = -1;
    if (kvm_host_open(&m->kvm, NULL, &err) < 0 ||
        (m->vm_fd = kvm_host_create_vm(&m->kvm, &err)) < 0) {
        fprintf(stderr, "SKIP: no /dev/kvm (%s)\n", err.msg);
        *state = m;
        return 0;
    }
    log_init(&m->log, LOG_WARN);
    assert_int_equal(guest_mem_init(&m->mem, 2 << 20, &err), 0);
    struct kvm_userspace_memory_region region = {
        .slot = 0,
        .guest_phys_addr = 0,
        .memory_size = m->mem.regions[0].size,
        .userspace_addr = (uint64_t)(uintptr_t)m->mem.regions[0].hva,
    };
    assert_int_equal(ioctl(m->vm_fd, KVM_SET_USER_MEMORY_REGION, &region), 0);
    assert_int_equal(ioctl(m->vm_fd, KVM_CREATE_IRQCHIP, 0), 0);
    assert_int_equal(guest_mem_write(&m->mem, CODE_GPA, guest_loop, sizeof(guest_loop)), 0);

    bus_init(&m->pio, "port I/O", &m->log);
    bus_init(&m->mmio, "MMIO", &m->log);
    struct bus_range counter = {
        .base = COUNT_PORT, .len = 1, .name = "counter", .ops = &count_ops, .opaque = &m->port};
    assert_int_equal(bus_register(&m->pio, &counter, &err), 0);
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

    /* Real mode at CODE_GPA: KVM's reset state with CS moved from the reset vector. */
    struct kvm_sregs sregs;
    assert_int_equal(ioctl(m->vcpu.fd, KVM_GET_SREGS, &sregs), 0);
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    assert_int_equal(ioctl(m->vcpu.fd, KVM_SET_SREGS, &sregs), 0);
    struct kvm_regs regs = {.rip = CODE_GPA, .rflags = 2};
    assert_int_equal(ioctl(m->vcpu.fd, KVM_SET_REGS, &regs), 0);
    assert_int_equal(vcpu_install_kick_handler(&err), 0);
    *state = m;
    return 0;
}

static int teardown(void **state)
{
    struct machine *m = *state;
    if (m->vm_fd >= 0) {
        vcpu_stop(&m->vcpu);
        vcpu_join(&m->vcpu);
        vcpu_destroy(&m->vcpu);
        free(m->cpuid);
        bus_destroy(&m->pio);
        bus_destroy(&m->mmio);
        guest_mem_destroy(&m->mem);
        close(m->vm_fd);
        kvm_host_close(&m->kvm);
    }
    free(m);
    return 0;
}

static struct machine *running_machine(void **state)
{
    struct machine *m = *state;
    if (m->vm_fd < 0)
        skip();
    struct error err = {.msg = ""};
    if (vcpu_start(&m->vcpu, &err) < 0)
        fail_msg("vcpu_start: %s", err.msg);
    assert_true(wait_for_progress(m, 0));
    return m;
}

static void test_pause_holds_the_guest_still(void **state)
{
    struct machine *m = running_machine(state);
    for (int round = 0; round < 20; round++) {
        vcpu_pause(&m->vcpu);
        assert_true(vcpu_is_paused(&m->vcpu));
        uint32_t ram = ram_count(m);
        uint64_t port = port_count(m);
        struct kvm_regs before, after;
        assert_int_equal(ioctl(m->vcpu.fd, KVM_GET_REGS, &before), 0);
        sleep_ms(round == 0 ? 200 : 5);
        assert_int_equal(ram_count(m), ram);
        assert_int_equal(port_count(m), port);
        assert_int_equal(ioctl(m->vcpu.fd, KVM_GET_REGS, &after), 0);
        assert_int_equal(after.rip, before.rip);
        /* A port read the vCPU was in is complete before it parks: AL holds the value the
         * last read returned, and RIP is past it. On the `in` itself, the read is to come. */
        if (after.rip == CODE_GPA + 5) {
            assert_int_equal(port + 1, ram);
        } else if (after.rip == CODE_GPA || after.rip == CODE_GPA + 7) {
            assert_int_equal(port, ram);
            assert_int_equal(after.rax & 0xff, port & 0xff);
        } else {
            fail_msg("paused at RIP 0x%llx, inside no instruction", (unsigned long long)after.rip);
        }
        vcpu_resume(&m->vcpu);
        assert_false(vcpu_is_paused(&m->vcpu));
        assert_true(wait_for_progress(m, ram));
    }
    assert_int_equal(m->stops.requests, 0);
}

static void test_stop_while_paused(void **state)
{
    struct machine *m = running_machine(state);
    vcpu_pause(&m->vcpu);
    vcpu_stop(&m->vcpu);
    vcpu_join(&m->vcpu); /* returns: the parked thread saw the stop */
    uint32_t ram = ram_count(m);
    vcpu_resume(&m->vcpu); /* a stopped vCPU does not come back */
    sleep_ms(50);
    assert_int_equal(ram_count(m), ram);
    vcpu_pause(&m->vcpu); /* and pausing it returns at once */
}

static void test_pause_twice_resume_once(void **state)
{
    struct machine *m = running_machine(state);
    vcpu_pause(&m->vcpu);
    vcpu_pause(&m->vcpu);
    uint32_t ram = ram_count(m);
    vcpu_resume(&m->vcpu);
    assert_true(wait_for_progress(m, ram));
    vcpu_resume(&m->vcpu); /* resuming a running vCPU changes nothing */
    assert_true(wait_for_progress(m, ram_count(m)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pause_holds_the_guest_still, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_while_paused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_twice_resume_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
