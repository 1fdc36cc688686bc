/* kiln restore's and kiln receive's command lines: their own flags, the run flags they pass on
 * to the `kiln run` argv they build, and one clear line for each bad argument. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "receive_args.h"
#include "restore_args.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void expect_argv(const struct run_argv *run, const char *const *want, int n)
{
    assert_int_equal(run->argc, n);
    for (int i = 0; i < n; i++)
        assert_string_equal(run->argv[i], want[i]);
    assert_null(run->argv[n]);
}

static void test_restore_passes_run_flags_after_the_snapshot_config(void **state)
{
    char *argv[] = {"kiln", "restore",          "snap", "--paused", "--net", "tap=tap1", "--name",
                    "copy", "--memory-restore", "copy", "--clone"};
    struct restore_args a;
    struct error err = {{0}};
    assert_int_equal(restore_args_parse(ARGC(argv), argv, &a, &err), 0);
    assert_string_equal(a.dir, "snap");
    assert_true(a.paused && a.clone && a.copy_memory && a.net_given && a.name_given);
    assert_false(a.api_given);
    const char *want[] = {"kiln", "run", "snap/config.yaml", "--net", "tap=tap1", "--name", "copy"};
    expect_argv(&a.run, want, ARGC(want));
    restore_args_free(&a);
}

static void expect_restore_error(char **argv, int argc, const char *message)
{
    struct restore_args a;
    struct error err = {{0}};
    assert_true(restore_args_parse(argc, argv, &a, &err) < 0);
    assert_string_equal(err.msg, message);
    restore_args_free(&a);
}

static void test_restore_refuses_bad_arguments(void **state)
{
    char *missing[] = {"kiln", "restore", "snap", "--console"};
    expect_restore_error(missing, ARGC(missing), "--console: missing value");
    char *machine[] = {"kiln", "restore", "snap", "--memory", "1G"};
    expect_restore_error(machine, ARGC(machine),
                         "kiln restore: --memory cannot be given: the VM is the snapshot's (a "
                         "restore takes --paused, --clone, --memory-restore, --api-socket, --net, "
                         "--console, --vconsole, --name, --log-level, --seccomp, "
                         "--shutdown-grace, --on-reset)");
    char *two[] = {"kiln", "restore", "a", "b"};
    expect_restore_error(two, ARGC(two), "kiln restore: 'b': one snapshot folder only (already a)");
    char *none[] = {"kiln", "restore", "--paused"};
    expect_restore_error(none, ARGC(none),
                         "kiln restore: no snapshot folder (usage: kiln restore DIR ...)");
    char *mode[] = {"kiln", "restore", "snap", "--memory-restore", "eager"};
    expect_restore_error(mode, ARGC(mode), "--memory-restore: 'eager' (expected lazy or copy)");
}

static void test_receive_passes_run_flags_and_takes_its_own(void **state)
{
    char *argv[] = {"kiln",         "receive",     "--listen",   "unix:/tmp/m.sock",
                    "--timeout-s",  "30",          "--console",  "file:x",
                    "--api-socket", "/tmp/a.sock", "--psk-file", "key"};
    struct receive_args a;
    struct error err = {{0}};
    assert_int_equal(receive_args_parse(ARGC(argv), argv, &a, &err), 0);
    assert_string_equal(a.listen, "unix:/tmp/m.sock");
    assert_string_equal(a.psk_file, "key");
    assert_int_equal(a.timeout_s, 30);
    assert_true(a.api_given);
    const char *want[] = {"kiln", "run", "", "--console", "file:x", "--api-socket", "/tmp/a.sock"};
    expect_argv(&a.run, want, ARGC(want));
    assert_int_equal(run_argv_set_config(&a.run, "/proc/self/fd/5", &err), 0);
    assert_string_equal(a.run.argv[2], "/proc/self/fd/5");
    receive_args_free(&a);
}

static void expect_receive_error(char **argv, int argc, const char *message)
{
    struct receive_args a;
    struct error err = {{0}};
    assert_true(receive_args_parse(argc, argv, &a, &err) < 0);
    assert_string_equal(err.msg, message);
    receive_args_free(&a);
}

static void test_receive_refuses_bad_arguments(void **state)
{
    char *missing[] = {"kiln", "receive", "--listen", "unix:x", "--net"};
    expect_receive_error(missing, ARGC(missing), "--net: missing value");
    char *twice[] = {"kiln", "receive", "--listen", "unix:x", "--listen", "unix:y"};
    expect_receive_error(twice, ARGC(twice), "--listen: given twice");
    char *timeout[] = {"kiln", "receive", "--listen", "unix:x", "--timeout-s", "0"};
    expect_receive_error(timeout, ARGC(timeout),
                         "--timeout-s: '0' (expected seconds from 1 to 86400)");
    char *none[] = {"kiln", "receive", "--name", "x"};
    expect_receive_error(
        none, ARGC(none),
        "kiln receive: no --listen (expected --listen unix:PATH or tcp:HOST:PORT)");
    char *machine[] = {"kiln", "receive", "--listen", "unix:x", "--cpus", "2"};
    expect_receive_error(machine, ARGC(machine),
                         "kiln receive: --cpus cannot be given: the VM is the source's (a receive "
                         "takes --listen, --psk-file, --timeout-s, --api-socket, --net, "
                         "--console, --vconsole, --name, --log-level, --seccomp, "
                         "--shutdown-grace, --on-reset)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restore_passes_run_flags_after_the_snapshot_config),
        cmocka_unit_test(test_restore_refuses_bad_arguments),
        cmocka_unit_test(test_receive_passes_run_flags_and_takes_its_own),
        cmocka_unit_test(test_receive_refuses_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
