/* Command-line parsing: `kiln run --kernel ...`, `kiln --help`, `kiln --version`.
 * Turns argv into a cli_request holding a struct vm_config; no I/O besides what it returns. */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include <stdio.h>

#include "kiln/config.h"
#include "kiln/error.h"

enum cli_action {
    CLI_ACTION_RUN,      /* start a VM from req->config */
    CLI_ACTION_HELP,     /* print cli_print_help() and exit 0 */
    CLI_ACTION_RUN_HELP, /* print cli_print_run_help() and exit 0 */
    CLI_ACTION_VERSION,  /* print "kiln VERSION" and exit 0 */
};

struct cli_request {
    enum cli_action action;
    struct vm_config config; /* valid when action == CLI_ACTION_RUN */
};

/* Parses argv (argv[0] is the program name). On success returns 0 and the request is filled
 * (call cli_request_free afterwards). On error returns -EINVAL with one line in err naming the
 * flag, the value and what was expected, e.g.
 *   "--memory: '12Q' is not a size (expected a number with an optional K, M or G suffix)". */
int cli_parse(int argc, char **argv, struct cli_request *req, struct error *err);
void cli_request_free(struct cli_request *req);

void cli_print_help(FILE *out);
void cli_print_run_help(FILE *out);

#endif
