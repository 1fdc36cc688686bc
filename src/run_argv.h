/* The `kiln run CONFIG [flags]` command line that kiln restore and kiln receive build from
 * their own: the few run flags a restored or received VM may change, copied after it. */
#ifndef KILN_RUN_ARGV_H
#define KILN_RUN_ARGV_H

#include <stdbool.h>

#include "kiln/util/error.h"

struct run_argv {
    int argc; /* argv0 "run" CONFIG [the run flags given]; argv[argc] is NULL */
    char **argv;
};

/* Room for max_flags more arguments after "ARGV0 run CONFIG" (CONFIG empty until
 * run_argv_set_config). 0 or -ENOMEM. */
int run_argv_start(struct run_argv *r, const char *argv0, int max_flags, struct error *err);
/* The config file's path (argv[2]). */
int run_argv_set_config(struct run_argv *r, const char *path, struct error *err);
/* Whether arg is a run flag a restored or received VM may change: where it meets the host
 * (TAPs, consoles, its API socket, its name) and how kiln runs it, never the machine. */
bool run_argv_is_passed_flag(const char *arg);
/* argv[*i] is such a flag: it and its value are copied, and *i moves past the value. */
int run_argv_pass(struct run_argv *r, int argc, char **argv, int *i, struct error *err);
void run_argv_free(struct run_argv *r);

#endif
