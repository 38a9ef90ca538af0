/* examples/ip_stats end to end: the real binary on the shipped log, checked
 * against counts this test computes from the file by itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"
#include "run_cmd.h"

#define LOG RILL_DATA_DIR "/apache_logs"
#define BIN RILL_BIN_DIR "/ip_stats"

/* Independent count: lines whose first field equals ip (or starts with it). */
static long count_in_file(const char *ip, int prefix) {
    FILE *f = fopen(LOG, "r");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0, n = strlen(ip);
    long hits = 0;
    while (getline(&line, &cap, f) != -1) {
        if (prefix) {
            hits += strncmp(line, ip, n) == 0;
        } else {
            size_t field = strcspn(line, " \n");
            hits += field == n && strncmp(line, ip, n) == 0;
        }
    }
    free(line);
    fclose(f);
    return hits;
}

static void check_ips(const char *opts, const char *const *ips, int n, int prefix, int *ok) {
    char cmd[1024], out[4096], want[4096] = "";
    snprintf(cmd, sizeof cmd, "%s %s %s", BIN, opts, LOG);
    for (int i = 0; i < n; i++) {
        strcat(cmd, " ");
        strcat(cmd, ips[i]);
        char line[128];
        snprintf(line, sizeof line, "%s %ld\n", ips[i], count_in_file(ips[i], prefix));
        strcat(want, line);
    }
    *ok = run(cmd, out, sizeof out) == 0 && strcmp(out, want) == 0;
    if (!*ok)
        rill_test__failf(__FILE__, __LINE__, "%s\ngot:\n%swant:\n%s", cmd, out, want);
}

static const char *const seed_ips[] = {"83.149.9.216", "93.114.45.13", "207.241.237.101"};

RILL_TEST(ip_stats, seed_ips_exact_and_prefix) {
    int ok;
    check_ips("", seed_ips, 3, 0, &ok);
    CHECK(ok);
    check_ips("--prefix", seed_ips, 3, 1, &ok);
    CHECK(ok);
    /* The seed's own numbers, which the independent counts must reproduce. */
    CHECK_EQ(count_in_file("83.149.9.216", 0), 23);
    CHECK_EQ(count_in_file("93.114.45.13", 0), 6);
    CHECK_EQ(count_in_file("207.241.237.101", 0), 17);
}

RILL_TEST(ip_stats, exact_differs_from_prefix) {
    const char *ip[] = {"180.76.6.14"};
    int ok;
    check_ips("", ip, 1, 0, &ok);
    CHECK(ok);
    check_ips("--prefix", ip, 1, 1, &ok);
    CHECK(ok);
    CHECK(count_in_file("180.76.6.14", 0) != count_in_file("180.76.6.14", 1));
}

RILL_TEST(ip_stats, no_arguments_uses_shipped_log_from_any_directory) {
    char out[4096], want[4096] = "", cmd[512];
    for (int i = 0; i < 3; i++) {
        char line[128];
        snprintf(line, sizeof line, "%s %ld\n", seed_ips[i], count_in_file(seed_ips[i], 0));
        strcat(want, line);
    }
    snprintf(cmd, sizeof cmd, "cd / && env -u RILL_DATA_DIR %s", BIN);
    CHECK_EQ(run(cmd, out, sizeof out), 0);
    CHECK_STREQ(out, want);
}

RILL_TEST(ip_stats, argument_order_and_repeats) {
    const char *ips[] = {"207.241.237.101", "83.149.9.216", "207.241.237.101", "10.0.0.1"};
    int ok;
    check_ips("", ips, 4, 0, &ok);
    CHECK(ok);
}

RILL_TEST(ip_stats, stdin_dash) {
    char out[256], cmd[512], want[128];
    snprintf(cmd, sizeof cmd, "%s - 83.149.9.216 < %s", BIN, LOG);
    snprintf(want, sizeof want, "83.149.9.216 %ld\n", count_in_file("83.149.9.216", 0));
    CHECK_EQ(run(cmd, out, sizeof out), 0);
    CHECK_STREQ(out, want);
}

/* --top: every client address counted in one pass, the N most frequent by
 * count descending then address ascending, checked against a count of all
 * first fields done here with a plain array. */
struct kc { char key[64]; long n; };
static int kc_cmp(const void *a, const void *b) {
    const struct kc *x = a, *y = b;
    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return strcmp(x->key, y->key);
}

