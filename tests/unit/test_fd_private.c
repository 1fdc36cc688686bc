/* Unit tests for private non-blocking descriptions of a shared pipe (kiln's stdout and stderr)
 * and for log lines meeting a stderr nobody reads: bounded, then dropped. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/util/fd_private.h"
#include "kiln/util/log.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_a_shared_pipe_end_gets_its_own_non_blocking_description(void **state)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    int shared = dup(p[1]); /* as a shell's stdout and kiln's share one description */
    fd_make_private_nonblocking(shared);
    assert_true(fcntl(shared, F_GETFL) & O_NONBLOCK);
    assert_false(fcntl(p[1], F_GETFL) & O_NONBLOCK); /* the other holder's is unchanged */
    struct stat a, b;
    assert_int_equal(fstat(shared, &a), 0);
    assert_int_equal(fstat(p[1], &b), 0);
    assert_int_equal(a.st_ino, b.st_ino); /* still the same pipe */
    assert_int_equal(write(shared, "x", 1), 1);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    close(shared);
    close(p[0]);
    close(p[1]);
}

static void test_a_regular_file_is_left_alone(void **state)
{
    FILE *f = tmpfile();
    int fd = fileno(f);
    int before = fcntl(fd, F_GETFL);
    assert_false(fd_waits_for_reader(fd));
    fd_make_private_nonblocking(fd);
    assert_int_equal(fcntl(fd, F_GETFL), before);
    fclose(f);
}

/* stderr a full pipe nobody reads: a log line gives up after a bounded wait. */
static void test_a_log_line_to_a_stalled_stderr_is_dropped_in_bounded_time(void **state)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fcntl(p[1], F_SETPIPE_SZ, 4096);
    int saved = dup(STDERR_FILENO);
    assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
    fd_make_private_nonblocking(STDERR_FILENO);
    char fill[4096];
    memset(fill, '.', sizeof(fill));
    while (write(STDERR_FILENO, fill, sizeof(fill)) > 0)
        ;
    struct log log;
    log_init(&log, LOG_WARN);
    int64_t start = now_ms();
    log_warn(&log, "nobody will read this");
    int64_t took = now_ms() - start;
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(p[0]);
    close(p[1]);
    assert_true(took >= 200);
    assert_true(took < 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_shared_pipe_end_gets_its_own_non_blocking_description),
        cmocka_unit_test(test_a_regular_file_is_left_alone),
        cmocka_unit_test(test_a_log_line_to_a_stalled_stderr_is_dropped_in_bounded_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
