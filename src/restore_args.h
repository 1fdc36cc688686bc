/* kiln restore's command line (docs/snapshots.md): the snapshot folder, its own flags, and the
 * `kiln run` flags a restore may change, turned into a `kiln run DIR/config.yaml ...` argv. */
#ifndef KILN_RESTORE_ARGS_H
#define KILN_RESTORE_ARGS_H

#include <stdbool.h>

#include "kiln/util/error.h"
#include "run_argv.h"

struct restore_args {
    char *dir;           /* the snapshot folder, as given */
    bool help;           /* --help: print restore_args_usage and exit 0 */
    bool paused;         /* --paused: the vCPUs wait for `kiln ctl SOCKET resume` */
    bool copy_memory;    /* --memory-restore copy (default lazy: mapped from the file) */
    bool clone;          /* --clone: new MACs (config_net_clone_macs) */
    bool api_given;      /* --api-socket was given: else the snapshot's own is not reused */
    bool net_given;      /* --net was given: the NICs are these, not the snapshot's */
    bool name_given;     /* --name was given */
    struct run_argv run; /* kiln run CONFIG [the run flags given] */
};

/* argv: "kiln", "restore", ... Every problem is one line in err. */
int restore_args_parse(int argc, char **argv, struct restore_args *out, struct error *err);
void restore_args_free(struct restore_args *args);
const char *restore_args_usage(void);

#endif
