/* kiln ps [--json]: every VM with a socket in the run folder, asked GET /vm (1 s each), as a
 * table or a JSON array. Sockets left by VMs that are gone are removed on the way. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kiln/api/api_client.h"
#include "kiln/api/api_socket.h"
#include "kiln/ctl/ctl.h"
#include "kiln/ctl/ctl_find.h"

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: kiln ps [--json]\n"
            "\n"
            "Lists the running VMs: each API socket in the run folder ($XDG_RUNTIME_DIR/kiln,\n"
            "or /tmp/kiln-UID), asked for its VM's status (1 s each). A socket nobody serves\n"
            "whose VM process is gone is removed; others that do not answer are listed as\n"
            "unreachable.\n"
            "\n"
            "flags:\n"
            "  --json      print a JSON array: each VM's GET /vm reply and its socket\n"
            "  --help, -h  this text\n");
}

/* A socket refused (nobody listens) whose file name's pid is no process: its VM is gone. */
static bool is_stale(const char *file_name, int request_error)
{
    char name[256];
    pid_t pid;
    if (request_error != -ECONNREFUSED ||
        !ctl_socket_name_split(file_name, name, sizeof(name), &pid))
        return false;
    return ctl_socket_owner_gone(pid);
}

/* One VM's row as a JSON object: its reply with "socket" added, or what is known of it. */
static json_t *ask_vm(const char *dir, const char *file_name)
{
    char path[API_SOCKET_PATH_MAX * 3];
    snprintf(path, sizeof(path), "%s/%s", dir, file_name);
    struct error err = {{0}};
    int status = 0;
    json_t *reply = NULL;
    int r = api_client_request(path, "GET", "/vm", NULL, PS_TIMEOUT_MS, &status, &reply, &err);
    if (r < 0 && is_stale(file_name, r)) {
        unlink(path);
        return NULL;
    }
    if (r == 0 && status == 200 && json_is_object(reply)) {
        json_object_set_new(reply, "socket", json_string(path));
        return reply;
    }
    if (r == 0)
        snprintf(err.msg, sizeof(err.msg), "GET /vm: HTTP status %d", status);
    json_decref(reply);
    char name[256];
    pid_t pid;
    json_t *row = json_object();
    if (ctl_socket_name_split(file_name, name, sizeof(name), &pid)) {
        json_object_set_new(row, "name", json_string(name));
        json_object_set_new(row, "pid", json_integer(pid));
    }
    json_object_set_new(row, "state", json_string("unreachable"));
    json_object_set_new(row, "socket", json_string(path));
    json_object_set_new(row, "error", json_string(err.msg));
    return row;
}

/* A field of a row as table text: "-" when missing. */
static void cell(const json_t *row, const char *key, const char *suffix, char *out, size_t len)
{
    json_t *value = json_object_get(row, key);
    if (json_is_integer(value))
        snprintf(out, len, "%lld%s", (long long)json_integer_value(value), suffix);
    else if (json_is_string(value))
        snprintf(out, len, "%s", json_string_value(value));
    else
        snprintf(out, len, "-");
}

/* The last column is not padded, so lines end without spaces. */
static void print_cell(const char *text, bool last, size_t width)
{
    if (last)
        printf("%s\n", text);
    else
        printf("%-*s  ", (int)width, text);
}

static void print_table(const json_t *rows)
{
    static const char *const keys[] = {"name", "pid", "state", "vcpus", "memory_mib", "socket"};
    static const char *const headers[] = {"NAME", "PID", "STATE", "VCPUS", "MEMORY", "SOCKET"};
    enum { COLUMNS = 6 };
    size_t widths[COLUMNS];
    for (int c = 0; c < COLUMNS; c++)
        widths[c] = strlen(headers[c]);
    size_t i;
    json_t *row;
    char text[512];
    json_array_foreach(rows, i, row)
    {
        for (int c = 0; c < COLUMNS; c++) {
            cell(row, keys[c], c == 4 ? "M" : "", text, sizeof(text));
            if (strlen(text) > widths[c])
                widths[c] = strlen(text);
        }
    }
    for (int c = 0; c < COLUMNS; c++)
        print_cell(headers[c], c == COLUMNS - 1, widths[c]);
    json_array_foreach(rows, i, row)
    {
        for (int c = 0; c < COLUMNS; c++) {
            cell(row, keys[c], c == 4 ? "M" : "", text, sizeof(text));
            print_cell(text, c == COLUMNS - 1, widths[c]);
        }
    }
}

int ps_main(int argc, char **argv)
{
    bool json = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_help(stdout);
            return CTL_EXIT_OK;
        }
        if (strcmp(argv[i], "--json") != 0) {
            fprintf(stderr, "kiln ps: error: unexpected argument '%s' (see 'kiln ps --help')\n",
                    argv[i]);
            return CTL_EXIT_UNREACHABLE;
        }
        json = true;
    }
    struct error err = {{0}};
    char dir[256];
    struct ctl_socket_list sockets;
    if (api_run_dir(dir, sizeof(dir), &err) < 0 || ctl_list_sockets(dir, &sockets, &err) < 0) {
        fprintf(stderr, "kiln ps: error: %s\n", err.msg);
        return CTL_EXIT_UNREACHABLE;
    }
    json_t *rows = json_array();
    for (size_t i = 0; i < sockets.count; i++) {
        json_t *row = ask_vm(dir, sockets.names[i]);
        if (row)
            json_array_append_new(rows, row);
    }
    ctl_socket_list_free(&sockets);
    if (json) {
        json_dumpf(rows, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
    } else {
        print_table(rows);
    }
    json_decref(rows);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "kiln ps: error: writing to stdout: %s\n", strerror(errno));
        return CTL_EXIT_UNREACHABLE;
    }
    return CTL_EXIT_OK;
}
