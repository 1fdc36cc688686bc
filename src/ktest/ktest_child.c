/* The VM side of `kiln test`: a kiln started by the runner (KILN_TEST_RUNNER_PID in its
 * environment) dies with the runner, so a runner killed outright leaves no VM behind. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "kiln/ktest/ktest.h"

int ktest_child_setup(void)
{
    const char *value = getenv(KTEST_RUNNER_ENV);
    if (!value)
        return 0;
    char *end = NULL;
    long runner = strtol(value, &end, 10);
    bool valid = *value && !*end && runner > 0;
    unsetenv(KTEST_RUNNER_ENV);
    if (!valid)
        return 0;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        return -errno;
    /* The runner may have died before the line above. */
    if (getppid() != (pid_t)runner)
        return -ESRCH;
    return 0;
}
