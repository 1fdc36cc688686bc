/* kiln receive's command line (docs/migration.md): where to listen, the key, how long to wait,
 * and the `kiln run` flags a received VM may change, turned into a `kiln run FILE ...` argv. */
#ifndef KILN_RECEIVE_ARGS_H
#define KILN_RECEIVE_ARGS_H

#include <stdbool.h>

#include "kiln/util/error.h"
#include "run_argv.h"

struct receive_args {
    char *listen;        /* --listen unix:PATH|tcp:HOST:PORT */
    char *psk_file;      /* --psk-file: the sender must use the same key */
    int timeout_s;       /* --timeout-s: how long to wait for a sender (-1: forever) */
    bool help;           /* --help */
    bool api_given;      /* --api-socket given: else the source's own is not reused */
    struct run_argv run; /* kiln run CONFIG [the run flags given] */
};

/* argv: "kiln", "receive", ... Every problem is one line in err. */
int receive_args_parse(int argc, char **argv, struct receive_args *out, struct error *err);
void receive_args_free(struct receive_args *args);
const char *receive_args_usage(void);

#endif
