/* Command-line parsing: `kiln run|validate|config [VM.yaml] [flags]`, `kiln --help`,
 * `kiln --version`. Turns argv into a cli_request holding a struct vm_config; the flags given
 * with a YAML file override the file's values. No I/O besides what it returns. */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "kiln/config/config.h"
#include "kiln/config/config_yaml.h"
#include "kiln/util/error.h"

enum cli_action {
    CLI_ACTION_RUN,      /* start a VM from req->config */
    CLI_ACTION_HELP,     /* print cli_print_help() and exit 0 */
    CLI_ACTION_RUN_HELP, /* print cli_print_run_help() and exit 0 */
    CLI_ACTION_VERSION,  /* print "kiln VERSION" and exit 0 */
    CLI_ACTION_VALIDATE, /* check req->config (file, flags, files it names); exit 0 or 1 */
    CLI_ACTION_CONFIG,   /* print req->config as YAML; exit 0 or 1 */
};

struct cli_request {
    enum cli_action action;         /* also set when cli_parse fails, once the command is known */
    struct vm_config config;        /* the flags; with a file, cli_load puts the file under them */
    char *file;                     /* the YAML VM definition named on the command line, or NULL */
    bool given[CONFIG_FIELD_COUNT]; /* the settings the flags set, which the file cannot */
    struct config_yaml_origin origin; /* where the file's values were, for messages */
};

/* Parses argv (argv[0] is the program name). On success returns 0 and the request is filled
 * (call cli_request_free afterwards). On error returns -EINVAL with one line in err naming the
 * flag, the value and what was expected, e.g.
 *   "--memory: '12Q' is not a size (expected a number with an optional K, M or G suffix)".
 * A YAML file is only named here; cli_load reads it. */
int cli_parse(int argc, char **argv, struct cli_request *req, struct error *err);

/* Makes req->config the effective configuration: the YAML file (if any) with the flags applied
 * over it, then runs the validation pass (check_files: also the files it names). Every
 * problem goes to problems, named the way the user wrote the setting ("--cpus" or
 * "vm.yaml:3:7: cpus"). Returns 0, or the first problem's negative errno. */
int cli_load(struct cli_request *req, bool check_files, struct config_problems *problems);

void cli_request_free(struct cli_request *req);

void cli_print_help(FILE *out);
void cli_print_run_help(FILE *out);

#endif
