/* kiln restore's command line (docs/snapshots.md): the snapshot folder, --paused and
 * --memory-restore, and the few `kiln run` flags a restored VM may change, passed on. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "restore_args.h"
#include "kiln/snapshot/snap_dir.h"
#include "kiln/vm/vm_snapshot.h"

const char *restore_args_usage(void)
{
    return "usage: kiln restore DIR [--paused] [--clone] [--memory-restore lazy|copy]\n"
           "                        [--api-socket PATH] [--net SPEC]... [--console SINK]\n"
           "                        [--vconsole SINK] [--name NAME] [--log-level LEVEL]\n"
           "                        [--seccomp MODE] [--shutdown-grace S] [--on-reset ACTION]\n"
           "Starts the VM a snapshot in DIR holds (kiln ctl SOCKET snapshot DIR) where it was.\n"
           "Every restore gives the guest a new ACPI VM generation ID.\n"
           "  --paused               the vCPUs wait for `kiln ctl SOCKET resume`\n"
           "  --clone                new MACs for the network devices (from a new --name, else\n"
           "                         random), except a mac= given here with --net\n"
           "  --memory-restore MODE  lazy: map the memory file, pages read as the guest touches\n"
           "                         them (default); copy: read it all in first\n"
           "  --net SPEC             replaces the snapshot's network devices (give one per NIC),\n"
           "                         e.g. another TAP for a clone\n"
           "  --help, -h             this text\n"
           "The other flags are kiln run's; the rest of the VM is the snapshot's.\n"
           "--api-socket: the snapshot's socket is not reused unless given again.\n";
}

int restore_args_parse(int argc, char **argv, struct restore_args *out, struct error *err)
{
    memset(out, 0, sizeof(*out));
    int r = run_argv_start(&out->run, argv[0], argc, err); /* the config: once DIR is known */
    for (int i = 2; r == 0 && i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            out->help = true;
        } else if (strcmp(arg, "--paused") == 0) {
            out->paused = true;
        } else if (strcmp(arg, "--clone") == 0) {
            out->clone = true;
        } else if (strcmp(arg, "--memory-restore") == 0) {
            const char *mode = i + 1 < argc ? argv[++i] : NULL;
            if (mode && strcmp(mode, "lazy") == 0)
                out->copy_memory = false;
            else if (mode && strcmp(mode, "copy") == 0)
                out->copy_memory = true;
            else
                r = error_fmt(err, -EINVAL, "--memory-restore: '%s' (expected lazy or copy)",
                              mode ? mode : "");
        } else if (run_argv_is_passed_flag(arg)) {
            out->api_given |= strcmp(arg, "--api-socket") == 0;
            out->net_given |= strcmp(arg, "--net") == 0;
            out->name_given |= strcmp(arg, "--name") == 0;
            r = run_argv_pass(&out->run, argc, argv, &i, err);
        } else if (arg[0] == '-') {
            r = error_fmt(err, -EINVAL,
                          "kiln restore: %s cannot be given: the VM is the snapshot's (a restore "
                          "takes --paused, --clone, --memory-restore, --api-socket, --net, "
                          "--console, "
                          "--vconsole, --name, --log-level, --seccomp, --shutdown-grace, "
                          "--on-reset)",
                          arg);
        } else if (!out->dir) {
            out->dir = strdup(arg);
            if (!out->dir)
                r = error_fmt(err, -ENOMEM, "out of memory");
        } else {
            r = error_fmt(err, -EINVAL, "kiln restore: '%s': one snapshot folder only (already %s)",
                          arg, out->dir);
        }
    }
    if (r == 0 && !out->dir && !out->help)
        r = error_fmt(err, -EINVAL,
                      "kiln restore: no snapshot folder (usage: kiln restore DIR ...)");
    if (r == 0 && out->dir) {
        char *config = NULL;
        r = asprintf(&config, "%s/%s", out->dir, SNAP_CONFIG_FILE) < 0
                ? error_fmt(err, -ENOMEM, "out of memory")
                : run_argv_set_config(&out->run, config, err);
        free(config);
    }
    return r;
}

void restore_args_free(struct restore_args *args)
{
    run_argv_free(&args->run);
    free(args->dir);
    memset(args, 0, sizeof(*args));
}
