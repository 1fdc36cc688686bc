/* The one table of VM settings: each row is a `kiln run` flag and the YAML key that sets the same
 * value through the same setter, with the texts --help and the messages show; and the keys of a
 * disks: or nets: entry, which are the options of a --disk or --net value. */
#ifndef KILN_CONFIG_SETTINGS_H
#define KILN_CONFIG_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

#include "kiln/config/config.h"
#include "kiln/util/error.h"

/* Where a setting's key is in a VM definition. */
enum config_place {
    CONFIG_PLACE_TOP,    /* "cpus: 2" */
    CONFIG_PLACE_KERNEL, /* in the kernel mapping: "kernel: {path: vmlinux}" */
};

/* The one YAML key without a flag: the mapping that holds the CONFIG_PLACE_KERNEL settings. */
#define CONFIG_KERNEL_KEY "kernel"

enum {
    CONFIG_SETTING_SWITCH = 1u << 0, /* a flag without a value (--rng, readonly): set gets "true";
                                        a boolean in YAML */
    CONFIG_SETTING_LIST = 1u << 1,   /* --disk, --net: each use adds a device; a list in YAML */
    CONFIG_SETTING_PATH = 1u << 2,   /* a path: relative to a VM file's folder, absolute in
                                        `kiln config` output */
    CONFIG_SETTING_SINK = 1u << 3,   /* a console sink, whose file:PATH or socket:PATH is a path */
    CONFIG_SETTING_TEXT = 1u << 4,   /* free-form text, which `kiln config` double-quotes */
    CONFIG_SETTING_NONE = 1u << 5,   /* with PATH: the word "none" is not a path (--api-socket) */
    CONFIG_SETTING_CPU_NAMES = 1u << 6, /* with PATH: host and minimal are built-in CPU templates,
                                           not paths (--cpu-template) */
};

/* Whether a PATH setting's TEXT is to be resolved as a path (not "none" where that is a word). */
bool config_setting_is_path(unsigned options, const char *text);

/* A setting's value as its setter takes it, in *text (free it); NULL when the setting is unset,
 * which `kiln config` leaves out. 0 or -ENOMEM. */
typedef int (*config_getter)(const struct vm_config *cfg, char **text);

struct config_setting {
    const char *flag; /* "--cpus" */
    enum config_place place;
    const char *key;      /* its YAML key at place: "cpus", or "path" in the kernel mapping */
    const char *metavar;  /* "N" in --help; "" for a switch */
    const char *expected; /* what a value is: "missing value (expected ...)", "no value (...)" */
    const char *help;     /* the text after "--cpus N" in --help */
    config_setter set;    /* parses a value, from a flag or a key alike */
    config_getter get;    /* NULL for the lists: `kiln config` writes their entries' keys */
    enum config_field field;
    unsigned options; /* CONFIG_SETTING_* */
};

/* In YAML order (the order `kiln config` writes and `kiln run --help` lists). */
extern const struct config_setting config_settings[];
#define CONFIG_SETTING_COUNT 28

/* The setting of flag (its first len bytes: "--cpus=2" with len 6), or NULL. */
const struct config_setting *config_setting_by_flag(const char *flag, size_t len);
/* The setting that sets field, or NULL (CONFIG_FIELD_DEVICES has none). */
const struct config_setting *config_setting_by_field(enum config_field field);
/* The key's path from the top of a VM definition: "cpus", "kernel.path". Returns buf. */
const char *config_setting_key_path(const struct config_setting *setting, char *buf, size_t size);

/* One key of a disks: or nets: entry, and the same option of a --disk or --net value
 * ("serial: data" and "serial=data"). */
struct config_device_key {
    const char *key;      /* "serial"; in a flag's value "serial=ID", or "readonly" for a switch */
    const char *alias;    /* another spelling in a flag's value ("ro"), or NULL */
    const char *metavar;  /* "ID"; "" for a switch */
    const char *expected; /* what a value is, for "no value" and "missing" */
    /* Parses text into device (a struct disk_config or net_config); subject begins the message:
     * "--disk: serial 'x' in 'a.img,serial=x'" or "vm.yaml:4:13: disks[0].serial: 'x'". */
    int (*set)(void *device, const char *subject, const char *text, struct error *err);
    /* The value as set takes it, or *text NULL for none (left out of `kiln config`). */
    int (*get)(const void *device, char **text);
    unsigned options; /* CONFIG_SETTING_SWITCH, _PATH, _TEXT */
};

#define CONFIG_DEVICE_MAX_KEYS 16 /* keys of one device entry, at most */

/* The keys of one kind of device entry. keys[0] is the one every entry needs (disks: path,
 * nets: tap); with positional, a flag's value gives it first and bare ("a.img,readonly"). */
struct config_device_keys {
    const char *flag;     /* "--disk" */
    const char *list_key; /* "disks" */
    const char *what;     /* "disks", in "a list of disks, each ..." */
    const char *spec;     /* CONFIG_DISK_SPEC: what a flag's value is */
    const struct config_device_key *keys;
    size_t count; /* at most CONFIG_DEVICE_MAX_KEYS */
    bool positional;
    bool all_optional; /* not even keys[0] is needed (--rng-limit's options) */
};
extern const struct config_device_keys config_disk_keys; /* config_disk.c */
extern const struct config_device_keys config_net_keys;  /* config_net.c */
/* The options of a --balloon value (config_balloon.c); in YAML the same string. */
extern const struct config_device_keys config_balloon_keys;

/* Parses one flag value of kind ("a.img,readonly,serial=d1") into device, which the caller has
 * initialised. Returns 0, or -EINVAL naming the flag, the option and the whole value. */
int config_parse_device_spec(const struct config_device_keys *kind, const char *spec, void *device,
                             struct error *err);

/* "a mapping with path and optionally readonly, serial, cache, queue-size": what an entry of
 * kind is, for YAML messages. Returns buf. */
const char *config_device_entry_expected(const struct config_device_keys *kind, char *buf,
                                         size_t size);

/* A getter's answer: a copy of value in *text (value NULL: *text NULL), or the number as text.
 * 0 or -ENOMEM. */
int config_text(const char *value, char **text);
int config_text_unsigned(unsigned value, char **text);

/* The jail rows' getters (config_jail.c). */
int config_get_jail(const struct vm_config *cfg, char **text);
int config_get_jail_uid(const struct vm_config *cfg, char **text);
int config_get_jail_gid(const struct vm_config *cfg, char **text);

/* The balloon row's getter (config_balloon.c): NULL without a balloon. */
int config_get_balloon(const struct vm_config *cfg, char **text);

/* The API row's getter (config_api.c). */
int config_get_api(const struct vm_config *cfg, char **text);

/* Writes names as "a, b or c" (last: " or ", " and ") into buf. Returns buf. */
const char *config_join_words(const char *const *names, size_t n, const char *last, char *buf,
                              size_t size);

#endif
