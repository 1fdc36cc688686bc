/* smp.elf: brings up every CPU the MADT lists (INIT/SIPI through a real-mode trampoline) and
 * has each report its APIC ID; exits 0 only if all of them checked in with matching IDs. */
#include "runtime/acpi.h"
#include "runtime/apic.h"
#include "runtime/guest.h"

/* 2 KiB is several times what ap_main and printf use (-fstack-usage), and keeps 256 stacks
 * within the half of the kit's 1 MiB image budget that .bss can spare. */
#define AP_STACK_SIZE    2048
#define SPURIOUS_VECTOR  0xff
#define NO_APIC_ID       0xff           /* the xAPIC broadcast ID: never a CPU's own */
#define INIT_SIPI_DELAY  200000ULL      /* TSC ticks (~0.1 ms): KVM needs none, hardware 10 ms */
#define SIPI_RETRY_AFTER 3000000000ULL  /* ~1 s: then a second SIPI to CPUs not yet up */
#define CHECK_IN_TIMEOUT 20000000000ULL /* ~7 s at 3 GHz: then report who is missing */

static struct acpi_madt_info madt;
static uint8_t ap_stacks[ACPI_MAX_CPUS][AP_STACK_SIZE] __attribute__((aligned(16)));
static volatile uint32_t print_lock;
static volatile uint32_t cpus_up;
static volatile uint8_t checked_in[256];
static volatile uint32_t bad_reports; /* APs whose two APIC IDs disagree, or unlisted ones */

/* xchg is implicitly locked and, unlike cmpxchg16b, KVM's emulator has it. */
static void lock_print(void)
{
    while (__atomic_exchange_n(&print_lock, 1, __ATOMIC_ACQUIRE))
        while (print_lock)
            ;
}

static void unlock_print(void)
{
    __atomic_store_n(&print_lock, 0, __ATOMIC_RELEASE);
}

static int listed_in_madt(unsigned apic_id)
{
    for (unsigned i = 0; i < madt.ncpus; i++) {
        if (madt.enabled[i] && madt.apic_id[i] == apic_id)
            return 1;
    }
    return 0;
}

/* Every CPU, the BSP included, reports through here exactly once. */
static void report_up(void)
{
    unsigned id = lapic_id();
    unsigned cpuid_id = cpuid_apic_id();
    int ok = id == cpuid_id && listed_in_madt(id);
    lock_print();
    if (id != cpuid_id)
        printf("smp: cpu %u up, but CPUID leaf 1 says APIC ID %u\n", id, cpuid_id);
    else if (!listed_in_madt(id))
        printf("smp: cpu %u up, but the MADT does not list it\n", id);
    else
        printf("smp: cpu %u up\n", id);
    unlock_print();
    if (!ok)
        __atomic_fetch_add(&bad_reports, 1, __ATOMIC_RELAXED);
    checked_in[id & 0xff] = 1;
    __atomic_fetch_add(&cpus_up, 1, __ATOMIC_RELEASE);
}

/* Each AP arrives here in long mode on its own stack; returning parks it (cli; hlt). */
static void ap_main(void)
{
    report_up();
}

static unsigned list_cpus(void)
{
    unsigned enabled = 0;
    print("smp: MADT local APICs:");
    for (unsigned i = 0; i < madt.ncpus; i++) {
        printf(" %u%s", madt.apic_id[i], madt.enabled[i] ? "" : " (disabled)");
        enabled += madt.enabled[i];
    }
    printf(" (%u enabled)\n", enabled);
    return enabled;
}

/* Sends INIT to every AP, then one SIPI each: under KVM neither needs the 10 ms / 200 us
 * waits real hardware does, so a short pause between the two rounds is all there is. */
static int start_aps(unsigned bsp_id, int retry)
{
    int failed = 0;
    for (int round = retry ? 1 : 0; round < 2; round++) {
        for (unsigned i = 0; i < madt.ncpus; i++) {
            unsigned id = madt.apic_id[i];
            if (!madt.enabled[i] || id == bsp_id || checked_in[id])
                continue;
            int r = round == 0 ? lapic_send_init(id) : lapic_send_startup(id);
            if (r < 0) {
                lock_print();
                printf("smp: the %s IPI to cpu %u stayed pending\n", round ? "SIPI" : "INIT", id);
                unlock_print();
                failed = 1;
            }
        }
        if (round == 0)
            tsc_delay(INIT_SIPI_DELAY);
    }
    return failed ? -1 : 0;
}

static void wait_for_aps(unsigned expected, unsigned bsp_id)
{
    uint64_t start = rdtsc();
    int retried = 0;
    while (__atomic_load_n(&cpus_up, __ATOMIC_ACQUIRE) < expected) {
        uint64_t waited = rdtsc() - start;
        if (waited > CHECK_IN_TIMEOUT)
            return;
        /* A second SIPI, as the MP start-up sequence allows; one to an AP that already left
         * wait-for-SIPI is ignored, so a slow AP is not restarted. */
        if (!retried && waited > SIPI_RETRY_AFTER) {
            retried = 1;
            start_aps(bsp_id, 1);
        }
    }
}

int guest_main(void)
{
    if (acpi_read_madt(&madt) < 0) {
        puts("smp: cannot read the MADT");
        return GUEST_EXIT_FAIL;
    }
    unsigned expected = list_cpus();
    unsigned bsp_id = lapic_id();
    if (!listed_in_madt(bsp_id)) {
        printf("smp: the boot cpu's APIC ID %u is not an enabled MADT entry\n", bsp_id);
        return GUEST_EXIT_FAIL;
    }
    for (unsigned i = 0; i < madt.ncpus; i++) {
        if (madt.enabled[i] && madt.apic_id[i] == NO_APIC_ID) {
            puts("smp: the MADT lists APIC ID 255, which xAPIC IPIs cannot address");
            return GUEST_EXIT_FAIL;
        }
    }

    lapic_enable(SPURIOUS_VECTOR);
    ap_boot_prepare(ap_main, ap_stacks, AP_STACK_SIZE, ACPI_MAX_CPUS);
    report_up();
    int ipi_failed = start_aps(bsp_id, 0) < 0;
    wait_for_aps(expected, bsp_id);

    lock_print(); /* a late AP may still be printing */
    unsigned up = __atomic_load_n(&cpus_up, __ATOMIC_ACQUIRE);
    int ok = up == expected && bad_reports == 0 && !ipi_failed;
    if (ok) {
        printf("smp: all %u cpus up\n", up);
    } else {
        for (unsigned i = 0; i < madt.ncpus; i++) {
            if (madt.enabled[i] && !checked_in[madt.apic_id[i]])
                printf("smp: cpu %u did not come up\n", madt.apic_id[i]);
        }
        printf("smp: %u of %u cpus up, %u bad report(s)\n", up, expected, bad_reports);
    }
    unlock_print();
    return ok ? GUEST_EXIT_PASS : GUEST_EXIT_FAIL;
}
