/* kiln's entry point: parse the command line (and the VM definition file), then build, run
 * and tear down one VM (again, after a guest reset, with --on-reset restart), or check or print
 * the configuration. The only place that prints fatal errors and chooses the exit status. */
#include <errno.h>
#include <malloc.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kiln/api/api_socket.h"
#include "kiln/config/cli.h"
#include "kiln/ctl/ctl.h"
#include "kiln/jail/cgroup_own.h"
#include "kiln/jail/jail.h"
#include "kiln/migrate/mig_proto.h"
#include "kiln/vm/vm_migrate.h"
#include "kiln/ktest/ktest.h"
#include "kiln/util/fd_private.h"
#include "kiln/vm/vm.h"
#include "kiln/snapshot/snap_dir.h"
#include "kiln/vm/vm_snapshot.h"
#include "receive_args.h"
#include "restore_args.h"
#include "snapshot_command.h"

#include "kiln_commit.h" /* KILN_COMMIT: generated at build time (cmake/kiln_commit.cmake) */

/* How long a receiver waits for the sender's next record. */
#define RECEIVE_TIMEOUT_MS 60000

/* How kiln run or kiln restore starts the VM: the API's listening socket, and for a restore
 * the snapshot the first boot comes from (a reboot after it starts the kernel afresh). */
struct run_plan {
    int api_fd; /* -1: no API */
    const char *restore_dir;
    bool copy_memory;
    bool paused;
    struct mig_link *receive_link; /* kiln receive: the first boot comes from the sender */
};

