/* kiln receive's command line (docs/migration.md): --listen, --psk-file, --timeout-s and the
 * few `kiln run` flags a received VM may change (as for a restore), passed on. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "receive_args.h"

const char *receive_args_usage(void)
{
    return "usage: kiln receive --listen unix:PATH|tcp:HOST:PORT [--psk-file FILE]\n"
           "                    [--timeout-s N] [--api-socket PATH] [--net SPEC]...\n"
           "                    [--console SINK] [--vconsole SINK] [--name NAME]\n"
           "                    [--log-level LEVEL] [--seccomp MODE] [--shutdown-grace S]\n"
           "                    [--on-reset ACTION]\n"
           "Waits for one VM that `kiln ctl SOCKET migrate ADDRESS` sends, and runs it from where\n"
           "it was once the source has handed it over.\n"
           "  --listen ADDRESS  where the sender connects: a Unix socket path, or a TCP address\n"
           "  --psk-file FILE   a pre-shared key (64 hex digits, mode 0600): the stream is\n"
           "                    encrypted and authenticated, and the sender must use the same\n"
           "  --timeout-s N     give up if no sender has connected within N seconds\n"
           "  --net SPEC        replaces the source's network devices (give one per NIC)\n"
           "  --help, -h        this text\n"
           "The other flags are kiln run's; the rest of the VM is the source's.\n"
           "--api-socket: the source's socket is not reused unless given again.\n";
}

/* The value after a flag, or one line saying it is missing. */
static const char *value_of(int argc, char **argv, int *i, struct error *err)
{
    if (*i + 1 >= argc) {
        error_fmt(err, -EINVAL, "%s: missing value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

static int set_text(char **field, const char *flag, const char *value, struct error *err)
{
    if (*field)
        return error_fmt(err, -EINVAL, "%s: given twice", flag);
    *field = strdup(value);
    return *field ? 0 : error_fmt(err, -ENOMEM, "out of memory");
}

int receive_args_parse(int argc, char **argv, struct receive_args *out, struct error *err)
{
    memset(out, 0, sizeof(*out));
    out->timeout_s = -1;
    int r = run_argv_start(&out->run, argv[0], argc, err); /* the config: once received */
    for (int i = 2; r == 0 && i < argc; i++) {
        const char *arg = argv[i], *value = NULL;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            out->help = true;
        } else if (strcmp(arg, "--listen") == 0 || strcmp(arg, "--psk-file") == 0) {
            value = value_of(argc, argv, &i, err);
            r = !value                         ? -EINVAL
                : strcmp(arg, "--listen") == 0 ? set_text(&out->listen, arg, value, err)
                                               : set_text(&out->psk_file, arg, value, err);
        } else if (strcmp(arg, "--timeout-s") == 0) {
            value = value_of(argc, argv, &i, err);
            char *end = NULL;
            long n = value ? strtol(value, &end, 10) : 0;
            if (!value)
                r = -EINVAL;
            else if (!*value || *end || n < 1 || n > 86400)
                r = error_fmt(err, -EINVAL, "--timeout-s: '%s' (expected seconds from 1 to 86400)",
                              value);
            else
                out->timeout_s = (int)n;
        } else if (run_argv_is_passed_flag(arg)) {
            out->api_given |= strcmp(arg, "--api-socket") == 0;
            r = run_argv_pass(&out->run, argc, argv, &i, err);
        } else {
            r = error_fmt(err, -EINVAL,
                          "kiln receive: %s cannot be given: the VM is the source's (a receive "
                          "takes --listen, --psk-file, --timeout-s, --api-socket, --net, "
                          "--console, --vconsole, --name, --log-level, --seccomp, "
                          "--shutdown-grace, --on-reset)",
                          arg);
        }
    }
    if (r == 0 && !out->listen && !out->help)
        r = error_fmt(err, -EINVAL,
                      "kiln receive: no --listen (expected --listen unix:PATH or tcp:HOST:PORT)");
    return r;
}

void receive_args_free(struct receive_args *args)
{
    run_argv_free(&args->run);
    free(args->listen);
    free(args->psk_file);
    memset(args, 0, sizeof(*args));
}