RILL_TEST(ip_stats, top_matches_independent_count) {
    static struct kc all[20000];
    size_t nall = 0;
    FILE *f = fopen(LOG, "r");
    CHECK(f != NULL);
    char line[65536];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, " \n")] = '\0';
        size_t i = 0;
        while (i < nall && strcmp(all[i].key, line) != 0)
            i++;
        if (i == nall) {
            CHECK(strlen(line) < sizeof all[nall].key);
            memcpy(all[nall].key, line, strlen(line) + 1);
            all[nall++].n = 0;
        }
        all[i].n++;
    }
    fclose(f);
    qsort(all, nall, sizeof all[0], kc_cmp);
    char want[4096] = "", out[4096], cmd[512];
    for (size_t i = 0; i < 15 && i < nall; i++) {
        char l[128];
        snprintf(l, sizeof l, "%.64s %ld\n", all[i].key, all[i].n);
        strcat(want, l);
    }
    snprintf(cmd, sizeof cmd, "%s --top 15 %s", BIN, LOG);
    CHECK_EQ(run(cmd, out, sizeof out), 0);
    CHECK_STREQ(out, want);
    /* default is 10 lines */
    snprintf(cmd, sizeof cmd, "%s %s | wc -l", BIN, LOG);
    CHECK_EQ(run(cmd, out, sizeof out), 0);
    CHECK_EQ(atoi(out), nall < 10 ? (long)nall : 10);
}

RILL_TEST(ip_stats, errors_and_usage) {
    char out[4096], cmd[512];
    snprintf(cmd, sizeof cmd, "%s /nonexistent/log 1.2.3.4 2>&1", BIN);
    CHECK_EQ(run(cmd, out, sizeof out), 1);
    CHECK(strstr(out, "/nonexistent/log") != NULL);
    CHECK(strstr(out, "No such file") != NULL);
    snprintf(cmd, sizeof cmd, "%s / 1.2.3.4 2>/dev/null", BIN); /* a directory */
    CHECK_EQ(run(cmd, out, sizeof out), 1);
    CHECK_STREQ(out, "");
    snprintf(cmd, sizeof cmd, "%s --no-such-option 2>/dev/null", BIN);
    CHECK_EQ(run(cmd, out, sizeof out), 2);
    snprintf(cmd, sizeof cmd, "%s --top 0 %s 2>/dev/null", BIN, LOG);
    CHECK_EQ(run(cmd, out, sizeof out), 2);
    snprintf(cmd, sizeof cmd, "%s --top x %s 2>/dev/null", BIN, LOG);
    CHECK_EQ(run(cmd, out, sizeof out), 2);
    snprintf(cmd, sizeof cmd, "%s %s '' 2>/dev/null", BIN, LOG);
    CHECK_EQ(run(cmd, out, sizeof out), 2);
    snprintf(cmd, sizeof cmd, "%s --help", BIN);
    CHECK_EQ(run(cmd, out, sizeof out), 0);
    CHECK(strstr(out, "usage: ip_stats") != NULL);
}

/* Top mode counts client addresses: blank lines and lines without a first
 * field are not a client with an empty address. */
RILL_TEST(ip_stats, top_ignores_lines_without_an_address) {
    char out[512], cmd[512];
    snprintf(cmd, sizeof cmd,
             "printf '1.2.3.4 a\\n\\n\\n\\n 5.6.7.8 x\\n1.2.3.4 b\\n9.9.9.9\\n' | %s -", BIN);
    CHECK_EQ(run(cmd, out, sizeof out), 0);
    CHECK_STREQ(out, "1.2.3.4 2\n9.9.9.9 1\n");
}

/* --top larger than the number of clients prints every client once and does
 * not try to allocate the number asked for. */
