/* The jail's pure parts: the files a jail holds and their names, the config pointed at them,
 * the VM's folder name, and the cgroup files (written into a folder standing in for cgroupfs). */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/jail/cgroup_own.h"
#include "kiln/jail/jail.h"

static void set(struct vm_config *cfg, config_setter setter, const char *value)
{
    struct error err;
    if (setter(cfg, "test", value, &err) < 0)
        fail_msg("%s", err.msg);
}

/* A VM with every kind of file: kernel, initrd, CPU template, two disks (one read-only), two
 * console files and a TAP. */
static void full_config(struct vm_config *cfg)
{
    config_init(cfg);
    set(cfg, config_set_kernel, "/images/vmlinux");
    set(cfg, config_set_initrd, "/images/initrd.img");
    set(cfg, config_set_cpu_template, "/templates/fleet.yaml");
    set(cfg, config_set_disk, "/disks/root.img");
    set(cfg, config_set_disk, "/disks/data.img,readonly");
    set(cfg, config_set_console, "file:/logs/ttyS0.log");
    set(cfg, config_set_vconsole, "file:/logs/hvc0.log");
    set(cfg, config_set_net, "tap=kt0");
    set(cfg, config_set_memory, "512M");
    set(cfg, config_set_cpus, "3");
}

static void test_plan_lists_every_file(void **state)
{
    (void)state;
    struct vm_config cfg;
    full_config(&cfg);
    struct jail_plan plan;
    jail_plan_make(&cfg, &plan);
    static const struct {
        const char *host, *inside;
        bool readonly, create;
        enum jail_file_kind kind;
    } want[] = {
        {"/images/vmlinux", "/kernel", true, false, JAIL_FILE_BIND},
        {"/images/initrd.img", "/initrd", true, false, JAIL_FILE_BIND},
        {"/templates/fleet.yaml", "/cpu-template.yaml", true, false, JAIL_FILE_BIND},
        {"/disks/root.img", "/disk0", false, false, JAIL_FILE_BIND},
        {"/disks/data.img", "/disk1", true, false, JAIL_FILE_BIND},
        {"/logs/ttyS0.log", "/console.log", false, true, JAIL_FILE_BIND},
        {"/logs/hvc0.log", "/vconsole.log", false, true, JAIL_FILE_BIND},
        {"/dev/kvm", "/dev/kvm", false, false, JAIL_FILE_DEVICE},
        {"/dev/net/tun", "/dev/net/tun", false, false, JAIL_FILE_DEVICE},
    };
    assert_int_equal(plan.count, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < plan.count; i++) {
        assert_string_equal(plan.files[i].host, want[i].host);
        assert_string_equal(plan.files[i].inside, want[i].inside);
        assert_int_equal(plan.files[i].readonly, want[i].readonly);
        assert_int_equal(plan.files[i].create, want[i].create);
        assert_int_equal(plan.files[i].kind, want[i].kind);
    }
    config_free(&cfg);
}

/* The least a VM needs: its kernel and /dev/kvm; no TAP device without a TAP, no file for a
 * built-in CPU template. */
static void test_plan_minimal(void **state)
{
    (void)state;
    struct vm_config cfg;
    config_init(&cfg);
    set(&cfg, config_set_kernel, "/k.elf");
    set(&cfg, config_set_console, "stdio");
    set(&cfg, config_set_cpu_template, "minimal"); /* built in: no file */
    struct jail_plan plan;
    jail_plan_make(&cfg, &plan);
    assert_int_equal(plan.count, 2);
    assert_string_equal(plan.files[0].inside, "/kernel");
    assert_string_equal(plan.files[1].inside, "/dev/kvm");
    config_free(&cfg);
}

/* The most files a plan can hold: every disk slot used, both console files, a TAP (more
 * devices than one VM may have, which the validation pass refuses before the jail). */
