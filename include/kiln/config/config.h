/* struct vm_config: the one validated description of a VM, filled by the CLI flags and the YAML
 * loader through the same setters, and checked by one validation pass. Strings are owned (heap
 * copies) so the config outlives argv or a parsed file. */
#ifndef KILN_CONFIG_H
#define KILN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/util/error.h"
#include "kiln/util/log.h"
#include "kiln/util/token_bucket.h"
#include "kiln/sandbox/sandbox.h"

/* Where a console's bytes go: stdin/stdout, a file (output only), nowhere, a Unix socket kiln
 * listens on (one client at a time), or a new pseudo-terminal whose path kiln prints. */
enum console_kind { CONSOLE_STDIO, CONSOLE_FILE, CONSOLE_NONE, CONSOLE_SOCKET, CONSOLE_PTY };
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
    char *tap;                         /* interface name, at most IFNAMSIZ - 1 bytes */
    uint8_t mac[6];                    /* the guest's MAC */
    bool mac_given;                    /* else derived from the TAP name and the device's index */
    struct rate_limit_config rx_limit; /* rx-bw=, rx-pps=: host to guest (size 0: none) */
    struct rate_limit_config tx_limit; /* tx-bw=, tx-pps=: guest to host */
};

struct disk_config {
    char *path;
    bool readonly;
    char *serial; /* NULL: none; at most VIRTIO_BLK_ID_BYTES (20) bytes */
    enum disk_cache cache;
    unsigned queue_size; /* QueueNumMax offered: a power of 2 from 2 to 256 (default 256) */
    struct rate_limit_config limit; /* bw=, iops= (size 0: no limit) */
    /* Not a setting: kiln receive opens the image unlocked while the source VM still holds it,
     * and locks it at the switch-over (disk_image_lock). */
    bool lock_later;
};

/* --memory SIZE,backing=: how guest RAM is made (docs/placement.md). */
enum memory_backing { MEMORY_BACKING_MEMFD, MEMORY_BACKING_ANON, MEMORY_BACKING_HUGETLB };
/* --balloon SIZE[,deflate-on-oom=on][,stats=SECONDS][,free-page-reporting=on]: a
 * virtio-balloon device (docs/balloon.md). */
