/* examples/hello_server under load: 10,000 connections, 500 at once, each
 * with its own payload and every reply checked byte for byte by the client
 * that bench_hello uses (bench/hello_client.h). Correctness only: nothing
 * here is timed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bench/hello_client.h"
#include "rill_test.h"

#define SERVER RILL_BIN_DIR "/hello_server"
#define ERR_LOG RILL_TEST_TMP "/hello_load.stderr"
#define CONNS 10000
#define AT_ONCE 500
#define REQ_CAP 16384

/* A deterministic byte stream per connection (xorshift64*). */
static uint64_t next_rand(uint64_t *x) {
    *x ^= *x >> 12, *x ^= *x << 25, *x ^= *x >> 27;
    return *x * 2685821657736338717ull;
}

/* Connection i's request: "conn-<i>:" then a body, then "\n\n". Most bodies
 * are short text; every 5th is binary (any byte, NUL included, single
 * newlines too); every 97th is 4 KiB to 12 KiB. Every 4th request is sent
 * in 2 to 5 writes, as are half of the large ones. No body holds "\n\n" or
 * ends in "\n", so the payload is exactly the bytes before "\n\n". */
static size_t request(void *arg, uint64_t i, char *buf, size_t cap, unsigned *pieces) {
    (void)arg;
    uint64_t x = i * 0x9E3779B97F4A7C15ull + 1;
    size_t len = (size_t)snprintf(buf, cap, "conn-%llu:", (unsigned long long)i);
    size_t body = i % 97 == 0 ? 4097 + (size_t)(next_rand(&x) % 8000) : (size_t)(next_rand(&x) % 200);
    int binary = i % 5 == 1;
    for (size_t k = 0; k < body && len < cap - 2; k++) {
        char c = binary ? (char)(next_rand(&x) >> 56) : (char)('a' + next_rand(&x) % 26);
        if (c == '\n' && buf[len - 1] == '\n')
            c = 'N';
        buf[len++] = c;
    }
    if (buf[len - 1] == '\n')
        buf[len - 1] = 'E';
    buf[len++] = '\n';
    buf[len++] = '\n';
    if (i % 4 == 2 || (i % 97 == 0 && i % 2 == 1))
        *pieces = 2 + (unsigned)(i / 4 % 4);
    return len;
}

static long read_file(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return (long)n;
}

/* The value of " name=N" in hello_server's stderr summary; -1 if absent. */
static long long field(const char *log, const char *name) {
    char key[64];
    snprintf(key, sizeof key, " %s=", name);
    const char *p = strstr(log, key);
    return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

/* The request generator's promises, which the load test's checks rest on. */
RILL_TEST(hello_load, requests_are_distinct_and_well_formed) {
    static char a[REQ_CAP], b[REQ_CAP];
    size_t large = 0, split = 0, with_nul = 0;
    for (uint64_t i = 0; i < CONNS; i++) {
        unsigned pieces = 1;
        size_t n = request(NULL, i, a, sizeof a, &pieces);
        CHECK(n >= 2 && n <= sizeof a);
        char *blank = memmem(a, n, "\n\n", 2);
        CHECK(blank == a + n - 2); /* the first blank line ends the request */
        char prefix[32];
        int pl = snprintf(prefix, sizeof prefix, "conn-%llu:", (unsigned long long)i);
        CHECK(memcmp(a, prefix, (size_t)pl) == 0); /* so no two payloads are equal */
        large += n > 4096;
        split += pieces > 1;
        with_nul += memchr(a, '\0', n) != NULL;
        unsigned again = 1;
        CHECK_EQ(request(NULL, i, b, sizeof b, &again), n);
        CHECK(memcmp(a, b, n) == 0 && again == pieces); /* replayable */
    }
    CHECK(large >= 100);
    CHECK(split >= CONNS / 4);
    CHECK(with_nul >= 100);
}

RILL_TEST(hello_load, ten_thousand_connections_500_at_once) {
    CHECK(hc_raise_nofile(4 * AT_ONCE) >= 2 * AT_ONCE + 64);
    char *argv[] = {SERVER, "--port", "0", "--max-message", "65536", NULL};
    hc_child srv;
    CHECK(hc_spawn(argv, NULL, NULL, ERR_LOG, 20000, &srv) == 0);
    CHECK_STREQ(srv.host, "127.0.0.1");

    hc_opts o = {.host = srv.host, .port = srv.port, .concurrency = AT_ONCE, .total = CONNS,
                 .req_cap = REQ_CAP, .request = request, .stall_ms = 20000};
    hc_result r;
    int rc = hc_run(&o, &r);
    kill(srv.pid, SIGTERM);
    struct rusage ru;
    int st = hc_reap(&srv, 20000, &ru);
    for (int i = 0; i < 3 && r.first[i][0]; i++)
        fprintf(stderr, "client: %s\n", r.first[i]);
    CHECK_EQ(r.errors, 0);
    CHECK_EQ(r.ok, CONNS);
    CHECK_EQ(rc, 0);
    CHECK_EQ(r.peak, AT_ONCE);
    CHECK(st != -1 && WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);

    static char log[65536];
    CHECK(read_file(ERR_LOG, log, sizeof log) > 0);
    /* The server's own count agrees: every connection accepted and
     * answered, none cut off, and it had many at once (no request is sent
     * before all of the first 500 connects). */
    CHECK_EQ(field(log, "accepted"), CONNS);
    CHECK_EQ(field(log, "replied"), CONNS);
    CHECK_EQ(field(log, "too_large"), 0);
    CHECK_EQ(field(log, "timeouts"), 0);
    CHECK_EQ(field(log, "timed_out"), 0);
    CHECK_EQ(field(log, "resets"), 0);
    CHECK_EQ(field(log, "eof"), 0);
    CHECK_EQ(field(log, "refused"), 0);
    CHECK_EQ(field(log, "active"), 0);
    CHECK(field(log, "peak") > 1);
}
