/* kiln ctl SOCKET COMMAND [--json]: one request to a running VM's control API. Each command
 * is one row of ctl_commands (its method, path and printer), so a new endpoint is one row. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln/api/api_client.h"
#include "kiln/api/api_socket.h"
#include "kiln/ctl/ctl.h"
#include "kiln/ctl/ctl_find.h"
#include "kiln/ctl/ctl_print.h"
#include "kiln/migrate/mig_addr.h"
#include "kiln/migrate/mig_link.h"

enum ctl_printer {
    PRINT_STATUS,
    PRINT_COUNTERS,
    PRINT_MESSAGE,
    PRINT_SNAPSHOT,
    PRINT_MIGRATE,
    PRINT_BALLOON
};

/* What follows COMMAND: nothing, snapshot's DIR [--stop] [--diff BASE], migrate's ADDRESS
 * [--downtime-ms N] [--timeout-s N] [--bandwidth MIB] [--psk-file FILE], or balloon's
 * optional SIZE (given: PUT the new target; else GET). */
enum ctl_args { ARGS_NONE, ARGS_SNAPSHOT, ARGS_MIGRATE, ARGS_BALLOON };

struct ctl_command {
    const char *name;
    const char *method;
    const char *path;
    const char *help;
    enum ctl_printer printer;
    const char *done; /* what PRINT_MESSAGE prints when the reply has no "message" */
    enum ctl_args args;
    int timeout_ms;
};

/* A snapshot writes all of guest RAM that is not zero: give it time (it never blocks the VM's
 * loop meanwhile). */
#define CTL_SNAPSHOT_TIMEOUT_MS (10 * 60 * 1000)
/* A migration answers when it ends: at most its --timeout-s, plus the switch-over. */
#define CTL_MIGRATE_SLACK_MS (2 * 60 * 1000)

static const struct ctl_command ctl_commands[] = {
    {"status", "GET", "/vm", "the VM's name, pid, state, uptime, vCPUs and memory", PRINT_STATUS,
     NULL, ARGS_NONE, CTL_TIMEOUT_MS},
    {"pause", "PUT", "/vm/pause", "stop running the vCPUs; devices keep their state", PRINT_MESSAGE,
     "paused", ARGS_NONE, CTL_TIMEOUT_MS},
    {"resume", "PUT", "/vm/resume", "run the vCPUs of a paused VM again", PRINT_MESSAGE, "resumed",
     ARGS_NONE, CTL_TIMEOUT_MS},
    {"shutdown", "PUT", "/vm/shutdown", "press the power button; stop after the grace period",
     PRINT_MESSAGE, "shutting down", ARGS_NONE, CTL_TIMEOUT_MS},
    {"reboot", "PUT", "/vm/reboot", "build the VM again (a VM run with on-reset: restart)",
     PRINT_MESSAGE, "rebooting", ARGS_NONE, CTL_TIMEOUT_MS},
    {"counters", "GET", "/vm/counters", "each vCPU's exits and each device's counters",
     PRINT_COUNTERS, NULL, ARGS_NONE, CTL_TIMEOUT_MS},
    {"snapshot", "PUT", "/vm/snapshot",
     "DIR [--stop] [--diff BASE]: save the VM into DIR; --stop: end it after", PRINT_SNAPSHOT, NULL,
     ARGS_SNAPSHOT, CTL_SNAPSHOT_TIMEOUT_MS},
    {"migrate", "PUT", "/vm/migrate",
     "ADDRESS [--downtime-ms N] [--timeout-s N] [--bandwidth MIB] [--psk-file F] "
     "[--auto-converge]: move the VM to a kiln receive",
     PRINT_MIGRATE, NULL, ARGS_MIGRATE, 0 /* --timeout-s + CTL_MIGRATE_SLACK_MS */},
    {"migrate-cancel", "PUT", "/vm/migrate/cancel", "give up a migration; the VM runs on here",
     PRINT_MESSAGE, "cancelling", ARGS_NONE, CTL_TIMEOUT_MS},
    {"balloon", "GET", "/vm/balloon", "[SIZE]: show the balloon, or set its target (512M, 2G)",
     PRINT_BALLOON, NULL, ARGS_BALLOON, CTL_TIMEOUT_MS},
};
#define CTL_COMMAND_COUNT (sizeof(ctl_commands) / sizeof(ctl_commands[0]))

