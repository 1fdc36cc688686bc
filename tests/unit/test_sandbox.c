/* The seccomp filters themselves: in a forked child, a thread installs one kind's filter and
 * makes one call; a forbidden call kills the child with SIGSYS, an allowed one goes through. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/sandbox/sandbox.h"

/* What the filtered thread does: returns the child's exit status (0 when the call behaved
 * as expected) unless the filter kills the process first. */
typedef int (*filtered_call)(void);

struct child_job {
    enum sandbox_thread kind;
    unsigned needs;
    enum sandbox_mode mode;
    filtered_call call;
};

static void *filtered_thread(void *arg)
{
    const struct child_job *job = arg;
    struct error err = {{0}};
    if (sandbox_enter(job->kind, job->needs, job->mode, &err) < 0) {
        ssize_t ignored = write(STDERR_FILENO, err.msg, strlen(err.msg));
        (void)ignored;
        _exit(90);
    }
    /* _exit straight from the filtered thread: a thread's own exit path (and a sanitizer's
     * hooks in it) is not what these tests are about. */
    _exit(job->call());
}

/* Runs job in a thread of a forked child; returns the child's wait status. stderr_out (if
 * not NULL) gets what the child wrote on stderr. */
static int run_in_child(const struct child_job *job, char *stderr_out, size_t size)
{
    int pipe_fds[2];
    assert_int_equal(pipe(pipe_fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(10); /* a child that hangs (a thread killed alone) fails instead of hanging */
        dup2(pipe_fds[1], STDERR_FILENO);
        close(pipe_fds[0]);
        pthread_t thread;
        if (pthread_create(&thread, NULL, filtered_thread, (void *)job) != 0)
            _exit(91);
        pthread_join(thread, NULL);
        _exit(92); /* not reached: the thread exits the process */
    }
    close(pipe_fds[1]);
    size_t used = 0;
    char sink[256];
    for (;;) {
        char *to = stderr_out && used + 1 < size ? stderr_out + used : sink;
        size_t room = stderr_out && used + 1 < size ? size - used - 1 : sizeof(sink);
        ssize_t n = read(pipe_fds[0], to, room);
        if (n <= 0)
            break;
        if (to != sink)
            used += (size_t)n;
    }
    if (stderr_out)
        stderr_out[used] = '\0';
    close(pipe_fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void expect_killed(enum sandbox_thread kind, unsigned needs, filtered_call call)
{
    struct child_job job = {kind, needs, SANDBOX_KILL, call};
    int status = run_in_child(&job, NULL, 0);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS)
        fail_msg("%s thread: expected death by SIGSYS, got %s %d", sandbox_thread_name(kind),
                 WIFSIGNALED(status) ? "signal" : "exit status",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

static void expect_allowed(enum sandbox_thread kind, unsigned needs, filtered_call call)
{
    struct child_job job = {kind, needs, SANDBOX_KILL, call};
    char err[512];
    int status = run_in_child(&job, err, sizeof(err));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("%s thread: expected exit 0, got %s %d (%s)", sandbox_thread_name(kind),
                 WIFSIGNALED(status) ? "signal" : "exit status",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), err);
}

/* A call no kind of thread makes: a network socket. */
static int open_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    return fd >= 0 ? 0 : 1;
}

/* Calls every kind makes: a log line (write), a lock (futex), memory (mmap/munmap). */
static int runtime_calls(void)
{
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    pthread_mutex_unlock(&lock);
    void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || munmap(p, 1 << 20) != 0)
        return 1;
    return write(STDERR_FILENO, "", 0) == 0 ? 0 : 2;
}

static int map_executable(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? 1 : 0;
}

/* KVM_RUN on no fd: the filter lets it through and the kernel says EBADF. */
static int kvm_run_ioctl(void)
{
    return ioctl(-1, KVM_RUN, 0) < 0 && errno == EBADF ? 0 : 1;
}

/* An ioctl the vCPU list does not name: a terminal's mode. */
static int terminal_ioctl(void)
{
    struct termios t;
    return ioctl(STDIN_FILENO, TCGETS, &t) == 0 ? 0 : 1;
}

/* The snapshot writer's diff-snapshot calls on no fd: let through, EBADF from the kernel. */
static int dirty_log_ioctl(void)
{
    return ioctl(-1, KVM_GET_DIRTY_LOG, 0) < 0 && errno == EBADF ? 0 : 1;
}

static int memory_region_ioctl(void)
{
    return ioctl(-1, KVM_SET_USER_MEMORY_REGION, 0) < 0 && errno == EBADF ? 0 : 1;
}

static int base_has_state(void) /* access(): a diff's base must hold a state.kiln */
{
    return access("/", F_OK) == 0 ? 0 : 1;
}

static int flush_no_fd(void)
{
    return fdatasync(-1) < 0 && errno == EBADF ? 0 : 1;
}

static int punch_no_fd(void)
{
    return fallocate(-1, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) < 0 && errno == EBADF
               ? 0
               : 1;
}

static int open_file(void)
{
    int fd = open("/dev/null", O_RDONLY);
    return fd >= 0 ? 0 : 1;
}

/* Pinning the calling thread to a CPU it already may use, as a vCPU thread does at its start. */
static int pin_to_a_cpu(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0)
        return 1;
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0 ? 0 : 1;
}

