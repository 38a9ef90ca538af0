/* The README's example program (examples/readme_pipeline.c) is the code the
 * README shows, and prints what an independent count over the same file says:
 * on the shipped log, and on a small log made here whose lines trip prefix
 * matching. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "rill.h"
#include "rill_test.h"

static const char *const ips[3] = {"83.149.9.216", "93.114.45.13", "207.241.237.101"};

/* Lines of path whose text up to the first space (or the line end) is ip. */
static long count_first_field(const char *path, const char *ip) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0, iplen = strlen(ip);
    ssize_t n;
    long hits = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        size_t len = (size_t)n;
        if (len && line[len - 1] == '\n')
            len--;
        char *sp = memchr(line, ' ', len);
        size_t field = sp ? (size_t)(sp - line) : len;
        if (field == iplen && memcmp(line, ip, iplen) == 0)
            hits++;
    }
    free(line);
    fclose(f);
    return hits;
}

/* Run the example on log (NULL: its default) and check every output line
 * against the independent count over expect_log; counts gets what it printed. */
static void check_run(const char *log, const char *expect_log, long *counts) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s/readme_pipeline%s%s", RILL_BIN_DIR, log ? " " : "",
             log ? log : "");
    FILE *out = popen(cmd, "r");
    CHECK(out != NULL);
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, out)) {
        if (n >= 3) {
            n++;
            continue;
        }
        char ip[64];
        long got;
        if (sscanf(line, "%63s %ld", ip, &got) != 2)
            break;
        CHECK_STREQ(ip, ips[n]);
        long want = count_first_field(expect_log, ips[n]);
        CHECK(want >= 0);
        CHECK_EQ(got, want);
        counts[n++] = got;
    }
    int status = pclose(out);
    CHECK_EQ(n, 3);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
}

RILL_TEST(readme, shipped_log_counts_match_independent_count) {
    long counts[3] = {-1, -1, -1};
    check_run(NULL, RILL_DATA_DIR "/apache_logs", counts);
    /* The seed's three clients all appear in the shipped log. */
    for (int i = 0; i < 3; i++)
        CHECK(counts[i] > 0);
}

RILL_TEST(readme, exact_first_field_not_prefix) {
    const char *path = RILL_TEST_TMP "/test_readme_small.log";
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    fputs("83.149.9.216 - - \"GET / HTTP/1.1\" 200\n"
          "83.149.9.2160 - - prefix of another client\n"
          "93.114.45.13\n"                                /* a line that is only the IP */
          "93.114.45.13 - - \"GET /a\" 200\r\n"           /* CRLF */
          " 83.149.9.216 leading space: not the first field\n"
          "207.241.237.101 - - last line without newline",
          f);
    CHECK_EQ(fclose(f), 0);
    long counts[3] = {-1, -1, -1};
    check_run(path, path, counts);
    /* What the file was written to contain. */
    CHECK_EQ(counts[0], 1);
    CHECK_EQ(counts[1], 2);
    CHECK_EQ(counts[2], 1);
    remove(path);
}

RILL_TEST(readme, missing_log_fails_with_status_1) {
    FILE *out = popen(RILL_BIN_DIR "/readme_pipeline " RILL_TEST_TMP "/no/such.log 2>/dev/null",
                      "r");
    CHECK(out != NULL);
    char line[256];
    CHECK(fgets(line, sizeof line, out) == NULL); /* nothing on stdout */
    int status = pclose(out);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 1);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while (mem && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, mem);
    fclose(f);
    if (mem)
        fclose(mem);
    return buf;
}

RILL_TEST(readme, shows_the_tested_program) {
    char *readme = slurp(RILL_DATA_DIR "/../README.md");
    char *prog = slurp(RILL_DATA_DIR "/../examples/readme_pipeline.c");
    int ok = readme && prog;
    /* From the first #include on, the program appears verbatim in README.md. */
    const char *body = prog ? strstr(prog, "#include <stdio.h>") : NULL;
    ok = ok && body && strstr(readme, body) != NULL;
    free(readme);
    free(prog);
    CHECK(ok);
}

/* The README's rule for its table of the five first-hour programs: a line
 * counts unless it is blank or all comment (C: inside block comments or
 * after //; Python: after #). Strings holding comment markers are not
 * looked for: the examples have none. */
static int code_lines(const char *text, int python) {
    int n = 0, in_block = 0;
    for (const char *s = text; s && *s;) {
        const char *end = strchr(s, '\n');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        int code = 0;
        for (size_t i = 0; i < len; i++) {
            if (python) {
                if (s[i] == '#')
                    break;
                code = code || (s[i] != ' ' && s[i] != '\t');
            } else if (in_block) {
                if (s[i] == '*' && i + 1 < len && s[i + 1] == '/')
                    in_block = 0, i++;
            } else if (s[i] == '/' && i + 1 < len && s[i + 1] == '*') {
                in_block = 1, i++;
            } else if (s[i] == '/' && i + 1 < len && s[i + 1] == '/') {
                break;
            } else {
                code = code || (s[i] != ' ' && s[i] != '\t' && s[i] != '\r');
            }
        }
        n += code;
        s = end ? end + 1 : s + len;
    }
    return n;
}

RILL_TEST(readme, first_hour_table_counts_the_lines_of_the_files) {
    static const char *const progs[] = {"wordfreq", "key_avg", "gen_status", "slow_stage",
                                        "push_lines"};
    char *readme = slurp(RILL_DATA_DIR "/../README.md");
    CHECK(readme != NULL);
    for (size_t i = 0; i < sizeof progs / sizeof *progs; i++) {
        char path[256], row[64];
        snprintf(path, sizeof path, RILL_DATA_DIR "/../examples/%s.c", progs[i]);
        char *c = slurp(path);
        snprintf(path, sizeof path, RILL_DATA_DIR "/../examples/python/%s.py", progs[i]);
        char *py = slurp(path);
        int nc = code_lines(c, 0), npy = code_lines(py, 1);
        free(c);
        free(py);
        /* | `name` | does | C | Python | */
        snprintf(row, sizeof row, "| `%s` |", progs[i]);
        const char *r = strstr(readme, row);
        const char *eol = r ? strchr(r, '\n') : NULL;
        int tc = -1, tpy = -1;
        if (eol) {
            const char *bar = eol;
            for (int k = 0; k < 3 && bar > r; k++) /* back to the bar before C's cell */
                while (--bar > r && *bar != '|')
                    ;
            if (sscanf(bar, "| %d | %d |", &tc, &tpy) != 2)
                tc = tpy = -1;
        }
        if (tc != nc || tpy != npy)
            fprintf(stderr, "%s: README says %d C / %d Python lines, the files have %d / %d\n",
                    progs[i], tc, tpy, nc, npy);
        CHECK_EQ(tc, nc);
        CHECK_EQ(tpy, npy);
        CHECK(nc > 0 && nc <= 2 * npy); /* the goal: at most twice the Python */
    }
    free(readme);
}