static void print_help(FILE *out)
{
    fprintf(out, "usage: kiln ctl SOCKET COMMAND [ARGS] [--json]\n"
                 "\n"
                 "Sends one request to a running VM's control API (docs/api.md).\n"
                 "SOCKET is the VM's API socket: a path, or a VM's name or pid, looked up in\n"
                 "the run folder ($XDG_RUNTIME_DIR/kiln, or /tmp/kiln-UID; see kiln ps).\n"
                 "\n"
                 "commands:\n");
    for (size_t i = 0; i < CTL_COMMAND_COUNT; i++)
        fprintf(out, "  %-14s %s (%s %s)\n", ctl_commands[i].name, ctl_commands[i].help,
                ctl_commands[i].method, ctl_commands[i].path);
    fprintf(
        out,
        "\n"
        "flags:\n"
        "  --json      print the reply's JSON body, pretty-printed\n"
        "  --stop      snapshot: stop the VM (status 0) once it is saved\n"
        "  --diff BASE snapshot: save only the pages written since BASE, the last\n"
        "              snapshot this VM took (full or diff); restore with kiln restore DIR\n"
        "  --downtime-ms N  migrate: the longest stop allowed at the switch-over (300)\n"
        "  --timeout-s N    migrate: give up, and run on here, if not done in N s (600)\n"
        "  --bandwidth MIB  migrate: at most MIB MiB/s on the wire (default: no limit)\n"
        "  --psk-file FILE  migrate: encrypt and authenticate with this key (the\n"
        "                   receiver's --psk-file); ADDRESS is unix:PATH or tcp:HOST:PORT\n"
        "  --auto-converge  migrate: hold the vCPUs for a growing share of the time while\n"
        "                   the copy does not converge (20%%, then 10%% more a round, to 99%%)\n"
        "  --help, -h  this text\n"
        "\n"
        "exit status: 0 when the VM did it, 1 when it answered with an error, %d when\n"
        "it could not be reached or its answer was not HTTP with JSON.\n",
        CTL_EXIT_UNREACHABLE);
}

static const struct ctl_command *find_command(const char *name)
{
    for (size_t i = 0; i < CTL_COMMAND_COUNT; i++)
        if (strcmp(ctl_commands[i].name, name) == 0)
            return &ctl_commands[i];
    return NULL;
}

static void print_human(const struct ctl_command *command, const json_t *reply)
{
    switch (command->printer) {
    case PRINT_STATUS:
        ctl_print_status(stdout, reply);
        break;
    case PRINT_COUNTERS:
        ctl_print_counters(stdout, reply);
        break;
    case PRINT_MESSAGE:
        ctl_print_message(stdout, reply, command->done);
        break;
    case PRINT_SNAPSHOT:
        ctl_print_snapshot(stdout, reply);
        break;
    case PRINT_MIGRATE:
        ctl_print_migrate(stdout, reply);
        break;
    case PRINT_BALLOON:
        ctl_print_balloon(stdout, reply);
        break;
    }
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    fprintf(stderr, "kiln ctl: error: ");
    vfprintf(stderr, fmt, args);
    fprintf(stderr, " (see 'kiln ctl --help')\n");
    va_end(args);
    return CTL_EXIT_UNREACHABLE;
}

/* path made absolute against the user's working folder (the VM's is not the user's); NULL
 * with errno set if that fails. */
static char *absolute_path(const char *path)
{
    char cwd[4096], *absolute = NULL;
    if (path[0] == '/')
        return strdup(path);
    if (getcwd(cwd, sizeof(cwd)) && asprintf(&absolute, "%s/%s", cwd, path) < 0)
        absolute = NULL;
    return absolute;
}

/* snapshot's body: {"dir": absolute DIR, "stop": --stop}, and "base": absolute BASE with
 * --diff. */
static json_t *snapshot_body(const char *dir, const char *base, bool stop)
{
    char *absolute = absolute_path(dir);
    char *absolute_base = base ? absolute_path(base) : NULL;
    json_t *body = NULL;
    if (absolute && (!base || absolute_base))
        body = json_pack("{s:s, s:b}", "dir", absolute, "stop", stop);
    if (body && absolute_base)
        json_object_set_new(body, "base", json_string(absolute_base));
    free(absolute);
    free(absolute_base);
    return body;
}

/* migrate's options, as given. */
struct migrate_options {
    const char *downtime_ms, *timeout_s, *bandwidth, *psk_file;
    bool auto_converge;
    bool given;
};

