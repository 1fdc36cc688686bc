/* The guest kit runtime's API for test guests: serial console, printf, command line, exit,
 * port I/O and the PVH start info. A guest defines guest_main(); the runtime does the rest. */
#ifndef KILN_GUEST_H
#define KILN_GUEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* PVH start info (Xen public ABI, arch-x86/hvm/start_info.h). Declared here, not taken from
 * include/kiln/boot.h, because that header pulls in VMM-side headers a freestanding guest
 * cannot use. */
#define HVM_START_MAGIC_VALUE 0x336ec578U

struct hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
};

/* Exit statuses the runtime itself uses; guests use 0 for pass and small numbers for fail. */
#define GUEST_EXIT_PASS     0
#define GUEST_EXIT_FAIL     1
#define GUEST_EXIT_BAD_BOOT 98 /* no valid PVH start info */
#define GUEST_EXIT_FAULT    99 /* CPU exception */

/* What the test guest does; its return value becomes the exit status. */
int guest_main(void);

/* The start info the VMM passed (magic already checked), and the whole command line (never
 * NULL: "" when the VMM gave none). */
const struct hvm_start_info *guest_start_info(void);
const char *cmdline_all(void);
/* Whether [start, end) lies inside one RAM entry of the memory map the VMM passed. */
int guest_range_is_ram(uint64_t start, uint64_t end);

/* Value of the first key=value word on the command line, up to (not including) the next
 * space; NULL when absent. The result is not NUL-terminated at the word's end: use
 * cmdline_value_len() or cmdline_get_u32(). A bare "key" word yields "". */
const char *cmdline_get(const char *key);
size_t cmdline_value_len(const char *value);
/* Decimal or 0x-hex value of key: 0 and *out set on success, -1 if absent, empty, malformed
 * or above 0xffffffff. */
int cmdline_get_u32(const char *key, uint32_t *out);

/* COM1 (16550 at 0x3f8), polled, 115200 8N1. putc sends bytes as they are: no "\n" to
 * "\r\n" translation, so what the host captures is exactly what the guest printed. */
void serial_init(void);
void serial_putc(char c);
int serial_getc(void);     /* blocks */
int serial_try_getc(void); /* -1 when nothing is waiting */
int puts(const char *s);   /* s, then "\n"; returns 0 */
void print(const char *s); /* s only */
/* %s %c %d %u %x %p %%, with l/z length, a width and the 0 and - flags (%08x, %-12s). */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);

/* Writes status to the exit port (0xf4, or exit_port= from the command line): kiln exits
 * with status, QEMU's isa-debug-exit with (status << 1) | 1. Halts if nothing listens. */
__attribute__((noreturn)) void guest_exit(uint32_t status);

/* Installs handler for vector (32..255) as a ring-0 interrupt gate; handler is typically an
 * __attribute__((interrupt)) function. Vectors 0..31 report the fault and exit. */
void idt_set_gate(unsigned vector, void (*handler)(void));

/* Freestanding gcc may emit calls to these for struct copies and initialisers. */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);

static inline void outb(uint16_t port, uint8_t value)
{
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t value)
{
    __asm__ volatile("outw %0, %1" : : "a"(value), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t value)
{
    __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

static inline uint16_t inw(uint16_t port)
{
    uint16_t value;
    __asm__ volatile("inw %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

static inline uint32_t inl(uint16_t port)
{
    uint32_t value;
    __asm__ volatile("inl %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

/* MMIO accessors: volatile so each access is exactly one exit-causing load or store. */
static inline uint32_t mmio_read32(uint64_t addr)
{
    return *(volatile uint32_t *)(uintptr_t)addr;
}

static inline void mmio_write32(uint64_t addr, uint32_t value)
{
    *(volatile uint32_t *)(uintptr_t)addr = value;
}

/* The word a cmdline_get() value points at is exactly `word` (values are not NUL-terminated
 * at the word's end, so a plain strcmp would see the rest of the command line). */
static inline int cmdline_value_is(const char *value, const char *word)
{
    size_t len = cmdline_value_len(value);
    return len == strlen(word) && strncmp(value, word, len) == 0;
}

/* Time stamp counter. Its rate is not calibrated (no timer is set up): timeouts built on it
 * assume a few GHz and are meant only as "give up eventually" bounds. */
static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

/* Spins until about `ticks` TSC ticks have passed. */
static inline void tsc_delay(uint64_t ticks)
{
    uint64_t start = rdtsc();
    while (rdtsc() - start < ticks)
        ;
}

static inline void cpuid(uint32_t leaf, uint32_t *eax, uint32_t *ebx, uint32_t *ecx, uint32_t *edx)
{
    __asm__ volatile("cpuid" : "=a"(*eax), "=b"(*ebx), "=c"(*ecx), "=d"(*edx) : "a"(leaf), "c"(0));
}

#endif