static void test_plan_at_its_largest(void **state)
{
    (void)state;
    struct vm_config cfg;
    full_config(&cfg);
    for (unsigned i = cfg.ndisks; i < CONFIG_MAX_VIRTIO_DEVICES; i++) {
        char spec[32];
        snprintf(spec, sizeof(spec), "/disks/%u.img", i);
        set(&cfg, config_set_disk, spec);
    }
    struct jail_plan plan;
    jail_plan_make(&cfg, &plan);
    assert_int_equal(plan.count, JAIL_MAX_FILES);
    assert_string_equal(plan.files[3 + CONFIG_MAX_VIRTIO_DEVICES - 1].inside, "/disk7");
    config_free(&cfg);
}

static void test_rewrite_points_inside(void **state)
{
    (void)state;
    struct vm_config cfg;
    full_config(&cfg);
    struct jail_plan plan;
    jail_plan_make(&cfg, &plan);
    struct error err;
    assert_int_equal(jail_plan_rewrite(&cfg, &plan, &err), 0);
    assert_string_equal(cfg.kernel_path, "/kernel");
    assert_string_equal(cfg.initrd_path, "/initrd");
    assert_string_equal(cfg.cpu_template, "/cpu-template.yaml");
    assert_string_equal(cfg.disks[0].path, "/disk0");
    assert_string_equal(cfg.disks[1].path, "/disk1");
    assert_true(cfg.disks[1].readonly);
    assert_string_equal(cfg.console_path, "/console.log");
    assert_string_equal(cfg.vconsole_path, "/vconsole.log");
    assert_string_equal(cfg.nets[0].tap, "kt0"); /* a TAP is a name, not a path */
    config_free(&cfg);
}

static void test_id_and_limits(void **state)
{
    (void)state;
    struct vm_config cfg;
    full_config(&cfg);
    char id[96];
    jail_id(&cfg, 4242, id, sizeof(id));
    assert_string_equal(id, "vm-4242");
    set(&cfg, config_set_name, "web-1");
    jail_id(&cfg, 7, id, sizeof(id));
    assert_string_equal(id, "web-1-7");
    assert_int_equal(jail_memory_max(&cfg), (512ULL << 20) + JAIL_MEMORY_OVERHEAD);
    assert_int_equal(jail_cpu_quota_us(&cfg), 3 * JAIL_CPU_PERIOD_US);
    set(&cfg, config_set_cpu_quota, "250"); /* --cpu-quota wins over one CPU per vCPU */
    assert_int_equal(jail_cpu_quota_us(&cfg), 250000);
    config_free(&cfg);
}