/* Removing a folder through its parent's fd, as leaving kiln's own cgroup does (the folder
 * need not exist: the call being allowed is what counts). */
static int remove_folder_at(void)
{
    return unlinkat(AT_FDCWD, "/nonexistent-kiln-cgroup", AT_REMOVEDIR) < 0 && errno == ENOENT ? 0
                                                                                               : 1;
}

/* The migration sender's one refused call: open fails (ENOSYS) and the thread lives on. */
static int open_fails_with_enosys(void)
{
    int fd = open("/dev/null", O_RDONLY);
    return fd < 0 && errno == ENOSYS ? 0 : 1;
}

static int epoll_no_fd(void)
{
    return syscall(SYS_epoll_ctl, -1, 2 /* EPOLL_CTL_DEL */, -1, NULL) < 0 && errno == EBADF ? 0
                                                                                             : 1;
}

static int execute_program(void)
{
    char *argv[] = {"/bin/true", NULL};
    execve("/bin/true", argv, NULL);
    return 1;
}

static int fork_process(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    return pid > 0 ? 0 : 1;
}

/* getpid through the 32-bit entry (int 0x80, i386's number 20): not the native ABI. */
static int call_32_bit(void)
{
    long result = 20;
    __asm__ volatile("int $0x80" : "+a"(result) : : "memory");
    return result > 0 ? 0 : 1;
}

static void *do_nothing(void *arg)
{
    return arg;
}

static int start_thread(void)
{
    pthread_t thread;
    if (pthread_create(&thread, NULL, do_nothing, NULL) != 0)
        return 1;
    return pthread_join(thread, NULL) == 0 ? 0 : 2;
}

static const enum sandbox_thread every_kind[] = {SANDBOX_THREAD_VCPU, SANDBOX_THREAD_LOOP,
                                                 SANDBOX_THREAD_IO_POOL};
#define KINDS (sizeof(every_kind) / sizeof(every_kind[0]))

static void test_forbidden_call_kills_each_kind(void **state)
{
    for (size_t i = 0; i < KINDS; i++) {
        expect_killed(every_kind[i], 0, open_socket);
        expect_killed(every_kind[i], 0, execute_program);
        expect_killed(every_kind[i], 0, map_executable);
        expect_killed(every_kind[i], 0, call_32_bit); /* the process, not just the thread */
    }
}

static void test_runtime_calls_pass_for_each_kind(void **state)
{
    for (size_t i = 0; i < KINDS; i++)
        expect_allowed(every_kind[i], 0, runtime_calls);
}

