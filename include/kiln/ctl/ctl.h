/* kiln ctl and kiln ps: the control API's commands for a user at a shell. main() hands them
 * the whole argv ("kiln", "ctl", ...); each returns the process's exit status. */
#ifndef KILN_CTL_H
#define KILN_CTL_H

/* Exit statuses: the request worked (2xx); the VM answered with an error; the VM could not be
 * reached, or its answer was not HTTP with JSON (125, as for kiln's own errors). */
#define CTL_EXIT_OK          0
#define CTL_EXIT_API_ERROR   1
#define CTL_EXIT_UNREACHABLE 125

/* How long kiln ctl waits for a VM's reply, and kiln ps for each VM's. */
#define CTL_TIMEOUT_MS 5000
#define PS_TIMEOUT_MS  1000

int ctl_main(int argc, char **argv);
int ps_main(int argc, char **argv);

#endif