/* One boot: build, run, tear down. Returns -1 if the VM could not be built or run. */
static int boot_once(const struct vm_config *config, unsigned boot_index, struct run_plan *plan,
                     struct vm_result *result, struct log *log)
{
    struct error err = {{0}};
    struct vm *vm = calloc(1, sizeof(*vm));
    if (!vm) {
        fprintf(stderr, "kiln: error: out of memory\n");
        return -1;
    }
    bool restoring = plan->restore_dir && boot_index == 0;
    bool receiving = plan->receive_link && boot_index == 0, received_paused = false;
    int r = restoring   ? vm_restore(vm, config, plan->restore_dir, plan->copy_memory, &err)
            : receiving ? vm_receive(vm, config, plan->receive_link, &received_paused, &err)
                        : vm_create(vm, config, boot_index, &err);
    if (receiving) { /* the sender has its answer; this process is the VM's now */
        mig_link_close(plan->receive_link);
        plan->receive_link = NULL;
    }
    if (r == 0) {
        vm->api_fd = plan->api_fd;
        vm->paused = (restoring && plan->paused) || received_paused;
        r = vm_run(vm, &err);
        *result = vm->result;
        *log = vm->log;
        /* Tear down before printing so the terminal is restored first. */
        vm_destroy(vm);
    }
    free(vm);
    if (r < 0) {
        fprintf(stderr, "kiln: error: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static void report(const struct vm_result *result, const struct log *log)
{
    switch (result->reason) {
    case VM_STOP_TEST_EXIT:
    case VM_STOP_POWER_OFF:
        log_info(log, "%s", result->message);
        break;
    case VM_STOP_CRASH:
        fprintf(stderr, "kiln: error: %s\n", result->message);
        break;
    default:
        fprintf(stderr, "kiln: %s\n", result->message);
        break;
    }
}

/* The effective configuration, checked; prints every problem and returns false if any. */
static bool load_config(struct cli_request *request, bool check_files)
{
    struct config_problems problems = {.count = 0};
    cli_load(request, check_files, &problems);
    for (unsigned i = 0; i < problems.count; i++)
        fprintf(stderr, "kiln: error: %s\n", problems.lines[i]);
    if (problems.dropped)
        fprintf(stderr, "kiln: error: ... and %u more problem%s\n", problems.dropped,
                problems.dropped == 1 ? "" : "s");
    bool ok = config_problems_total(&problems) == 0;
    config_problems_free(&problems);
    return ok;
}

static int validate(struct cli_request *request)
{
    if (!load_config(request, true))
        return EXIT_FAILURE;
    printf("%s: valid\n", request->file ? request->file : "the flags");
    return EXIT_SUCCESS;
}

static int print_config(struct cli_request *request)
{
    if (!load_config(request, false))
        return EXIT_FAILURE;
    struct error err = {{0}};
    if (config_yaml_emit(&request->config, stdout, &err) < 0 || fflush(stdout) != 0) {
        fprintf(stderr, "kiln: error: %s\n", err.msg[0] ? err.msg : "writing to stdout failed");
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}

static int run_vm(const struct vm_config *config, struct run_plan *plan)
{
    struct vm_result result;
    struct log log;
    for (unsigned boot = 0;; boot++) {
        if (boot_once(config, boot, plan, &result, &log) < 0)
            return EXIT_KILN_ERROR;
        if (result.reason == VM_STOP_REBOOT && !result.signal) {
            log_info(&log, "%s", result.message);
            continue;
        }
        if (result.reason != VM_STOP_RESET || config->on_reset != RESET_RESTART)
            break;
        if (result.signal) {
            /* The user asked to stop while the guest was resetting: stop, don't restart. */
            result.reason = VM_STOP_SIGNAL;
            result.exit_status = EXIT_SIGNAL_BASE + result.signal;
            snprintf(result.message, sizeof(result.message), "stopped by %s",
                     result.signal == SIGINT ? "SIGINT" : "SIGTERM");
            break;
        }
        log_warn(&log, "%s: restarting the VM (--on-reset restart)", result.message);
    }
    report(&result, &log);
    return result.exit_status;
}

/* The jailed child's way of ending is the parent's: the same exit status, or the same signal
 * (so whoever started kiln sees what it would see without the jail). */
static int end_like(const struct jail_outcome *outcome)
{
    if (outcome->signal) {
        signal(outcome->signal, SIG_DFL);
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, outcome->signal);
        pthread_sigmask(SIG_UNBLOCK, &one, NULL);
        raise(outcome->signal);
    }
    return outcome->exit_status >= 0 ? outcome->exit_status : EXIT_KILN_ERROR;
}

/* The control API's socket (docs/api.md), bound here, before any jail, so that it lives on
 * the host's side and survives reboots: --api-socket's path, else NAME.PID.sock in the run
 * folder. A default that cannot be made only costs the API (said at --log-level info, so that
 * a VM the user asked nothing of prints nothing about it); a path the user gave must work. Returns
 * the listening fd, -1 for no API, or -2 after printing an error. */
static int open_api_socket(const struct vm_config *config, char *path, size_t len)
{
    path[0] = '\0';
    if (config_api_disabled(config))
        return -1;
    struct error err = {{0}};
    uid_t uid = config->jail_dir ? (uid_t)config->jail_uid : (uid_t)-1;
    gid_t gid = config->jail_dir ? (gid_t)config->jail_gid : (gid_t)-1;
    int fd = -1, r;
    if (config->api_socket) {
        snprintf(path, len, "%s", config->api_socket);
        r = api_socket_bind(path, uid, gid, &fd, &err);
    } else {
        r = api_default_socket_path(config->name, getpid(), path, len, &err);
        if (r == 0)
            r = api_socket_bind(path, uid, gid, &fd, &err);
        if (r < 0) {
            if (config->log_level >= LOG_INFO)
                fprintf(stderr, "kiln: info: no control API: %s\n", err.msg);
            path[0] = '\0';
            return -1;
        }
    }
    if (r < 0) {
        fprintf(stderr, "kiln: error: %s\n", err.msg);
        path[0] = '\0';
        return -2;
    }
    return fd;
}

static void close_api_socket(int fd, const char *path)
{
    if (fd < 0)
        return;
    close(fd);
    unlink(path);
}

/* --cpu-quota and --cpu-weight without --jail: the process runs the VM in a cgroup of its own
 * (jail/cgroup_own.c), which it leaves and removes at the end. */
static int run_in_own_cgroup(const struct vm_config *config, struct run_plan *plan)
{
    struct error err = {{0}};
    struct cgroup_own cgroup = {.dir = ""};
    if (cgroup_own_wanted(config) && cgroup_own_enter(config, &cgroup, &err) < 0) {
        fprintf(stderr, "kiln: error: %s\n", err.msg);
        return EXIT_KILN_ERROR;
    }
    int status = run_vm(config, plan);
    if (cgroup_own_leave(&cgroup, getpid(), &err) < 0)
        fprintf(stderr, "kiln: warn: %s\n", err.msg);
    return status;
}

/* With --jail, this process waits while a jailed child runs the VM. */
static int run_jailed_or_not(struct cli_request *request, struct run_plan *plan,
                             const char *api_path)
{
    /* The console's own non-blocking description of stdout (host/console_out.c), taken here
     * because a jail has no /proc to reopen it through. */
    fd_make_private_nonblocking(STDOUT_FILENO);
    if (request->config.jail_dir) {
        struct error err = {{0}};
        struct jail_outcome outcome;
        int r = jail_enter(&request->config, plan->api_fd, &outcome, &err);
        if (r < 0) {
            fprintf(stderr, "kiln: error: %s\n", err.msg);
            return EXIT_KILN_ERROR;
        }
        if (r == JAIL_PARENT) {
            if (outcome.signal)
                close_api_socket(plan->api_fd, api_path); /* end_like raises it */
            return end_like(&outcome);
        }
    }
    return run_in_own_cgroup(&request->config, plan);
}

/* kiln run, and kiln restore once its config is loaded. */
static int start_vm(struct cli_request *request, struct run_plan *plan)
{
    char api_path[PATH_MAX];
    plan->api_fd = open_api_socket(&request->config, api_path, sizeof(api_path));
    if (plan->api_fd == -2)
        return EXIT_KILN_ERROR;
    int status = run_jailed_or_not(request, plan, api_path);
    close_api_socket(plan->api_fd, api_path);
    return status;
}

static int run_command(struct cli_request *request)
{
    if (!load_config(request, true))
        return EXIT_KILN_ERROR;
    struct run_plan plan = {.api_fd = -1};
    return start_vm(request, &plan);
}

/* kiln restore DIR [flags]: the snapshot's config with the allowed run flags over it. A
 * snapshot that cannot be loaded ends in one line and status 125, with nothing run. */
static int restore_command(int argc, char **argv)
{
    struct error err = {{0}};
    struct restore_args args;
    int status = EXIT_KILN_ERROR;
    if (restore_args_parse(argc, argv, &args, &err) < 0) {
        fprintf(stderr, "kiln: error: %s\n", err.msg);
    } else if (args.help) {
        fputs(restore_args_usage(), stdout);
        status = EXIT_SUCCESS;
    } else {
        char state[PATH_MAX];
        snprintf(state, sizeof(state), "%s/%s", args.dir, SNAP_STATE_FILE);
        struct cli_request request;
        if (access(state, F_OK) != 0) {
            fprintf(stderr, "kiln: error: %s: not a snapshot folder (no %s: %s)\n", args.dir,
                    SNAP_STATE_FILE, strerror(errno));
        } else if (cli_parse(args.run.argc, args.run.argv, &request, &err) < 0) {
            fprintf(stderr, "kiln: error: %s\n", err.msg);
        } else {
            /* The kernel need not exist any more: the snapshot's RAM holds it. */
            if (load_config(&request, false)) {
                if (!args.api_given) { /* the snapshot's socket may still be served */
                    free(request.config.api_socket);
                    request.config.api_socket = NULL;
                }
                /* A clone must not share its original's MACs on the same network. */
                int r = args.clone ? config_net_clone_macs(&request.config, args.net_given,
                                                           args.name_given, &err)
                                   : 0;
                fd_make_private_nonblocking(STDERR_FILENO);
                struct run_plan plan = {.api_fd = -1,
                                        .restore_dir = args.dir,
                                        .copy_memory = args.copy_memory,
                                        .paused = args.paused};
                if (r < 0)
                    fprintf(stderr, "kiln: error: %s\n", err.msg);
                else if (request.config.jail_dir)
                    fprintf(stderr, "kiln: error: kiln restore cannot run a VM jailed yet (the "
                                    "snapshot's config has jail:)\n");
                else
                    status = start_vm(&request, &plan);
            }
            cli_request_free(&request);
        }
    }
    restore_args_free(&args);
    return status;
}

/* The received config (YAML) as a file kiln run's loader can read: a memfd, named through
 * /proc so no file is left behind. Its paths are absolute (config_yaml_emit). */
static int config_file_of(const void *yaml, size_t len, char *path, size_t size, struct error *err)
{
    int fd = memfd_create("kiln-received-config", MFD_CLOEXEC);
    if (fd < 0)
        return error_fmt(err, -errno, "memfd_create: %s", strerror(errno));
    if (write(fd, yaml, len) != (ssize_t)len) {
        close(fd);
        return error_fmt(err, -EIO, "writing the received config failed");
    }
    snprintf(path, size, "/proc/self/fd/%d", fd);
    return fd;
}

/* The sender's first record: its config, loaded with the run flags given here over it. */
static int receive_config(struct receive_args *args, struct mig_link *link,
                          struct cli_request *request, struct error *err)
{
    void *yaml;
    size_t len;
    int r = mig_expect(link, MIG_REC_CONFIG, "sender", &yaml, &len, err);
    if (r < 0)
        return r;
    char path[64];
    int fd = config_file_of(yaml, len, path, sizeof(path), err);
    free(yaml);
    if (fd < 0)
        return fd;
    r = run_argv_set_config(&args->run, path, err);
    if (r == 0)
        r = cli_parse(args->run.argc, args->run.argv, request, err);
    bool ok = r == 0 && load_config(request, false);
    close(fd);
    if (r == 0 && !ok) {
        cli_request_free(request);
        return error_fmt(err, -EINVAL, "the received config is not valid here (see above)");
    }
    if (r == 0 && !args->api_given) { /* the source's socket is its own */
        free(request->config.api_socket);
        request->config.api_socket = NULL;
    }
    if (r == 0 && request->config.jail_dir) {
        cli_request_free(request);
        r = error_fmt(err, -ENOTSUP,
                      "kiln receive cannot run a VM jailed yet (its config has "
                      "jail:)");
    }
    return r;
}

/* Listens, takes one sender, and opens the stream (keyed with --psk-file). */
static int accept_sender(const struct receive_args *args, struct mig_link **link, struct error *err)
{
    struct mig_addr addr;
    uint8_t key[MIG_PSK_SIZE];
    int r = mig_addr_resolve(args->listen, &addr, err);
    if (r == 0 && args->psk_file)
        r = mig_psk_load(args->psk_file, key, err);
    int listen_fd = r < 0 ? r : mig_listen(&addr, err);
    if (listen_fd < 0)
        return listen_fd;
    fprintf(stderr, "kiln: waiting for a migration on %s\n", addr.text);
    int fd = mig_accept(listen_fd, args->timeout_s < 0 ? -1 : args->timeout_s * 1000, err);
    close(listen_fd);
    if (addr.kind == MIG_ADDR_UNIX)
        unlink(addr.path); /* one VM per receive: nobody else may connect */
    if (fd < 0)
        return fd;
    r = mig_link_open(link, fd, false, args->psk_file ? key : NULL, RECEIVE_TIMEOUT_MS, err);
    if (r < 0)
        close(fd);
    return r;
}

/* kiln receive --listen ADDRESS [flags]: one VM from a sender, then run as kiln run runs it. */
static int receive_command(int argc, char **argv)
{
    struct error err = {{0}};
    struct receive_args args;
    int status = EXIT_KILN_ERROR;
    struct mig_link *link = NULL;
    struct cli_request request;
    if (receive_args_parse(argc, argv, &args, &err) < 0) {
        fprintf(stderr, "kiln: error: %s\n", err.msg);
    } else if (args.help) {
        fputs(receive_args_usage(), stdout);
        status = EXIT_SUCCESS;
    } else if (accept_sender(&args, &link, &err) < 0) {
        fprintf(stderr, "kiln: error: %s\n", err.msg);
    } else if (receive_config(&args, link, &request, &err) < 0) {
        struct error ignored = {{0}};
        mig_send_error(link, err.msg, &ignored);
        fprintf(stderr, "kiln: error: %s\n", err.msg);
    } else {
        fd_make_private_nonblocking(STDERR_FILENO);
        struct run_plan plan = {.api_fd = -1, .receive_link = link};
        status = start_vm(&request, &plan);
        link = plan.receive_link; /* NULL once the first boot took it */
        cli_request_free(&request);
    }
    mig_link_close(link);
    receive_args_free(&args);
    return status;
}

int main(int argc, char **argv)
{
    if (ktest_child_setup() < 0) /* a kiln test case's VM whose runner is gone */
        return EXIT_KILN_ERROR;
    /* jansson seeds its hash tables from /dev/urandom on first use; do it now, before any
     * seccomp filter forbids opening files (the control API answers on the event loop). */
    json_object_seed(0);
    /* One malloc arena for all threads: glibc would give each thread that allocates an arena
     * of its own, and each stays resident (~35 KiB) for the life of an idle VM. kiln's threads
     * allocate rarely after start, and glibc's per-thread cache keeps small blocks off the lock. */
    mallopt(M_ARENA_MAX, 1);
    /* A closed console pipe must not kill the VMM; writes report EPIPE instead. */
    signal(SIGPIPE, SIG_IGN);
    /* Held until a VM's loop can handle them (vm_run unblocks them). */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    /* The commands with their own parser; `kiln help NAME` is their --help. */
    static const struct {
        const char *name;
        int (*main)(int argc, char **argv);
    } own_parsers[] = {
        {"test", ktest_main},
        {"ctl", ctl_main},
        {"ps", ps_main},
        {"restore", restore_command},
        {"receive", receive_command},
        {"snapshot", snapshot_command},
    };
    for (size_t i = 0; i < sizeof(own_parsers) / sizeof(own_parsers[0]); i++) {
        if (argc >= 2 && strcmp(argv[1], own_parsers[i].name) == 0)
            return own_parsers[i].main(argc, argv);
        if (argc == 3 && strcmp(argv[1], "help") == 0 &&
            strcmp(argv[2], own_parsers[i].name) == 0) {
            char *help_argv[] = {argv[0], argv[2], "--help", NULL};
            return own_parsers[i].main(3, help_argv);
        }
    }
    struct error err = {{0}};
    /* kiln run ... --expect REGEX [--timeout DURATION]: a one-case kiln test. */
    const char *expect = NULL;
    uint64_t expect_timeout_ms = 0;
    int quick = ktest_expect_extract(&argc, argv, &expect, &expect_timeout_ms, &err);
    if (quick < 0) {
        fprintf(stderr, "kiln: error: %s\n", err.msg);
        return EXIT_KILN_ERROR;
    }
    struct cli_request request;
    if (cli_parse(argc, argv, &request, &err) < 0) {
        fprintf(stderr, "kiln: error: %s\n", err.msg);
        /* validate and config answer 0 or 1, like the checks scripts run them for. */
        bool check = request.action == CLI_ACTION_VALIDATE || request.action == CLI_ACTION_CONFIG;
        return check ? EXIT_FAILURE : EXIT_KILN_ERROR;
    }
    int status = 0;
    switch (request.action) {
    case CLI_ACTION_HELP:
        cli_print_help(stdout);
        break;
    case CLI_ACTION_RUN_HELP:
        cli_print_run_help(stdout);
        break;
    case CLI_ACTION_VERSION:
        printf("kiln %s (commit %s)\n", KILN_VERSION, KILN_COMMIT);
        break;
    case CLI_ACTION_RUN:
        /* A stderr nobody reads must not hold the VM: see write_line in util/log.c. */
        fd_make_private_nonblocking(STDERR_FILENO);
        if (quick)
            status = load_config(&request, true)
                         ? ktest_expect_run(&request.config, expect, expect_timeout_ms)
                         : EXIT_KILN_ERROR;
        else
            status = run_command(&request);
        break;
    case CLI_ACTION_VALIDATE:
        status = validate(&request);
        break;
    case CLI_ACTION_CONFIG:
        status = print_config(&request);
        break;
    }
    cli_request_free(&request);
    return status;
}
