/* A test whose external tool is missing fails at once, naming the Debian
 * package, instead of waiting out its timeout (issue 15, item 7: without
 * nc or socat four ip_stats_listen tests waited 60 s each). Runs those test
 * programs with an empty PATH, under a bound far below their 60 s waits. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rill_test.h"
#include "run_cmd.h"

#define TESTS RILL_BIN_DIR "/tests"
#define BOUND_S 20

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run test program prog (filter: its tests that use tools) with PATH
 * empty; it must fail (status 1) within BOUND_S, naming each package. */
static void fails_fast(const char *prog, const char *filter, const char *const *packages,
                       int *ok) {
    char cmd[1024], out[16384];
    snprintf(cmd, sizeof cmd,
             "timeout %d env PATH=/nonexistent-rill-path '%s/%s' --gtest_filter='%s' 2>&1",
             BOUND_S, TESTS, prog, filter);
    double t0 = now_s();
    int rc = run(cmd, out, sizeof out);
    double took = now_s() - t0;
    *ok = rc == 1 && took < BOUND_S;
    for (; *ok && *packages; packages++)
        *ok = strstr(out, *packages) != NULL;
    if (!*ok)
        rill_test__failf(__FILE__, __LINE__, "%s: status %d after %.1f s (124: timed out); "
                         "output:\n%.3000s", cmd, rc, took, out);
}

RILL_TEST(tools_missing, ip_stats_listen_clients) {
    static const char *const pk[] = {"netcat-openbsd", "socat", NULL};
    int ok;
    fails_fast("test_ip_stats_listen",
               "ip_stats_listen.nc_*:ip_stats_listen.socat_*:ip_stats_listen.clients_*", pk,
               &ok);
    CHECK(ok);
}

RILL_TEST(tools_missing, hello_server_clients) {
    static const char *const pk[] = {"netcat-openbsd", NULL};
    int ok;
    fails_fast("test_hello_server", "hello_server.nc_and_socat_as_clients", pk, &ok);
    CHECK(ok);
}
