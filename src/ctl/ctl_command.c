/* kiln ctl SOCKET COMMAND [--json]: one request to a running VM's control API. Each command
 * is one row of ctl_commands (its method, path and printer), so a new endpoint is one row. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "kiln/api/api_client.h"
#include "kiln/api/api_socket.h"
#include "kiln/ctl/ctl.h"
#include "kiln/ctl/ctl_find.h"
#include "kiln/ctl/ctl_print.h"

enum ctl_printer { PRINT_STATUS, PRINT_COUNTERS, PRINT_MESSAGE };

struct ctl_command {
    const char *name;
    const char *method;
    const char *path;
    const char *help;
    enum ctl_printer printer;
    const char *done; /* what PRINT_MESSAGE prints when the reply has no "message" */
};

/* Adding snapshot later: {"snapshot", "PUT", "/vm/snapshot", ...} plus its DIR [--stop]
 * arguments as the request body. */
static const struct ctl_command ctl_commands[] = {
    {"status", "GET", "/vm", "the VM's name, pid, state, uptime, vCPUs and memory", PRINT_STATUS,
     NULL},
    {"pause", "PUT", "/vm/pause", "stop running the vCPUs; devices keep their state", PRINT_MESSAGE,
     "paused"},
    {"resume", "PUT", "/vm/resume", "run the vCPUs of a paused VM again", PRINT_MESSAGE, "resumed"},
    {"shutdown", "PUT", "/vm/shutdown", "ask the guest to power off", PRINT_MESSAGE,
     "shutting down"},
    {"reboot", "PUT", "/vm/reboot", "ask the guest to reboot", PRINT_MESSAGE, "rebooting"},
    {"counters", "GET", "/vm/counters", "each vCPU's exits and each device's counters",
     PRINT_COUNTERS, NULL},
};
#define CTL_COMMAND_COUNT (sizeof(ctl_commands) / sizeof(ctl_commands[0]))

static void print_help(FILE *out)
{
    fprintf(out, "usage: kiln ctl SOCKET COMMAND [--json]\n"
                 "\n"
                 "Sends one request to a running VM's control API (docs/api.md).\n"
                 "SOCKET is the VM's API socket: a path, or a VM's name or pid, looked up in\n"
                 "the run folder ($XDG_RUNTIME_DIR/kiln, or /tmp/kiln-UID; see kiln ps).\n"
                 "\n"
                 "commands:\n");
    for (size_t i = 0; i < CTL_COMMAND_COUNT; i++)
        fprintf(out, "  %-10s %s (%s %s)\n", ctl_commands[i].name, ctl_commands[i].help,
                ctl_commands[i].method, ctl_commands[i].path);
    fprintf(out,
            "\n"
            "flags:\n"
            "  --json      print the reply's JSON body, pretty-printed\n"
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

int ctl_main(int argc, char **argv)
{
    bool json = false;
    const char *positional[2];
    int npositional = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_help(stdout);
            return CTL_EXIT_OK;
        }
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (argv[i][0] == '-' && argv[i][1])
            return usage_error("unknown flag %s", argv[i]);
        else if (npositional == 2)
            return usage_error("unexpected argument '%s' (expected SOCKET COMMAND)", argv[i]);
        else
            positional[npositional++] = argv[i];
    }
    if (npositional < 2)
        return usage_error("%s", npositional ? "missing COMMAND after SOCKET"
                                             : "missing SOCKET and COMMAND");
    const struct ctl_command *command = find_command(positional[1]);
    if (!command) {
        char names[128] = "";
        for (size_t i = 0; i < CTL_COMMAND_COUNT; i++)
            snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? ", " : "",
                     ctl_commands[i].name);
        fprintf(stderr, "kiln ctl: error: unknown command '%s' (expected one of: %s)\n",
                positional[1], names);
        return CTL_EXIT_UNREACHABLE;
    }

    struct error err = {{0}};
    char socket_path[API_SOCKET_PATH_MAX * 3];
    int status = 0;
    json_t *reply = NULL;
    if (ctl_find_socket(positional[0], socket_path, sizeof(socket_path), &err) < 0 ||
        api_client_request(socket_path, command->method, command->path, NULL, CTL_TIMEOUT_MS,
                           &status, &reply, &err) < 0) {
        fprintf(stderr, "kiln ctl: error: %s\n", err.msg);
        return CTL_EXIT_UNREACHABLE;
    }
    int exit_status = CTL_EXIT_OK;
    if (status < 200 || status > 299) {
        const char *message = json_string_value(json_object_get(reply, "error"));
        if (message)
            fprintf(stderr, "kiln ctl: error: %s\n", message);
        else
            fprintf(stderr, "kiln ctl: error: %s %s: HTTP status %d\n", command->method,
                    command->path, status);
        exit_status = CTL_EXIT_API_ERROR;
    } else if (json) {
        json_t *empty = reply ? NULL : json_object(); /* 204: still one object */
        json_dumpf(reply ? reply : empty, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
        fputc('\n', stdout);
        json_decref(empty);
    } else {
        print_human(command, reply);
    }
    json_decref(reply);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "kiln ctl: error: writing to stdout: %s\n", strerror(errno));
        return CTL_EXIT_UNREACHABLE;
    }
    return exit_status;
}
