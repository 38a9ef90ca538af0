/* ip_stats shows every key faithfully (--top escapes invisible bytes, so
 * distinct keys print as distinct rows) and checks its output files before
 * it reads the log (issue 15, items 3 and 5). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rill.h"
#include "rill_test.h"
#include "run_cmd.h"

#define BIN RILL_BIN_DIR "/ip_stats"
#define LOG RILL_DATA_DIR "/apache_logs"

/* Write `times` lines "<key> GET /\n" for each key to a fresh file. */
static int write_log(const char *path, const char *const *keys, const size_t *lens,
                     const int *times, int n) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < times[k]; i++) {
            fwrite(keys[k], 1, lens[k], f);
            fputs(" GET /\n", f);
        }
    return fclose(f);
}

/* Keys differing only in a NUL, a CR, a tab, a byte >= 0x80 or a literal
 * backslash escape: before, "a\0b" and "a\0c" both printed as "a", and
 * "k\r" printed a raw CR, which looks like "k" on a terminal. */
RILL_TEST(ip_stats_keys, top_prints_invisible_bytes_escaped) {
    static const char *const keys[] = {"a\\x00b", "a\0b", "a\0c", "k\r", "k", "t\tb",
                                       "\xff\x80", "a"};
    static const size_t lens[] = {6, 3, 3, 2, 1, 3, 2, 1};
    static const int times[] = {9, 8, 7, 6, 5, 4, 3, 2};
    char path[256], cmd[512], out[1024];
    snprintf(path, sizeof path, "%s/keys_%ld.log", RILL_TEST_TMP, (long)getpid());
    CHECK_EQ(write_log(path, keys, lens, times, 8), 0);
    snprintf(cmd, sizeof cmd, "%s --top 20 %s", BIN, path);
    int rc = run(cmd, out, sizeof out);
    unlink(path);
    CHECK_EQ(rc, 0);
    CHECK_STREQ(out, "a\\\\x00b 9\n"
                     "a\\x00b 8\n"
                     "a\\x00c 7\n"
                     "k\\r 6\n"
                     "k 5\n"
                     "t\\tb 4\n"
                     "\\xff\\x80 3\n"
                     "a 2\n");
}

/* The escape is documented where users look. */
RILL_TEST(ip_stats_keys, usage_says_how_keys_are_escaped) {
    char cmd[512], out[8192];
    snprintf(cmd, sizeof cmd, "%s --help", BIN);
    CHECK_EQ(run(cmd, out, sizeof out), 0);
    CHECK(strstr(out, "\\xHH") != NULL);
    CHECK(strstr(out, "\\t, \\r, \\n") != NULL);
}

/* A report file that cannot be created stops ip_stats before the run: no
 * counts on stdout, status 1, the option and path named. Before, the whole
 * log was read and the counts printed, then the write failed. */
RILL_TEST(ip_stats_keys, bad_report_path_fails_before_the_run) {
    static const char *const opts[] = {"--stats-json", "--stats-svg"};
    for (int i = 0; i < 2; i++) {
        char cmd[512], out[4096];
        snprintf(cmd, sizeof cmd, "%s %s /nonexistent/x.out %s 83.149.9.216 2>&1 >/dev/null",
                 BIN, opts[i], LOG);
        CHECK_EQ(run(cmd, out, sizeof out), 1);
        CHECK(strstr(out, opts[i]) != NULL);
        CHECK(strstr(out, "/nonexistent/x.out") != NULL);
        CHECK(strstr(out, "No such file") != NULL);
        snprintf(cmd, sizeof cmd, "%s %s /nonexistent/x.out %s 83.149.9.216 2>/dev/null", BIN,
                 opts[i], LOG);
        CHECK_EQ(run(cmd, out, sizeof out), 1);
        CHECK_STREQ(out, "");
    }
}

/* A good report path is still written after the run. */
RILL_TEST(ip_stats_keys, good_report_path_is_written) {
    char path[256], cmd[512], out[4096];
    snprintf(path, sizeof path, "%s/report_%ld.json", RILL_TEST_TMP, (long)getpid());
    snprintf(cmd, sizeof cmd, "%s --stats-json %s %s 83.149.9.216", BIN, path, LOG);
    CHECK_EQ(run(cmd, out, sizeof out), 0);
    CHECK(strncmp(out, "83.149.9.216 ", 13) == 0);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    size_t n = fread(out, 1, sizeof out - 1, f);
    fclose(f);
    unlink(path);
    out[n] = '\0';
    CHECK(n > 0 && out[0] == '{');
    CHECK(strstr(out, "\"reduce\"") != NULL);
}

/* A usage error found after the options are read (an unknown --slow stage,
 * a bad --metrics address) leaves an existing report file as it was: the
 * report files are made only once every option has been checked. */
RILL_TEST(ip_stats_keys, usage_error_leaves_an_existing_report_alone) {
    static const char *const bad[] = {"--slow nosuchstage:5", "--metrics nonsense",
                                      "--stats-svg /nonexistent-dir/x.svg"};
    char path[256], cmd[768], out[4096];
    snprintf(path, sizeof path, "%s/keep_%ld.json", RILL_TEST_TMP, (long)getpid());
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = fopen(path, "w");
        CHECK(f != NULL);
        fputs("{\"kept\": true}\n", f);
        fclose(f);
        snprintf(cmd, sizeof cmd, "%s --quiet --stats-json %s %s %s 83.149.9.216 2>&1", BIN, path,
                 bad[i], LOG);
        CHECK(run(cmd, out, sizeof out) != 0);
        f = fopen(path, "r");
        CHECK(f != NULL);
        size_t n = fread(out, 1, sizeof out - 1, f);
        fclose(f);
        out[n] = '\0';
        CHECK(strcmp(out, "{\"kept\": true}\n") == 0);
    }
    unlink(path);
}
