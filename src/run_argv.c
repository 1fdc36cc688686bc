/* The `kiln run` command line a restore or a receive runs its VM with (run_argv.h): kiln run's
 * own parser then checks the flags passed on, as it does for kiln run. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "run_argv.h"

static const char *const passed_flags[] = {
    "--api-socket", "--net",     "--console",        "--vconsole", "--log-level",
    "--name",       "--seccomp", "--shutdown-grace", "--on-reset"};

static int push(struct run_argv *r, const char *arg, struct error *err)
{
    char *copy = strdup(arg);
    if (!copy)
        return error_fmt(err, -ENOMEM, "out of memory");
    r->argv[r->argc++] = copy;
    r->argv[r->argc] = NULL;
    return 0;
}

int run_argv_start(struct run_argv *r, const char *argv0, int max_flags, struct error *err)
{
    r->argc = 0;
    r->argv = calloc((size_t)max_flags + 4, sizeof(char *));
    if (!r->argv)
        return error_fmt(err, -ENOMEM, "out of memory");
    int rc = push(r, argv0, err);
    if (rc == 0)
        rc = push(r, "run", err);
    if (rc == 0)
        rc = push(r, "", err);
    return rc;
}

int run_argv_set_config(struct run_argv *r, const char *path, struct error *err)
{
    char *copy = strdup(path);
    if (!copy)
        return error_fmt(err, -ENOMEM, "out of memory");
    free(r->argv[2]);
    r->argv[2] = copy;
    return 0;
}

bool run_argv_is_passed_flag(const char *arg)
{
    for (size_t i = 0; i < sizeof(passed_flags) / sizeof(passed_flags[0]); i++)
        if (strcmp(arg, passed_flags[i]) == 0)
            return true;
    return false;
}

int run_argv_pass(struct run_argv *r, int argc, char **argv, int *i, struct error *err)
{
    if (*i + 1 >= argc)
        return error_fmt(err, -EINVAL, "%s: missing value", argv[*i]);
    int rc = push(r, argv[*i], err);
    if (rc == 0)
        rc = push(r, argv[*i + 1], err);
    *i += 1;
    return rc;
}

void run_argv_free(struct run_argv *r)
{
    for (int i = 0; r->argv && i < r->argc; i++)
        free(r->argv[i]);
    free(r->argv);
    r->argv = NULL;
    r->argc = 0;
}