static void test_each_kind_has_its_own_list(void **state)
{
    expect_allowed(SANDBOX_THREAD_VCPU, 0, kvm_run_ioctl);
    expect_killed(SANDBOX_THREAD_VCPU, 0, terminal_ioctl); /* ioctl is checked by request */
    expect_killed(SANDBOX_THREAD_VCPU, 0, flush_no_fd);
    expect_allowed(SANDBOX_THREAD_IO_POOL, 0, flush_no_fd);
    expect_killed(SANDBOX_THREAD_IO_POOL, 0, kvm_run_ioctl);
    expect_killed(SANDBOX_THREAD_IO_POOL, 0, epoll_no_fd);
    expect_allowed(SANDBOX_THREAD_LOOP, 0, epoll_no_fd);
    expect_killed(SANDBOX_THREAD_LOOP, 0, kvm_run_ioctl);
    expect_killed(SANDBOX_THREAD_LOOP, 0, open_file);
    expect_killed(SANDBOX_THREAD_LOOP, 0, start_thread);
    expect_allowed(SANDBOX_THREAD_SNAPSHOT, 0, dirty_log_ioctl);
    expect_allowed(SANDBOX_THREAD_SNAPSHOT, 0, memory_region_ioctl);
    expect_allowed(SANDBOX_THREAD_SNAPSHOT, 0, base_has_state);
    expect_killed(SANDBOX_THREAD_SNAPSHOT, 0, kvm_run_ioctl);
    expect_killed(SANDBOX_THREAD_SNAPSHOT, 0, open_socket);
    /* The migration sender: its one connection and the dirty log, but no file (an open fails),
     * no KVM_RUN, no program. */
    expect_allowed(SANDBOX_THREAD_MIGRATE, 0, open_socket);
    expect_allowed(SANDBOX_THREAD_MIGRATE, 0, dirty_log_ioctl);
    expect_allowed(SANDBOX_THREAD_MIGRATE, 0, open_fails_with_enosys); /* glibc's malloc asks */
    expect_killed(SANDBOX_THREAD_MIGRATE, 0, kvm_run_ioctl);
    expect_killed(SANDBOX_THREAD_MIGRATE, 0, execute_program);
    /* The loop reads the dirty log once, at a migration's stop, but never opens a socket. */
    expect_allowed(SANDBOX_THREAD_LOOP, 0, dirty_log_ioctl);
    expect_killed(SANDBOX_THREAD_LOOP, 0, open_socket);
}

static void test_needs_widen_the_loop(void **state)
{
    expect_allowed(SANDBOX_THREAD_LOOP, SANDBOX_NEED_PTY, open_file);
    expect_allowed(SANDBOX_THREAD_LOOP, SANDBOX_NEED_REBUILD, open_file);
    /* Rebuilding starts vCPU threads: clone3 fails with ENOSYS, glibc falls back to clone. */
    expect_allowed(SANDBOX_THREAD_LOOP, SANDBOX_NEED_REBUILD, start_thread);
    /* ...but only threads: no new process, no other program. */
    expect_killed(SANDBOX_THREAD_LOOP, SANDBOX_NEED_REBUILD, fork_process);
    expect_killed(SANDBOX_THREAD_LOOP, SANDBOX_NEED_REBUILD, execute_program);
    /* Rebuilding starts vCPU threads that pin themselves (--cpus pin=) under its filter. */
    expect_allowed(SANDBOX_THREAD_LOOP, SANDBOX_NEED_REBUILD, pin_to_a_cpu);
    expect_killed(SANDBOX_THREAD_LOOP, 0, pin_to_a_cpu);
    /* Its own cgroup: the loop removes the folder at exit, and opens nothing for it. */
    expect_allowed(SANDBOX_THREAD_LOOP, SANDBOX_NEED_CGROUP, remove_folder_at);
    expect_killed(SANDBOX_THREAD_LOOP, 0, remove_folder_at);
    expect_killed(SANDBOX_THREAD_LOOP, SANDBOX_NEED_CGROUP, open_file);
    /* A balloon's loop punches pages out of guest RAM; a VM without one cannot. */
    expect_allowed(SANDBOX_THREAD_LOOP, SANDBOX_NEED_BALLOON, punch_no_fd);
    expect_killed(SANDBOX_THREAD_LOOP, 0, punch_no_fd);
}

