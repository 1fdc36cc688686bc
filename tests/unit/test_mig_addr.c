/* Unit tests for migration addresses: the unix, tcp and [IPv6] forms, every bad form with its
 * line, and names resolved only by mig_addr_resolve (kiln ctl), never by mig_addr_parse. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/migrate/mig_addr.h"

static void test_unix_path(void **state)
{
    struct mig_addr a;
    struct error err = {0};
    assert_int_equal(mig_addr_parse("unix:/run/kiln/mig.sock", &a, &err), 0);
    assert_int_equal(a.kind, MIG_ADDR_UNIX);
    assert_string_equal(a.path, "/run/kiln/mig.sock");
    assert_string_equal(a.text, "unix:/run/kiln/mig.sock");
}

static void test_tcp_ipv4(void **state)
{
    struct mig_addr a;
    struct error err = {0};
    assert_int_equal(mig_addr_parse("tcp:10.0.0.2:4000", &a, &err), 0);
    assert_int_equal(a.kind, MIG_ADDR_TCP);
    assert_string_equal(a.host, "10.0.0.2");
    assert_int_equal(a.port, 4000);
    assert_int_equal(mig_addr_parse("tcp:0.0.0.0:65535", &a, &err), 0);
    assert_int_equal(a.port, 65535);
}

static void test_tcp_ipv6(void **state)
{
    struct mig_addr a;
    struct error err = {0};
    assert_int_equal(mig_addr_parse("tcp:[::1]:1", &a, &err), 0);
    assert_int_equal(a.kind, MIG_ADDR_TCP);
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.port, 1);
    char text[64];
    assert_int_equal(mig_addr_format(&a, text, sizeof(text)), 0);
    assert_string_equal(text, "tcp:[::1]:1");
    assert_int_equal(mig_addr_parse("tcp:[fd00::2:3]:7000", &a, &err), 0);
    assert_string_equal(a.host, "fd00::2:3");
}

/* Each bad form: its code and the words a user needs to fix it. */
static void expect_bad(const char *text, int code, const char *words)
{
    struct mig_addr a;
    struct error err = {0};
    assert_int_equal(mig_addr_parse(text, &a, &err), code);
    if (!strstr(err.msg, words))
        fail_msg("'%s' gave \"%s\", expected it to say \"%s\"", text, err.msg, words);
    assert_null(strchr(err.msg, '\n'));
}

static void test_bad_forms(void **state)
{
    expect_bad("tcp:x", -EINVAL,
               "migration address 'tcp:x': no port (expected unix:PATH or "
               "tcp:HOST:PORT)");
    expect_bad("/run/mig.sock", -EINVAL,
               "migration address '/run/mig.sock': expected unix:PATH or tcp:HOST:PORT");
    expect_bad("", -EINVAL, "migration address '': expected unix:PATH or tcp:HOST:PORT");
    expect_bad("udp:1.2.3.4:5", -EINVAL, "expected unix:PATH or tcp:HOST:PORT");
    expect_bad("unix:", -EINVAL, "migration address 'unix:': expected unix:PATH with a PATH");
    expect_bad("tcp:1.2.3.4:0", -EINVAL, "port '0' is not a number from 1 to 65535");
    expect_bad("tcp:1.2.3.4:70000", -EINVAL, "port '70000' is not a number from 1 to 65535");
    expect_bad("tcp:1.2.3.4:99999999999999999999", -EINVAL, "is not a number from 1 to 65535");
    expect_bad("tcp:1.2.3.4:http", -EINVAL, "port 'http' is not a number from 1 to 65535");
    expect_bad("tcp:1.2.3.4:-1", -EINVAL, "port '-1' is not a number");
    expect_bad("tcp:1.2.3.4:", -EINVAL, "no port");
    expect_bad("tcp::4000", -EINVAL, "no host");
    expect_bad("tcp:[]:4000", -EINVAL, "no host");
    expect_bad("tcp:example.com:4000", -EINVAL,
               "'example.com' is not a numeric IPv4 or [IPv6] address (host names are resolved "
               "by kiln ctl");
    expect_bad("tcp:::1:4000", -EINVAL, "an IPv6 address needs brackets");
    expect_bad("tcp:[::1]4000", -EINVAL, "expected tcp:[IPV6]:PORT");
    expect_bad("tcp:[10.0.0.1]:4000", -EINVAL, "'10.0.0.1' is not a numeric IPv6 address");
}

static void test_path_too_long(void **state)
{
    char text[150] = "unix:/";
    memset(text + 6, 'a', 107); /* a 108-byte path: one more than a sun_path holds */
    expect_bad(text, -ENAMETOOLONG, "the path is 108 bytes, a socket path is at most 107");
    text[5 + 107] = '\0'; /* 107 bytes: fits */
    struct mig_addr a;
    struct error err = {0};
    assert_int_equal(mig_addr_parse(text, &a, &err), 0);
    assert_int_equal(strlen(a.path), 107);
    char huge[300];
    memset(huge, 'a', sizeof(huge) - 1);
    memcpy(huge, "unix:", 5);
    huge[sizeof(huge) - 1] = '\0';
    expect_bad(huge, -ENAMETOOLONG, "299 bytes, at most 199");
}

/* A name is turned into a number by resolve (localhost needs no DNS: /etc/hosts). */
static void test_resolve_names(void **state)
{
    struct mig_addr a;
    struct error err = {0};
    assert_int_equal(mig_addr_resolve("tcp:localhost:4000", &a, &err), 0);
    assert_true(strcmp(a.host, "127.0.0.1") == 0 || strcmp(a.host, "::1") == 0);
    assert_int_equal(a.port, 4000);
    assert_string_equal(a.text, "tcp:localhost:4000");
    char numeric[64];
    assert_int_equal(mig_addr_format(&a, numeric, sizeof(numeric)), 0);
    assert_true(strcmp(numeric, "tcp:127.0.0.1:4000") == 0 ||
                strcmp(numeric, "tcp:[::1]:4000") == 0);
    assert_int_equal(mig_addr_format(&a, numeric, 8), -ENAMETOOLONG);
    assert_int_equal(mig_addr_resolve("tcp:10.1.2.3:9", &a, &err), 0);
    assert_string_equal(a.host, "10.1.2.3");
    assert_int_equal(mig_addr_resolve("unix:/tmp/x", &a, &err), 0);
    assert_string_equal(a.path, "/tmp/x");
    assert_int_equal(mig_addr_format(&a, numeric, sizeof(numeric)), 0);
    assert_string_equal(numeric, "unix:/tmp/x");
    assert_int_equal(mig_addr_resolve("tcp:no-such-host.invalid:9", &a, &err), -EHOSTUNREACH);
    assert_non_null(strstr(err.msg, "cannot resolve 'no-such-host.invalid'"));
    assert_int_equal(mig_addr_resolve("tcp:localhost:0", &a, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "port '0'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unix_path),     cmocka_unit_test(test_tcp_ipv4),
        cmocka_unit_test(test_tcp_ipv6),      cmocka_unit_test(test_bad_forms),
        cmocka_unit_test(test_path_too_long), cmocka_unit_test(test_resolve_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