/* One number from min to max for flag, or -1 after a usage line. */
static long long number_of(const char *flag, const char *text, long long min, long long max)
{
    char *end = NULL;
    long long n = strtoll(text, &end, 10);
    if (!*text || *end || n < min || n > max) {
        usage_error("%s: '%s' (expected a number from %lld to %lld)", flag, text, min, max);
        return -1;
    }
    return n;
}

/* migrate's body: the address (a host name resolved here: the VM resolves none), the limits,
 * and the key file's key. NULL after printing why. */
static json_t *migrate_body(const char *address, const struct migrate_options *o, int *timeout_ms)
{
    long long downtime =
        o->downtime_ms ? number_of("--downtime-ms", o->downtime_ms, 1, 60000) : 300;
    long long timeout = o->timeout_s ? number_of("--timeout-s", o->timeout_s, 1, 86400) : 600;
    long long bandwidth = o->bandwidth ? number_of("--bandwidth", o->bandwidth, 0, 1000000) : 0;
    if (downtime < 0 || timeout < 0 || bandwidth < 0)
        return NULL;
    struct error err = {{0}};
    struct mig_addr addr;
    uint8_t key[MIG_PSK_SIZE];
    if (mig_addr_resolve(address, &addr, &err) < 0 ||
        (o->psk_file && mig_psk_load(o->psk_file, key, &err) < 0)) {
        fprintf(stderr, "kiln ctl: error: %s\n", err.msg);
        return NULL;
    }
    char text[sizeof(addr.text) + 16];
    if (mig_addr_format(&addr, text, sizeof(text)) < 0) {
        fprintf(stderr, "kiln ctl: error: migration address '%s': too long\n", address);
        return NULL;
    }
    json_t *body =
        json_pack("{s:s, s:I, s:I, s:I, s:b}", "destination", text, "downtime_ms",
                  (json_int_t)downtime, "timeout_s", (json_int_t)timeout, "bandwidth_mib",
                  (json_int_t)bandwidth, "auto_converge", o->auto_converge);
    if (body && o->psk_file) {
        char hex[2 * MIG_PSK_SIZE + 1];
        for (unsigned i = 0; i < MIG_PSK_SIZE; i++)
            snprintf(hex + 2 * i, 3, "%02x", key[i]);
        json_object_set_new(body, "psk", json_string(hex));
    }
    *timeout_ms = (int)(timeout * 1000 + CTL_MIGRATE_SLACK_MS);
    return body;
}