/* The filter is the thread's: the thread that created it is not filtered. */
static void *filter_self(void *arg)
{
    struct error err = {{0}};
    return (void *)(intptr_t)sandbox_enter(SANDBOX_THREAD_VCPU, 0, SANDBOX_KILL, &err);
}

static void test_other_threads_are_not_filtered(void **state)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        pthread_t thread;
        void *result = NULL;
        if (pthread_create(&thread, NULL, filter_self, NULL) != 0)
            _exit(91);
        /* The filtered thread's exit makes only calls its list has (madvise, exit). */
        pthread_join(thread, &result);
        if (result != NULL)
            _exit(90);
        _exit(open_socket());
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* A filter built once (as a VM builds its threads' on the main thread) is loaded by each
 * thread of that kind; building it filters nobody. */
static void *load_and_call(void *arg)
{
    const struct sandbox_filter *filter = arg;
    struct error err = {{0}};
    if (sandbox_filter_load(filter, &err) < 0)
        return (void *)(intptr_t)95;
    return (void *)(intptr_t)runtime_calls();
}

static void *load_and_open_socket(void *arg)
{
    struct error err = {{0}};
    if (sandbox_filter_load(arg, &err) < 0)
        _exit(95);
    _exit(open_socket() == 0 ? 96 : 97); /* not reached: socket kills the process */
}

static void test_one_built_filter_serves_many_threads(void **state)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(10);
        struct sandbox_filter filter;
        struct error err = {{0}};
        if (sandbox_filter_build(&filter, SANDBOX_THREAD_VCPU, 0, SANDBOX_KILL, &err) < 0 ||
            filter.count == 0)
            _exit(90);
        pthread_t thread;
        void *result = NULL;
        if (pthread_create(&thread, NULL, load_and_call, &filter) != 0)
            _exit(91);
        pthread_join(thread, &result);
        if (result != NULL)
            _exit(92); /* the first thread's allowed calls failed */
        if (open_socket() != 0)
            _exit(93); /* the builder is not filtered */
        if (pthread_create(&thread, NULL, load_and_open_socket, &filter) != 0)
            _exit(91);
        pthread_join(thread, NULL);
        _exit(94);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS)
        fail_msg("expected the second thread's socket() to kill the process, got %s %d",
                 WIFSIGNALED(status) ? "signal" : "exit status",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

/* --seccomp log: the call fails with ENOSYS, kiln goes on, and stderr names the call. */
static int socket_fails_with_enosys(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    return fd < 0 && errno == ENOSYS ? 0 : 1;
}

static void test_log_mode_names_the_call(void **state)
{
    struct child_job job = {SANDBOX_THREAD_VCPU, 0, SANDBOX_LOG, socket_fails_with_enosys};
    char err[512];
    int status = run_in_child(&job, err, sizeof(err));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_string_equal(err, "kiln: seccomp: the vcpu thread called socket (syscall 41), which "
                             "its filter forbids; it fails with ENOSYS\n");
}

static void test_off_mode_filters_nothing(void **state)
{
    struct child_job job = {SANDBOX_THREAD_VCPU, 0, SANDBOX_OFF, open_socket};
    int status = run_in_child(&job, NULL, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* AddressSanitizer's runtime makes calls of its own on a filtered thread (it reads
 * /proc/self/maps, changes the signal stack at thread exit): the lists are kiln's, so these
 * tests run in the plain build only, and a sanitized kiln runs with --seccomp off. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

int main(void)
{
#ifdef SANITIZED
    fprintf(stderr, "SKIP: the sanitizers' runtime makes system calls outside kiln's lists\n");
    return 0;
#endif
    sandbox_prepare();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forbidden_call_kills_each_kind),
        cmocka_unit_test(test_runtime_calls_pass_for_each_kind),
        cmocka_unit_test(test_each_kind_has_its_own_list),
        cmocka_unit_test(test_needs_widen_the_loop),
        cmocka_unit_test(test_other_threads_are_not_filtered),
        cmocka_unit_test(test_one_built_filter_serves_many_threads),
        cmocka_unit_test(test_log_mode_names_the_call),
        cmocka_unit_test(test_off_mode_filters_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
