/* struct vm_config: the one validated description of a VM, filled by the CLI (and later YAML).
 * Strings are owned (heap copies) so the config outlives argv or a parsed file. */
#ifndef KILN_CONFIG_H
#define KILN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/error.h"
#include "kiln/log.h"

enum console_kind { CONSOLE_STDIO, CONSOLE_FILE, CONSOLE_NONE };
enum reset_action { RESET_EXIT, RESET_RESTART };                             /* --on-reset */
enum host_compat_mode { HOST_COMPAT_AUTO, HOST_COMPAT_ON, HOST_COMPAT_OFF }; /* --host-compat */
enum device_discovery { DISCOVERY_ACPI, DISCOVERY_CMDLINE }; /* --device-discovery */
/* Which device carries the console: the 16550 (ttyS0) or virtio-console (hvc0). */
enum console_device_kind { CONSOLE_ON_SERIAL, CONSOLE_ON_VIRTIO };

/* --disk cache=: what a guest FLUSH and the write cache mean for the host file.
 * writeback: writes land in the host page cache, FLUSH runs fdatasync (the guest sees a
 *            volatile write cache, VIRTIO_BLK_F_CONFIG_WCE).
 * writethrough: every write is followed by fdatasync before it completes.
 * unsafe: FLUSH completes at once; data reaches the disk whenever the host writes it back. */
enum disk_cache { DISK_CACHE_WRITEBACK, DISK_CACHE_WRITETHROUGH, DISK_CACHE_UNSAFE };

/* --net tap=NAME[,mac=MAC]: a virtio-net device on a TAP interface. */
struct net_config {
    char *tap;      /* interface name, at most IFNAMSIZ - 1 bytes */
    uint8_t mac[6]; /* the guest's MAC */
    bool mac_given; /* else derived from the TAP name and the device's index */
};

struct disk_config {
    char *path;
    bool readonly;
    char *serial; /* NULL: none; at most VIRTIO_BLK_ID_BYTES (20) bytes */
    enum disk_cache cache;
    unsigned queue_size; /* QueueNumMax offered: a power of 2 from 2 to 256 (default 256) */
};

#define CONFIG_DEFAULT_MEMORY         (256ULL << 20)
#define CONFIG_MIN_MEMORY             (4ULL << 20)
#define CONFIG_MAX_MEMORY             (1ULL << 40)
#define CONFIG_DEFAULT_CPUS           1
#define CONFIG_MAX_CPUS               254     /* 8-bit xAPIC IDs; 0xff is broadcast */
#define CONFIG_MEMORY_ALIGN           4096ULL /* guest RAM is mapped in whole pages */
#define CONFIG_MAX_CMDLINE            65535   /* bytes without the NUL: LAYOUT_CMDLINE_MAX - 1 */
#define CONFIG_DEFAULT_SHUTDOWN_GRACE 5       /* seconds between the power button and a hard stop */
#define CONFIG_MAX_SHUTDOWN_GRACE     3600
#define CONFIG_MAX_VIRTIO_DEVICES     8   /* PLATFORM_VIRTIO_MMIO_MAX slots: disks + rng + ... */
#define CONFIG_MAX_DISK_SERIAL        20  /* VIRTIO_BLK_ID_BYTES */
#define CONFIG_DEFAULT_QUEUE_SIZE     256 /* VIRTQ_MAX_SIZE */
#define CONFIG_MIN_QUEUE_SIZE         2

/* What --kernel wants, for the messages of every parser that can find it missing. */
#define CONFIG_KERNEL_EXPECTED "the path of a kernel image: bzImage, ELF vmlinux or PVH ELF"

struct vm_config {
    char *kernel_path;
    char *initrd_path; /* NULL: no initrd */
    char *cmdline;     /* never NULL after config_init: "" by default */
    unsigned cpus;
    uint64_t memory_bytes;
    enum console_kind console;
    char *console_path; /* for CONSOLE_FILE */
    enum console_device_kind console_device; /* --console virtio[:SINK] */
    enum log_level log_level;
    enum reset_action on_reset;
    unsigned shutdown_grace_seconds; /* 0: SIGTERM/SIGINT stop at once */
    enum host_compat_mode host_compat;
    enum device_discovery device_discovery;
    struct disk_config *disks; /* in --disk order: slot order, /dev/vda first */
    unsigned ndisks;
    struct net_config *nets; /* in --net order, after the disks in slot order */
    unsigned nnets;
    bool rng; /* --rng: a virtio-rng device backed by getrandom() */
};

void config_init(struct vm_config *cfg);
void config_free(struct vm_config *cfg);

/* Parses SIZE: a decimal number with an optional K, M or G suffix (powers of 1024), e.g.
 * "512M"; the suffix may be lowercase and may be followed by "B" or "iB" ("512MiB").
 * Returns 0 or -EINVAL (bad syntax) / -ERANGE (overflows 64 bits). */
int config_parse_size(const char *text, uint64_t *bytes);

/* Checks the whole config: required fields, ranges, files that must exist. */
int config_validate(const struct vm_config *cfg, struct error *err);

/* Range checks shared by config_validate and the parsers that fill a config, so a value gets
 * the same message whichever way it arrived. text is the value as the user wrote it. */
int config_check_cpus(const char *text, unsigned long cpus, struct error *err);
int config_check_memory(const char *text, uint64_t bytes, struct error *err);
int config_check_cmdline(const char *cmdline, struct error *err);

/* Parses one --disk value, DISK_SPEC below, into *disk (owned strings; free with
 * config_free_disk). Returns 0 or -EINVAL with a message naming the bad part. */
#define CONFIG_DISK_SPEC                                                                           \
    "PATH[,readonly][,serial=ID][,cache=writeback|writethrough|unsafe][,queue-size=N]"
int config_parse_disk(const char *spec, struct disk_config *disk, struct error *err);
void config_free_disk(struct disk_config *disk);
/* Appends *disk to cfg (which takes over its strings). */
int config_add_disk(struct vm_config *cfg, const struct disk_config *disk, struct error *err);
/* Checks across disks: at most CONFIG_MAX_VIRTIO_DEVICES devices, no image given twice. */
int config_check_disks(const struct vm_config *cfg, struct error *err);
unsigned config_virtio_device_count(const struct vm_config *cfg);

/* Parses one --net value, CONFIG_NET_SPEC, into *net (free with config_free_net). */
#define CONFIG_NET_SPEC "tap=NAME[,mac=MAC]"
int config_parse_net(const char *spec, struct net_config *net, struct error *err);
void config_free_net(struct net_config *net);
int config_add_net(struct vm_config *cfg, const struct net_config *net, struct error *err);
/* The MAC a --net without mac= gets: locally administered, unicast, and the same for the same
 * TAP name and device index on every boot. */
void config_default_mac(const char *tap, unsigned index, uint8_t mac[6]);

/* Formats a byte count in the largest unit that divides it exactly ("4M", "1024G", "4097")
 * into buf, for messages that state a range. Returns buf. */
const char *config_size_text(uint64_t bytes, char *buf, size_t size);

/* Copies user text into buf for an error message: control characters become \n, \t or \xHH
 * so the message stays one line, and text that does not fit is cut short with "...".
 * Returns buf. */
const char *config_quote(const char *text, char *buf, size_t size);
#define CONFIG_QUOTE_SIZE 160 /* a buffer size that keeps the rest of a message readable */

#endif