/* balloon's SIZE: "128M", "1G", or a bare number of MiB; -1 after a usage line. */
static long long balloon_mib(const char *text)
{
    char *end = NULL;
    long long n = strtoll(text, &end, 10);
    long long scale = 1;
    if (end && (*end == 'G' || *end == 'g'))
        scale = 1024;
    if (end && (*end == 'M' || *end == 'm' || scale == 1024))
        end++;
    if (end && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
        end += strlen(end);
    if (!*text || !end || *end || text[0] == '-' || n < 0 || n > (1LL << 24) / scale) {
        usage_error("balloon: '%s' is not a size (expected MiB such as 512, 512M or 2G)", text);
        return -1;
    }
    return n * scale;
}

int ctl_main(int argc, char **argv)
{
    bool json = false, stop = false;
    const char *diff_base = NULL;
    struct migrate_options migrate = {0};
    const char **migrate_flag = NULL;
    const char *positional[3];
    int npositional = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_help(stdout);
            return CTL_EXIT_OK;
        }
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--stop") == 0)
            stop = true;
        else if (strcmp(argv[i], "--auto-converge") == 0)
            migrate.auto_converge = migrate.given = true;
        else if (strcmp(argv[i], "--diff") == 0) {
            if (i + 1 == argc || argv[i + 1][0] == 0)
                return usage_error("--diff needs the base snapshot's folder: --diff BASE");
            diff_base = argv[++i];
        } else if ((migrate_flag = strcmp(argv[i], "--downtime-ms") == 0 ? &migrate.downtime_ms
                                   : strcmp(argv[i], "--timeout-s") == 0 ? &migrate.timeout_s
                                   : strcmp(argv[i], "--bandwidth") == 0 ? &migrate.bandwidth
                                   : strcmp(argv[i], "--psk-file") == 0  ? &migrate.psk_file
                                                                         : NULL)) {
            if (i + 1 == argc || argv[i + 1][0] == 0)
                return usage_error("%s needs a value", argv[i]);
            *migrate_flag = argv[++i];
            migrate.given = true;
        } else if (argv[i][0] == '-' && argv[i][1])
            return usage_error("unknown flag %s", argv[i]);
        else if (npositional == 3)
            return usage_error("unexpected argument '%s' (expected SOCKET COMMAND [ARGS])",
                               argv[i]);
        else
            positional[npositional++] = argv[i];
    }
    if (npositional < 2)
        return usage_error("%s", npositional ? "missing COMMAND after SOCKET"
                                             : "missing SOCKET and COMMAND");
    const struct ctl_command *command = find_command(positional[1]);
    if (!command) {
        char names[160] = "";
        for (size_t i = 0; i < CTL_COMMAND_COUNT; i++)
            snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? ", " : "",
                     ctl_commands[i].name);
        fprintf(stderr, "kiln ctl: error: unknown command '%s' (expected one of: %s)\n",
                positional[1], names);
        return CTL_EXIT_UNREACHABLE;
    }
    if (command->args == ARGS_SNAPSHOT && npositional != 3)
        return usage_error("snapshot needs the folder to write: kiln ctl SOCKET snapshot DIR");
    if (command->args == ARGS_MIGRATE && npositional != 3)
        return usage_error(
            "migrate needs where to: kiln ctl SOCKET migrate unix:PATH|tcp:HOST:PORT");
    if (migrate.given && command->args != ARGS_MIGRATE)
        return usage_error("--downtime-ms, --timeout-s, --bandwidth, --psk-file and "
                           "--auto-converge go with migrate only");
    if (command->args == ARGS_NONE && npositional == 3)
        return usage_error("%s takes no argument, got '%s'", command->name, positional[2]);
    if (stop && command->args != ARGS_SNAPSHOT)
        return usage_error("--stop goes with snapshot only");
    if (diff_base && command->args != ARGS_SNAPSHOT)
        return usage_error("--diff goes with snapshot only");

    json_t *body = NULL;
    const char *method = command->method;
    if (command->args == ARGS_BALLOON && npositional == 3) {
        long long mib = balloon_mib(positional[2]);
        if (mib < 0)
            return CTL_EXIT_UNREACHABLE;
        body = json_pack("{s:I}", "target_mib", (json_int_t)mib);
        method = "PUT";
    }
    if (command->args == ARGS_SNAPSHOT && !(body = snapshot_body(positional[2], diff_base, stop))) {
        fprintf(stderr, "kiln ctl: error: snapshot folder '%s': cannot make it absolute: %s\n",
                positional[2], strerror(errno));
        return CTL_EXIT_UNREACHABLE;
    }
    int timeout_ms = command->timeout_ms;
    if (command->args == ARGS_MIGRATE &&
        !(body = migrate_body(positional[2], &migrate, &timeout_ms)))
        return CTL_EXIT_UNREACHABLE;
    struct error err = {{0}};
    char socket_path[API_SOCKET_PATH_MAX * 3];
    int status = 0;
    json_t *reply = NULL;
    int r = ctl_find_socket(positional[0], socket_path, sizeof(socket_path), &err);
    if (r == 0)
        r = api_client_request(socket_path, method, command->path, body, timeout_ms, &status,
                               &reply, &err);
    if (r < 0) {
        json_decref(body);
        fprintf(stderr, "kiln ctl: error: %s\n", err.msg);
        return CTL_EXIT_UNREACHABLE;
    }
    int exit_status = CTL_EXIT_OK;
    if (status < 200 || status > 299) {
        const char *message = json_string_value(json_object_get(reply, "error"));
        if (message)
            fprintf(stderr, "kiln ctl: error: %s\n", message);
        else
            fprintf(stderr, "kiln ctl: error: %s %s: HTTP status %d\n", method, command->path,
                    status);
        exit_status = CTL_EXIT_API_ERROR;
    } else if (json) {
        json_t *empty = reply ? NULL : json_object(); /* 204: still one object */
        json_dumpf(reply ? reply : empty, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
        fputc('\n', stdout);
        json_decref(empty);
    } else if (command->args == ARGS_BALLOON && body) {
        printf("balloon target set to %lld MiB\n",
               (long long)json_integer_value(json_object_get(body, "target_mib")));
    } else {
        print_human(command, reply);
    }
    json_decref(reply);
    json_decref(body);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "kiln ctl: error: writing to stdout: %s\n", strerror(errno));
        return CTL_EXIT_UNREACHABLE;
    }
    return exit_status;
}