RILL_TEST(ip_stats, top_larger_than_the_clients) {
    char out[64], cmd[512];
    snprintf(cmd, sizeof cmd, "%s --top 1000000000 %s | wc -l", BIN, LOG);
    CHECK_EQ(run(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "cut -d' ' -f1 %s | sort -u | grep -c .", LOG);
    char want[64];
    CHECK_EQ(run(cmd, want, sizeof want), 0);
    CHECK_EQ(atol(out), atol(want));
}

/* The slow-stage knob and the reports (issue 4): names are checked, the
 * threaded run still counts right, and --stats names every stage. */
RILL_TEST(ip_stats, slow_stage_and_stats_table) {
    char out[8192], cmd[512], want[128];
    snprintf(cmd, sizeof cmd, "%s --threaded --slow filter-1:5 --stats %s 83.149.9.216 2>&1", BIN,
             LOG);
    CHECK_EQ(run(cmd, out, sizeof out), 0);
    snprintf(want, sizeof want, "83.149.9.216 %ld\n", count_in_file("83.149.9.216", 0));
    CHECK(strstr(out, want) != NULL);
    const char *names[] = {"source", "broadcast", "filter-1", "reduce"};
    for (size_t i = 0; i < 4; i++)
        CHECK(strstr(out, names[i]) != NULL);
    snprintf(cmd, sizeof cmd, "%s --threaded --slow nosuch:5 %s 1.2.3.4 2>/dev/null", BIN, LOG);
    CHECK_EQ(run(cmd, out, sizeof out), 2);
    snprintf(cmd, sizeof cmd, "%s --slow filter-1 %s 1.2.3.4 2>/dev/null", BIN, LOG);
    CHECK_EQ(run(cmd, out, sizeof out), 2);
}

/* The --redis options' grammar (examples/ipstats_opts.h): misuse is status 2
 * before anything connects, with or without hiredis in the build. */
RILL_TEST(ip_stats, redis_options_misused_are_usage_errors) {
    const char *usage[] = {"--stream s", "--redis 127.0.0.1:1", "--worker w", "--publish",
                           "--redis a:1 --stream s --worker w --publish",
                           "--redis a:1 --stream s --group g",
                           "--redis a:1 --stream s --idle-exit 5",
                           "--redis a:1 --stream s --worker w --claim-idle 0",
                           "--redis a:1 --stream s --worker w --idle-exit x",
                           "--redis a:1 --stream s --worker w --parallel 1025",
                           "--redis a:1 --stream s --parallel 2",
                           "--redis a:1 --stream s --worker ''",
                           "--redis a:1 --stream '' --worker w",
                           "--redis a:1 --stream s --worker w extra",
                           "--redis a:1 --stream s --publish a b",
                           "--redis a:1 --stream s --listen 0"};
    char cmd[512], out[256];
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s %s 2>&1", BIN, usage[i]);
        if (run(cmd, out, sizeof out) != 2 || !strstr(out, "ip_stats: "))
            rill_test__failf(__FILE__, __LINE__, "'%s' is not a usage error: %s", usage[i], out);
    }
    snprintf(cmd, sizeof cmd, "%s --help", BIN);
    CHECK_EQ(run(cmd, out, sizeof out), 0);
}

/* --inline keeps a stage on its producer's thread, and the verdict names
 * that stage, not its thread (issue 13): filter-2 slowed 300 us a line
 * (0.6 s of work over 2,000 lines) against under a microsecond for the others. */
RILL_TEST(ip_stats, inline_slow_stage_is_named_with_its_thread) {
    char out[16384], cmd[512], want[128];
    snprintf(cmd, sizeof cmd, "head -n 2000 %s > %s/inline.log", LOG, RILL_TEST_TMP);
    CHECK_EQ(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "%s --threaded --inline filter-2 --slow filter-2:300 --stats %s/inline.log "
             "83.149.9.216 93.114.45.13 2>&1", BIN, RILL_TEST_TMP);
    CHECK_EQ(run(cmd, out, sizeof out), 0);
    char n[64];
    snprintf(cmd, sizeof cmd, "cut -d' ' -f1 %s/inline.log | grep -cx 93.114.45.13", RILL_TEST_TMP);
    CHECK_EQ(run(cmd, n, sizeof n), 0);
    snprintf(want, sizeof want, "93.114.45.13 %ld\n", atol(n));
    CHECK(strstr(out, want) != NULL);
    if (!strstr(out, "bottleneck: filter-2: "))
        fprintf(stderr, "%s", out);
    CHECK(strstr(out, "bottleneck: filter-2: ") != NULL);
    CHECK(strstr(out, "of its thread's") != NULL);     /* it shares a thread */
    CHECK(strstr(out, "  filter-2   broadcast ") != NULL); /* on broadcast's */
    snprintf(cmd, sizeof cmd, "%s/inline.log", RILL_TEST_TMP);
    unlink(cmd);
    snprintf(cmd, sizeof cmd, "%s --threaded --inline nosuch %s 1.2.3.4 2>&1", BIN, LOG);
    CHECK_EQ(run(cmd, out, sizeof out), 2);
    CHECK(strstr(out, "--inline: no stage named 'nosuch'") != NULL);
}
