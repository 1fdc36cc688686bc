/* --seccomp log: a SIGSYS handler that names each forbidden call on stderr and makes it fail
 * with ENOSYS, so one run shows every call a filter lacks. */
#include <errno.h>
#include <linux/audit.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include "kiln/sandbox/sandbox.h"

#define NAME_BYTES 32

/* The handler may not allocate (the trapped thread may hold malloc's lock), so every name is
 * looked up once, before the first filter. Process-wide because a signal handler has no other
 * way to reach it; written once under pthread_once, then only read. */
static char syscall_names[SANDBOX_MAX_SYSCALL][NAME_BYTES];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;
/* The reporting thread's kind, for the report: thread-local, set before its filter. */
static __thread const char *thread_kind;

static void look_up_names(void)
{
    for (int nr = 0; nr < SANDBOX_MAX_SYSCALL; nr++) {
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        if (name) {
            strncpy(syscall_names[nr], name, NAME_BYTES - 1);
            free(name);
        }
    }
}

/* Appends text to a line being built in buf; async-signal-safe (no stdio). */
static size_t append(char *buf, size_t used, size_t size, const char *text)
{
    while (*text && used + 1 < size)
        buf[used++] = *text++;
    return used;
}

static size_t append_number(char *buf, size_t used, size_t size, unsigned value)
{
    char digits[12];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value && n < sizeof(digits));
    while (n > 0 && used + 1 < size)
        buf[used++] = digits[--n];
    return used;
}

static void on_forbidden_call(int signo, siginfo_t *info, void *context)
{
    (void)signo;
    int saved_errno = errno;
    unsigned nr = (unsigned)info->si_syscall;
    const char *name = nr < SANDBOX_MAX_SYSCALL && syscall_names[nr][0] ? syscall_names[nr] : "?";
    if (info->si_arch != AUDIT_ARCH_X86_64)
        name = "a 32-bit call"; /* int 0x80: its numbers are not the table's */
    char line[200];
    size_t n = append(line, 0, sizeof(line), "kiln: seccomp: the ");
    n = append(line, n, sizeof(line), thread_kind ? thread_kind : "unfiltered");
    n = append(line, n, sizeof(line), " thread called ");
    n = append(line, n, sizeof(line), name);
    n = append(line, n, sizeof(line), " (syscall ");
    n = append_number(line, n, sizeof(line), nr);
    n = append(line, n, sizeof(line), "), which its filter forbids; it fails with ENOSYS\n");
    ssize_t ignored = write(STDERR_FILENO, line, n);
    (void)ignored;
    /* The call did not run: its result register gets the failure instead. */
    ucontext_t *uc = context;
    uc->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
    errno = saved_errno;
}

int sandbox_reporter_install(const char *kind_name, struct error *err)
{
    pthread_once(&names_once, look_up_names);
    thread_kind = kind_name;
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_sigaction = on_forbidden_call;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGSYS, &action, NULL) < 0)
        return error_fmt(err, -errno, "seccomp: cannot install the SIGSYS reporter: %s",
                         strerror(errno));
    return 0;
}