struct balloon_config {
    bool enabled;
    uint64_t target_bytes;    /* the balloon's first size: a whole number of MiB <= the RAM */
    bool deflate_on_oom;      /* VIRTIO_BALLOON_F_DEFLATE_ON_OOM offered */
    unsigned stats_seconds;   /* 0: no statistics queue; else how often the guest reports */
    bool free_page_reporting; /* VIRTIO_BALLOON_F_REPORTING offered */
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
#define CONFIG_MAX_NAME               64
#define CONFIG_HUGE_PAGE              (2ULL << 20) /* backing=hugetlb's page size */
#define CONFIG_MAX_HOST_CPU           1023         /* CPU_SETSIZE - 1: the last CPU pin= can name */
#define CONFIG_MAX_PIN_CPUS           1024         /* entries of one pin= list */
#define CONFIG_MAX_CPU_QUOTA          100000       /* --cpu-quota: percent of one CPU (1000 CPUs) */
#define CONFIG_MAX_CPU_WEIGHT         10000        /* cgroup v2 cpu.weight's range is 1 to this */
#define CONFIG_MIN_NICE               -20
#define CONFIG_MAX_NICE               19
#define CONFIG_MAX_BALLOON_STATS      3600 /* seconds between two balloon statistics */

/* A constant's digits in a string literal: "expected 1 to " CONFIG_STRINGIFY(CONFIG_MAX_CPUS), so
 * the texts that state a range follow the constant. */
#define CONFIG_STRINGIFY_(x) #x
#define CONFIG_STRINGIFY(x)  CONFIG_STRINGIFY_(x)

/* What --kernel wants, for the messages of every parser that can find it missing. */
#define CONFIG_KERNEL_EXPECTED "the path of a kernel image: bzImage, ELF vmlinux or PVH ELF"

struct vm_config {
    char *kernel_path;
    char *initrd_path; /* NULL: no initrd */
    char *cmdline;     /* never NULL after config_init: "" by default */
    unsigned cpus;
    unsigned *cpu_pin; /* --cpus N,pin=LIST: host CPUs in list order (vCPU i on the i-th,
                        * round-robin); NULL: not pinned */
    unsigned ncpu_pin;
    unsigned cpu_quota;  /* --cpu-quota: percent of one host CPU (cgroup cpu.max); 0: none */
    unsigned cpu_weight; /* --cpu-weight: cgroup cpu.weight, 1 to 10000; 0: none */
    int nice;            /* --nice: the process's nice value, if nice_given */
    bool nice_given;
    uint64_t memory_bytes;
    enum memory_backing memory_backing; /* --memory SIZE,backing= (default memfd) */
    bool memory_shared;                 /* ,shared: backing=anon mapped MAP_SHARED */
    bool memory_prealloc;               /* ,prealloc: every page allocated at start */
    bool memory_merge;                  /* ,merge=on: KSM (backing=anon only) */
    bool memory_thp;                    /* ,thp=on (default): transparent huge pages advised */
    enum console_kind console;
    char *console_path;                      /* for CONSOLE_FILE and CONSOLE_SOCKET */
    enum console_device_kind console_device; /* --console virtio[:SINK] */
    bool vconsole;                           /* --vconsole SINK: hvc0 beside ttyS0 */
    enum console_kind vconsole_kind;
    char *vconsole_path;
    enum log_level log_level;
    enum reset_action on_reset;
    unsigned shutdown_grace_seconds; /* 0: SIGTERM/SIGINT stop at once */
    enum host_compat_mode host_compat;
    enum sandbox_mode seccomp; /* --seccomp: each thread's system call filter */
    enum device_discovery device_discovery;
    struct disk_config *disks; /* in --disk order: slot order, /dev/vda first */
    unsigned ndisks;
    struct net_config *nets; /* in --net order, after the disks in slot order */
    unsigned nnets;
    bool rng;                           /* --rng: a virtio-rng device backed by getrandom() */
    struct rate_limit_config rng_limit; /* --rng-limit: its rate limit (size 0: none) */
    struct balloon_config balloon;      /* --balloon */
    bool vmgenid;       /* --vmgenid: the ACPI VM generation ID device (default on) */
    char *name;         /* --name, YAML name: NULL: none */
    char *jail_dir;     /* --jail DIR: run the VM jailed (docs/security.md); NULL: not jailed */
    int64_t jail_uid;   /* --uid: the user the jailed VM runs as; -1: not given */
    int64_t jail_gid;   /* --gid: its group; -1: not given */
    char *api_socket;   /* --api-socket: the control API's socket, "none", or NULL: the default
                         * in the run folder (docs/api.md) */
    char *cpu_template; /* --cpu-template: "host", "minimal" or a template file's path; NULL:
                         * host (docs/cpu-templates.md) */
};

void config_init(struct vm_config *cfg);
void config_free(struct vm_config *cfg);

/* Parses SIZE: a decimal number with an optional K, M or G suffix (powers of 1024), e.g.
 * "512M"; the suffix may be lowercase and may be followed by "B" or "iB" ("512MiB").
 * Returns 0 or -EINVAL (bad syntax) / -ERANGE (overflows 64 bits). */
int config_parse_size(const char *text, uint64_t *bytes);

/* Checks the whole config (config_check_all with the flag names and the files): returns 0, or
 * the first problem's negative errno with its message in err. */
int config_validate(const struct vm_config *cfg, struct error *err);

/* Range checks shared by the validation pass and the setters below, so a value gets the same
 * message whichever way it arrived. label names the setting as the user wrote it ("--cpus", or
 * "vm.yaml:3:7: cpus"); text is the value as the user wrote it. */
int config_check_cpus(const char *label, const char *text, unsigned long cpus, struct error *err);
int config_check_memory(const char *label, const char *text, uint64_t bytes, struct error *err);
int config_check_cmdline(const char *label, const char *cmdline, struct error *err);

/* Setters shared by the CLI flags and the YAML keys: each parses one value as the user wrote it
 * and stores it in cfg, or returns -EINVAL with "LABEL: 'VALUE' is not ... (expected ...)".
 * The YAML loader resolves relative paths before calling them. */
typedef int (*config_setter)(struct vm_config *cfg, const char *label, const char *text,
                             struct error *err);
int config_set_name(struct vm_config *cfg, const char *label, const char *text, struct error *err);
int config_set_kernel(struct vm_config *cfg, const char *label, const char *text,
                      struct error *err);
int config_set_initrd(struct vm_config *cfg, const char *label, const char *text,
                      struct error *err);
int config_set_cmdline(struct vm_config *cfg, const char *label, const char *text,
                       struct error *err);
int config_set_cpus(struct vm_config *cfg, const char *label, const char *text, struct error *err);
int config_set_memory(struct vm_config *cfg, const char *label, const char *text,
                      struct error *err);
/* The placement settings (config_placement.c, docs/placement.md): --cpu-quota PERCENT (1 to
 * CONFIG_MAX_CPU_QUOTA, optionally with '%'), --cpu-weight 1-10000, --nice -20 to 19. */
#define CONFIG_MEMORY_SPEC                                                                         \
    "SIZE[,backing=memfd|anon|hugetlb][,prealloc][,shared][,merge=on|off][,thp=on|off]"
#define CONFIG_CPUS_SPEC "N[,pin=LIST]"
#define CONFIG_CPU_QUOTA_EXPECTED                                                                  \
    "a percentage of one host CPU from 1 to " CONFIG_STRINGIFY(CONFIG_MAX_CPU_QUOTA) ", e.g. 150"
#define CONFIG_CPU_WEIGHT_EXPECTED                                                                 \
    "a cgroup cpu.weight from 1 to " CONFIG_STRINGIFY(CONFIG_MAX_CPU_WEIGHT)
#define CONFIG_NICE_EXPECTED "a nice value from -20 to 19"
int config_set_cpu_quota(struct vm_config *cfg, const char *label, const char *text,
                         struct error *err);
int config_set_cpu_weight(struct vm_config *cfg, const char *label, const char *text,
                          struct error *err);
int config_set_nice(struct vm_config *cfg, const char *label, const char *text, struct error *err);
/* The values as their setters take them, in *text (free it); NULL for the ones not given. */
int config_cpus_text(const struct vm_config *cfg, char **text);
int config_memory_text(const struct vm_config *cfg, char **text);
int config_cpu_quota_text(const struct vm_config *cfg, char **text);
int config_cpu_weight_text(const struct vm_config *cfg, char **text);
int config_nice_text(const struct vm_config *cfg, char **text);
/* Parses a CPU list ("0-3", "0,2,4-5") into cpus (at most max entries, in the list's order,
 * ranges expanded): the count, or -EINVAL with what is wrong in err (no label). */
int config_parse_cpu_list(const char *text, unsigned *cpus, unsigned max, struct error *err);
/* [virtio:]SINK, or virtio alone; SINK is CONFIG_CONSOLE_SINKS. */
#define CONFIG_CONSOLE_SINKS "stdio, file:PATH, socket:PATH, pty or none"
int config_set_console(struct vm_config *cfg, const char *label, const char *text,
                       struct error *err);
/* SINK for a virtio-console beside the serial console. */
int config_set_vconsole(struct vm_config *cfg, const char *label, const char *text,
                        struct error *err);
int config_set_log_level(struct vm_config *cfg, const char *label, const char *text,
                         struct error *err);
int config_set_on_reset(struct vm_config *cfg, const char *label, const char *text,
                        struct error *err);
int config_set_shutdown_grace(struct vm_config *cfg, const char *label, const char *text,
                              struct error *err);
int config_set_host_compat(struct vm_config *cfg, const char *label, const char *text,
                           struct error *err);
int config_set_seccomp(struct vm_config *cfg, const char *label, const char *text,
                       struct error *err);
int config_set_device_discovery(struct vm_config *cfg, const char *label, const char *text,
                                struct error *err);
/* on or off: whether the DSDT has the VM generation ID device (docs/acpi.md). */
int config_set_vmgenid(struct vm_config *cfg, const char *label, const char *text,
                       struct error *err);
/* true or false (also True, TRUE, False, FALSE); --rng hands it "true". */
int config_set_rng(struct vm_config *cfg, const char *label, const char *text, struct error *err);
/* --jail DIR (a path), --uid U and --gid G (1 to 4294967294: never root's 0, never -1);
 * config_jail.c. */
int config_set_jail(struct vm_config *cfg, const char *label, const char *text, struct error *err);
int config_set_jail_uid(struct vm_config *cfg, const char *label, const char *text,
                        struct error *err);
int config_set_jail_gid(struct vm_config *cfg, const char *label, const char *text,
                        struct error *err);
/* --api-socket PATH or none: a path a Unix socket can have (at most 107 bytes); config_api.c. */
#define CONFIG_API_NONE     "none"
#define CONFIG_API_EXPECTED "a socket path of at most 107 bytes, or none"
int config_set_api(struct vm_config *cfg, const char *label, const char *text, struct error *err);
/* --api-socket none: the VM serves no control API. */
bool config_api_disabled(const struct vm_config *cfg);
/* --cpu-template host|minimal|FILE; config_cpu_template.c. The file is read when the VM is
 * built (kiln/vcpu/cpu_template.h), so a restore needs none of it. */
#define CONFIG_CPU_TEMPLATE_EXPECTED "host, minimal or a CPU template file's path"
int config_set_cpu_template(struct vm_config *cfg, const char *label, const char *text,
                            struct error *err);
/* The template cfg asks for: "host" when none is given. */
const char *config_cpu_template(const struct vm_config *cfg);
/* Whether that is a file (not host or minimal): the jail binds it in. */
bool config_cpu_template_is_file(const struct vm_config *cfg);
/* One --disk SPEC or --net SPEC: parsed and added after the devices cfg has. */
int config_set_disk(struct vm_config *cfg, const char *label, const char *text, struct error *err);
int config_set_net(struct vm_config *cfg, const char *label, const char *text, struct error *err);
/* --balloon CONFIG_BALLOON_SPEC (config_balloon.c): the options are config_balloon_keys. */
#define CONFIG_BALLOON_SPEC                                                                        \
    "SIZE[,deflate-on-oom=on|off][,stats=SECONDS][,free-page-reporting=on|off]"
int config_set_balloon(struct vm_config *cfg, const char *label, const char *text,
                       struct error *err);

/* A YAML boolean's spellings: 1 for true, True, TRUE; 0 for false, False, FALSE; else -EINVAL. */
int config_parse_bool(const char *text);

/* The keyword each setting is written as: what `kiln config` prints and the setters accept. */
const char *config_on_reset_name(enum reset_action action);
const char *config_host_compat_name(enum host_compat_mode mode);
const char *config_seccomp_name(enum sandbox_mode mode);
const char *config_device_discovery_name(enum device_discovery discovery);
const char *config_disk_cache_name(enum disk_cache cache);
/* cfg's console as config_set_console takes it, e.g. "virtio:file:hvc.log", in *text (free
 * it). 0 or -ENOMEM. */
int config_console_text(const struct vm_config *cfg, char **text);
/* The same for --vconsole ("pty", "socket:PATH"); *text NULL without one. */
int config_vconsole_text(const struct vm_config *cfg, char **text);
/* Where the path starts in a console sink as the setters take it ("virtio:file:PATH"): its
 * offset, or 0 for a sink without one. */
size_t config_sink_path_offset(const char *text);

/* The settings a message can name (config_check_all's namer). */
enum config_field {
    CONFIG_FIELD_NAME,
    CONFIG_FIELD_KERNEL,
    CONFIG_FIELD_INITRD,
    CONFIG_FIELD_CMDLINE,
    CONFIG_FIELD_CPUS,
    CONFIG_FIELD_CPU_TEMPLATE,
    CONFIG_FIELD_MEMORY,
    CONFIG_FIELD_CONSOLE,
    CONFIG_FIELD_VCONSOLE,
    CONFIG_FIELD_LOG_LEVEL,
    CONFIG_FIELD_ON_RESET,
    CONFIG_FIELD_SHUTDOWN_GRACE,
    CONFIG_FIELD_HOST_COMPAT,
    CONFIG_FIELD_SECCOMP,
    CONFIG_FIELD_DEVICE_DISCOVERY,
    CONFIG_FIELD_DISK, /* one disk's path; index: which disk */
    CONFIG_FIELD_NET,  /* one net device; index: which */
    CONFIG_FIELD_RNG,
    CONFIG_FIELD_RNG_LIMIT,
    CONFIG_FIELD_BALLOON,
    CONFIG_FIELD_VMGENID,
    CONFIG_FIELD_JAIL,
    CONFIG_FIELD_UID,
    CONFIG_FIELD_GID,
    CONFIG_FIELD_API,
    CONFIG_FIELD_CPU_QUOTA,
    CONFIG_FIELD_CPU_WEIGHT,
    CONFIG_FIELD_NICE,
    CONFIG_FIELD_DEVICES, /* the virtio devices together (their count) */
    CONFIG_FIELD_COUNT
};
/* The flag that sets field: "--kernel". */
const char *config_field_flag(enum config_field field);

/* Names a setting in a message the way the user wrote it. */
struct config_namer {
    /* Writes the label into buf ("--kernel", "vm.yaml:3:9: kernel.path"); returns false if a
     * problem with that setting was already reported, so one mistake gives one message. */
    bool (*name)(const void *ctx, enum config_field field, unsigned index, char *buf, size_t size);
    const void *ctx;
};

/* Problems found in one pass, each one whole message line, in the order found. */
#define CONFIG_MAX_PROBLEMS 50
struct config_problems {
    char *lines[CONFIG_MAX_PROBLEMS];
    unsigned count;   /* lines held */
    unsigned dropped; /* problems past CONFIG_MAX_PROBLEMS (or without memory for a line) */
    int first_code;   /* the negative errno of the first problem; 0 while there is none */
};
void config_problems_add(struct config_problems *problems, int code, const char *message);
void config_problems_free(struct config_problems *problems);
static inline unsigned config_problems_total(const struct config_problems *problems)
{
    return problems->count + problems->dropped;
}

/* The validation pass: every problem in cfg, each reported once, in a fixed order. namer NULL:
 * the flag names. check_files: also look at the files cfg names (kernel, initrd, disks exist
 * and are readable; no disk image twice); without it nothing outside cfg is looked at.
 * Returns the number of problems added. */
unsigned config_check_all(const struct vm_config *cfg, const struct config_namer *namer,
                          bool check_files, struct config_problems *problems);

/* The nearest of candidates to word (its first len bytes): within two edits ("--kernal"), or
 * the only candidate it abbreviates ("--mem"), for "did you mean" hints. NULL if none. */
const char *config_closest(const char *word, size_t len, const char *const *candidates, size_t n);

/* Parses one --disk value, CONFIG_DISK_SPEC, into *disk (owned strings; free with
 * config_free_disk); the options are config_disk_keys (config_settings.h). Returns 0 or -EINVAL
 * with a message naming the bad part. */
#define CONFIG_DISK_SPEC                                                                           \
    "PATH[,readonly][,serial=ID][,cache=writeback|writethrough|unsafe][,queue-size=N]"             \
    "[,bw=RATE][,bw-burst=SIZE][,iops=RATE][,iops-burst=N]"
int config_parse_disk(const char *spec, struct disk_config *disk, struct error *err);
void config_free_disk(struct disk_config *disk);
/* A disk with the defaults and no path. */
void config_init_disk(struct disk_config *disk);
/* "writeback", "writethrough" or "unsafe"; -EINVAL for anything else. */
int config_disk_parse_cache(const char *text, enum disk_cache *cache);
/* Appends *disk to cfg (which takes over its strings). */
int config_add_disk(struct vm_config *cfg, const struct disk_config *disk, struct error *err);
unsigned config_virtio_device_count(const struct vm_config *cfg);

/* Parses one --net value, CONFIG_NET_SPEC, into *net (free with config_free_net); the options
 * are config_net_keys. */
#define CONFIG_NET_SPEC                                                                            \
    "tap=NAME[,mac=MAC][,rx-bw=RATE][,rx-bw-burst=SIZE][,rx-pps=RATE][,rx-pps-burst=N]"            \
    "[,tx-bw=RATE][,tx-bw-burst=SIZE][,tx-pps=RATE][,tx-pps-burst=N]"
int config_parse_net(const char *spec, struct net_config *net, struct error *err);
void config_free_net(struct net_config *net);
int config_add_net(struct vm_config *cfg, const struct net_config *net, struct error *err);
/* The MAC a --net without mac= gets: locally administered, unicast, and the same for the same
 * key (the VM's name, or without one the TAP's) and device index on every boot. */
void config_default_mac(const char *key, unsigned index, uint8_t mac[6]);
/* The MAC of cfg's index-th net device: its mac=, else config_default_mac of the VM's --name
 * (so a named VM keeps its MACs on another TAP or host), else of the TAP's name. */
void config_net_mac(const struct vm_config *cfg, unsigned index, uint8_t mac[6]);
/* kiln restore --clone: gives every net device a MAC of its own, as if given with mac= (so it
 * outlives a reboot and goes into the clone's own snapshots), except a device whose mac= the
 * restore's own --net gave (keep_given). The MAC is config_default_mac of the clone's name
 * when the restore gave a new --name (new_name), else kiln's 02:4b prefix and 32 random bits. */
int config_net_clone_macs(struct vm_config *cfg, bool keep_given, bool new_name, struct error *err);

/* Formats a byte count in the largest unit that divides it exactly ("4M", "1024G", "4097")
 * into buf, for messages that state a range. Returns buf. */
const char *config_size_text(uint64_t bytes, char *buf, size_t size);

/* Copies user text into buf for an error message: control characters become \n, \t or \xHH
 * so the message stays one line, and text that does not fit is cut short with "...".
 * Returns buf. */
const char *config_quote(const char *text, char *buf, size_t size);
#define CONFIG_QUOTE_SIZE 160 /* a buffer size that keeps the rest of a message readable */

#endif