static char *read_file(const char *dir, const char *name)
{
    char path[1024];
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        fail_msg("path too long: %s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("no %s", path);
    static char text[128];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static void test_cgroup_files(void **state)
{
    (void)state;
    char root[] = "/tmp/kiln-cgroup-XXXXXX";
    assert_non_null(mkdtemp(root));
    struct vm_config cfg;
    full_config(&cfg);
    char dir[512];
    struct error err;
    assert_int_equal(jail_cgroup_create(root, "vm-9", &cfg, 1234, dir, sizeof(dir), &err), 0);
    char want_dir[600];
    snprintf(want_dir, sizeof(want_dir), "%s/kiln/vm-9", root);
    assert_string_equal(dir, want_dir);
    assert_string_equal(read_file(root, "cgroup.subtree_control"), "+cpu +memory");
    assert_string_equal(read_file(dir, "memory.max"), "805306368"); /* 512M + 256M */
    assert_string_equal(read_file(dir, "cpu.max"), "300000 100000");
    assert_string_equal(read_file(dir, "cgroup.procs"), "1234");
    /* A cgroup that cannot be made is one clear line naming it. */
    char bad_root[600];
    snprintf(bad_root, sizeof(bad_root), "%s/missing", root);
    assert_true(jail_cgroup_create(bad_root, "vm-9", &cfg, 1, dir, sizeof(dir), &err) < 0);
    assert_non_null(strstr(err.msg, "jail: cannot write '+cpu +memory' to "));
    assert_non_null(strstr(err.msg, "/missing/cgroup.subtree_control: No such file or directory"));
    config_free(&cfg);
    char command[700];
    snprintf(command, sizeof(command), "rm -rf '%s'", root);
    assert_int_equal(system(command), 0);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Without --jail: HOME/kiln/ID below the cgroup kiln started in, the process moved in, the cpu
 * controller enabled on the way down, only the limits asked for written; and out again. A
 * folder stands in for the cgroup file system (whose files appear by themselves there). */
static void test_own_cgroup(void **state)
{
    (void)state;
    char home[] = "/tmp/kiln-own-cgroup-XXXXXX";
    assert_non_null(mkdtemp(home));
    write_file(home, "cgroup.controllers", "cpuset cpu io memory pids\n");
    write_file(home, "cgroup.procs", "");
    struct vm_config cfg;
    config_init(&cfg);
    set(&cfg, config_set_cpu_quota, "150%");
    struct cgroup_own cg;
    struct error err;
    assert_true(cgroup_own_wanted(&cfg));
    assert_int_equal(cgroup_own_enter_at(home, "web-7", &cfg, 4321, &cg, &err), 0);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof(want), "%s/kiln/web-7", home);
    assert_string_equal(cg.dir, want);
    assert_string_equal(read_file(cg.dir, "cgroup.procs"), "4321");
    assert_string_equal(read_file(home, "cgroup.subtree_control"), "+cpu");
    assert_true(cg.home_cpu_ours); /* so leaving may turn it off again (cgroup_own_leave) */
    assert_string_equal(read_file(want, "cpu.max"), "150000 100000");
    assert_int_equal(access(strcat(want, "/cpu.weight"), F_OK), -1); /* not asked for */
    /* Out again: back in HOME; the folder (emptied as cgroupfs does) and kiln/ are gone. */
    snprintf(want, sizeof(want), "%s/kiln/web-7", home);
    char command[1400];
    int n = snprintf(command, sizeof(command), "rm -f '%s'/* '%s'/kiln/cgroup.subtree_control",
                     want, home);
    assert_true(n > 0 && (size_t)n < sizeof(command));
    assert_int_equal(system(command), 0);
    assert_int_equal(cgroup_own_leave(&cg, 4321, &err), 0);
    assert_string_equal(read_file(home, "cgroup.procs"), "4321");
    snprintf(want, sizeof(want), "%s/kiln", home);
    assert_int_equal(access(want, F_OK), -1);

    /* --cpu-weight alone: cpu.weight, and cpu.max left at the cgroup's "max". */
    config_free(&cfg);
    config_init(&cfg);
    assert_false(cgroup_own_wanted(&cfg));
    set(&cfg, config_set_cpu_weight, "50");
    write_file(home, "cgroup.subtree_control", "cpu memory\n"); /* someone else's: kept */
    assert_int_equal(cgroup_own_enter_at(home, "vm-8", &cfg, 99, &cg, &err), 0);
    assert_false(cg.home_cpu_ours);
    assert_string_equal(read_file(cg.dir, "cpu.weight"), "50");
    snprintf(want, sizeof(want), "%s/cpu.max", cg.dir);
    assert_int_equal(access(want, F_OK), -1);

    /* A cgroup v2 without the cpu controller (a hybrid host's): one line, nothing made. */
    char bare[] = "/tmp/kiln-bare-cgroup-XXXXXX";
    assert_non_null(mkdtemp(bare));
    write_file(bare, "cgroup.controllers", "hugetlb\n");
    assert_int_equal(cgroup_own_enter_at(bare, "vm-9", &cfg, 1, &cg, &err), -EOPNOTSUPP);
    snprintf(want, sizeof(want),
             "--cpu-weight: the cgroup v2 folder %s offers no cpu controller (its "
             "cgroup.controllers: 'hugetlb'): a CPU quota or weight needs cgroup v2's cpu "
             "controller",
             bare);
    assert_string_equal(err.msg, want);
    snprintf(want, sizeof(want), "%s/kiln", bare);
    assert_int_equal(access(want, F_OK), -1);
    config_free(&cfg);
    snprintf(command, sizeof(command), "rm -rf '%s' '%s'", home, bare);
    assert_int_equal(system(command), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_lists_every_file),
        cmocka_unit_test(test_plan_minimal),
        cmocka_unit_test(test_plan_at_its_largest),
        cmocka_unit_test(test_rewrite_points_inside),
        cmocka_unit_test(test_id_and_limits),
        cmocka_unit_test(test_cgroup_files),
        cmocka_unit_test(test_own_cgroup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
