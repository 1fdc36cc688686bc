/* kiln's entry point: parse the command line, then build, run and tear down one VM.
 * The only place that prints fatal errors and chooses the process exit status. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "kiln/cli.h"
#include "kiln/vm.h"

static int run_vm(const struct vm_config *config)
{
    struct error err = {{0}};
    if (config_validate(config, &err) < 0) {
        fprintf(stderr, "kiln: error: %s\n", err.msg);
        return EXIT_KILN_ERROR;
    }
    struct vm *vm = calloc(1, sizeof(*vm));
    if (!vm) {
        fprintf(stderr, "kiln: error: out of memory\n");
        return EXIT_KILN_ERROR;
    }
    int status;
    if (vm_create(vm, config, &err) < 0) {
        fprintf(stderr, "kiln: error: %s\n", err.msg);
        free(vm);
        return EXIT_KILN_ERROR;
    }
    if (vm_run(vm, &err) < 0) {
        vm_destroy(vm);
        fprintf(stderr, "kiln: error: %s\n", err.msg);
        free(vm);
        return EXIT_KILN_ERROR;
    }
    /* Tear down first so the terminal is restored before we print. */
    struct vm_result result = vm->result;
    struct log log = vm->log;
    vm_destroy(vm);
    free(vm);
    status = result.exit_status;
    switch (result.reason) {
    case VM_STOP_TEST_EXIT:
    case VM_STOP_POWER_OFF:
        log_info(&log, "%s", result.message);
        break;
    case VM_STOP_CRASH:
        fprintf(stderr, "kiln: error: %s\n", result.message);
        break;
    default:
        fprintf(stderr, "kiln: %s\n", result.message);
        break;
    }
    return status;
}

int main(int argc, char **argv)
{
    /* A closed console pipe must not kill the VMM; writes report EPIPE instead. */
    signal(SIGPIPE, SIG_IGN);

    struct cli_request request;
    struct error err = {{0}};
    if (cli_parse(argc, argv, &request, &err) < 0) {
        fprintf(stderr, "kiln: error: %s\n", err.msg);
        return EXIT_KILN_ERROR;
    }
    int status = 0;
    switch (request.action) {
    case CLI_ACTION_HELP:
        cli_print_help(stdout);
        break;
    case CLI_ACTION_RUN_HELP:
        cli_print_run_help(stdout);
        break;
    case CLI_ACTION_VERSION:
        printf("kiln %s\n", KILN_VERSION);
        break;
    case CLI_ACTION_RUN:
        status = run_vm(&request.config);
        break;
    }
    cli_request_free(&request);
    return status;
}
