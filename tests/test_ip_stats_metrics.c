/* examples/ip_stats --metrics end to end: the real binary, --threaded (every
 * stage RILL_STAGE_THREADED, so this is a threaded test, run under
 * ThreadSanitizer too) and slowed so that the run lasts a few seconds,
 * scraped during the run by a real client (curl, Debian package curl),
 * each scrape checked by `promtool check metrics` (Debian package
 * prometheus) and parsed here: every stage and every queue present,
 * counters never lower in the second scrape. Then the error answers (404,
 * 400, 405, 431) and the idle cut-off, and the run's counts, which serving
 * must not change. Generous bounds; nothing is timed tightly. */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net_util.h"
#include "rill_test.h"
#include "run_cmd.h"

#define LOG RILL_DATA_DIR "/apache_logs"
#define BIN RILL_BIN_DIR "/ip_stats"
#define IPS "83.149.9.216 93.114.45.13 207.241.237.101"
#define LIMIT_S 60

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A tool the test needs, or a failure naming its Debian package. */
static int need(const char *tool, const char *package) {
    char cmd[128], out[256];
    snprintf(cmd, sizeof cmd, "command -v %s", tool);
    if (run(cmd, out, sizeof out) == 0)
        return 0;
    rill_test__failf(__FILE__, __LINE__, "%s not found: install the Debian package %s "
                     "(scripts/deps.sh test)", tool, package);
    return -1;
}

/* ip_stats running with --metrics 127.0.0.1:0; stdout to a file. */
typedef struct child {
    pid_t pid;
    int err;
    unsigned port;
    char out[256];
    char errtext[2048];
} child;

static int child_start(child *c, const char *args) {
    static int seq;
    memset(c, 0, sizeof *c);
    snprintf(c->out, sizeof c->out, "%s/metrics_out_%ld_%d", RILL_TEST_TMP, (long)getpid(),
             seq++);
    int pe[2];
    if (pipe(pe) < 0)
        return -1;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "exec %s --quiet --metrics 127.0.0.1:0 %s > %s", BIN, args, c->out);
    c->pid = fork();
    if (c->pid == 0) {
        dup2(pe[1], 2);
        close(pe[0]);
        close(pe[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(pe[1]);
    c->err = pe[0];
    if (c->pid < 0)
        return -1;
    size_t len = 0;
    double end = now_s() + LIMIT_S;
    while (!strchr(c->errtext, '\n') && len + 1 < sizeof c->errtext && now_s() < end) {
        struct pollfd p = {c->err, POLLIN, 0};
        if (poll(&p, 1, 100) != 1)
            continue;
        ssize_t n = read(c->err, c->errtext + len, sizeof c->errtext - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        c->errtext[len] = '\0';
    }
    if (sscanf(c->errtext, "metrics on http://127.0.0.1:%u/metrics\n", &c->port) != 1 ||
        c->port == 0 || c->port > 65535)
        return -1;
    return 0;
}

static int child_wait(child *c, char *out, size_t cap) {
    int st = 0;
    double end = now_s() + LIMIT_S;
    pid_t w;
    while ((w = waitpid(c->pid, &st, WNOHANG)) == 0 && now_s() < end) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    if (w == 0) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, &st, 0);
    }
    ssize_t n = read(c->err, c->errtext, sizeof c->errtext - 1);
    c->errtext[n > 0 ? n : 0] = '\0';
    close(c->err);
    FILE *f = fopen(c->out, "r");
    size_t got = f ? fread(out, 1, cap - 1, f) : 0;
    out[got] = '\0';
    if (f)
        fclose(f);
    unlink(c->out);
    return w != 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- the exposition, parsed ---------------------------------------------------- */

enum { MAXS = 256 };
typedef struct sample {
    char series[160]; /* name{labels} */
    char type[16];    /* of its family */
    double v;
} sample;

typedef struct scrape {
    sample s[MAXS];
    int n;
    char why[200]; /* first malformed line */
} scrape;

static int parse(const char *text, scrape *sc) {
    char type_of[64] = "", family[96] = "";
    sc->n = 0;
    sc->why[0] = '\0';
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        if (!nl) {
            snprintf(sc->why, sizeof sc->why, "no newline after the last line");
            return -1;
        }
        char buf[512];
        size_t len = (size_t)(nl - line) < sizeof buf - 1 ? (size_t)(nl - line) : sizeof buf - 1;
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = nl + 1;
        if (sscanf(buf, "# TYPE %95s %63s", family, type_of) == 2 || buf[0] == '#')
            continue;
        char *sp = strrchr(buf, ' ');
        if (!sp || sc->n == MAXS || (size_t)(sp - buf) >= sizeof sc->s[0].series ||
            strncmp(buf, family, strlen(family)) != 0) {
            snprintf(sc->why, sizeof sc->why, "bad or unexpected sample: %.150s", buf);
            return -1;
        }
        sample *s = &sc->s[sc->n++];
        memcpy(s->series, buf, (size_t)(sp - buf));
        s->series[sp - buf] = '\0';
        snprintf(s->type, sizeof s->type, "%s", type_of);
        char *end;
        s->v = strtod(sp + 1, &end);
        if (*end || end == sp + 1) {
            snprintf(sc->why, sizeof sc->why, "bad value: %.150s", buf);
            return -1;
        }
    }
    return 0;
}

static const sample *find(const scrape *sc, const char *series) {
    for (int i = 0; i < sc->n; i++)
        if (strcmp(sc->s[i].series, series) == 0)
            return &sc->s[i];
    return NULL;
}

/* The first sample whose series starts with prefix (a queue's labels end
 * with its index, which the test does not predict). */
static const sample *find_prefix(const scrape *sc, const char *prefix) {
    for (int i = 0; i < sc->n; i++)
        if (strncmp(sc->s[i].series, prefix, strlen(prefix)) == 0)
            return &sc->s[i];
    return NULL;
}

/* Two samples of one series: Prometheus would drop one (promtool accepts). */
static const char *repeated_series(const scrape *sc) {
    for (int i = 0; i < sc->n; i++)
        for (int j = i + 1; j < sc->n; j++)
            if (strcmp(sc->s[i].series, sc->s[j].series) == 0)
                return sc->s[i].series;
    return NULL;
}

static int fetch(unsigned port, const char *path, char *out, size_t cap) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "curl -sS --max-time 20 -f http://127.0.0.1:%u%s", port, path);
    return run(cmd, out, cap);
}

/* promtool's verdict on text: 0 if clean, else its complaint in why. */
static int promtool(const char *text, char *why, size_t cap) {
    char path[256], cmd[512];
    snprintf(path, sizeof path, "%s/metrics_%ld.txt", RILL_TEST_TMP, (long)getpid());
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
    int rc = run(cmd, why, cap);
    unlink(path);
    return rc;
}

/* A raw request; the status of the answer, 0 if the connection closed
 * without one, -1 if it could not connect. */
static int raw(unsigned port, const char *req, size_t len) {
    int fd = cli_connect((uint16_t)port);
    if (fd < 0)
        return -1;
    cli_send(fd, req, len);
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    close(fd);
    int status = 0;
    if (n > 0) {
        buf[n] = '\0';
        if (sscanf(buf, "HTTP/1.1 %d ", &status) != 1)
            status = 0;
    }
    return status;
}

static const char *const stages[] = {"source", "broadcast", "filter-1", "filter-2",
                                     "filter-3", "reduce"};
static const char *const queues[][2] = {
    {"source", "broadcast"}, {"broadcast", "filter-1"}, {"broadcast", "filter-2"},
    {"broadcast", "filter-3"}, {"filter-1", "reduce"}, {"filter-2", "reduce"},
    {"filter-3", "reduce"}};

static void check_scrape(const scrape *sc, int which) {
    char series[200];
    for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++) {
        snprintf(series, sizeof series,
                 "rill_stage_received_items_total{pipeline=\"ip_stats\",stage=\"%s\"}", stages[i]);
        if (!find(sc, series))
            rill_test__failf(__FILE__, __LINE__, "scrape %d: no %s", which, series);
    }
    const char *twice = repeated_series(sc);
    if (twice)
        rill_test__failf(__FILE__, __LINE__, "scrape %d: %s appears twice", which, twice);
    for (size_t i = 0; i < sizeof queues / sizeof queues[0]; i++) {
        snprintf(series, sizeof series,
                 "rill_queue_enqueued_items_total{pipeline=\"ip_stats\",from=\"%s\",to=\"%s\",queue=",
                 queues[i][0], queues[i][1]);
        if (!find_prefix(sc, series))
            rill_test__failf(__FILE__, __LINE__, "scrape %d: no %s", which, series);
    }
}

RILL_TEST(ip_stats_metrics, scraped_during_the_run) {
    if (need("curl", "curl") || need("promtool", "prometheus"))
        return;
    char want[1024], got[1024];
    CHECK_EQ(run(BIN " --threaded " LOG " " IPS, want, sizeof want), 0);
    child c;
    if (child_start(&c, "--threaded --capacity 64 --slow filter-2:300 " LOG " " IPS) != 0) {
        rill_test__failf(__FILE__, __LINE__, "ip_stats --metrics did not listen: %s",
                         c.errtext);
        if (c.pid > 0) {
            kill(c.pid, SIGKILL);
            waitpid(c.pid, NULL, 0);
        }
        return;
    }
    static char text[2][65536];
    static scrape sc[2];
    char why[4096];
    int fetched[2], checked[2], parsed[2];
    for (int i = 0; i < 2; i++) {
        if (i) {
            struct timespec ts = {0, 300000000};
            nanosleep(&ts, NULL);
        }
        /* The server is up just before the run starts: a first scrape may
         * come before it (running 0, queues not built yet). */
        for (int tries = 0; tries < 200; tries++) {
            fetched[i] = fetch(c.port, "/metrics", text[i], sizeof text[i]);
            if (fetched[i] != 0 ||
                strstr(text[i], "rill_pipeline_running{pipeline=\"ip_stats\"} 1"))
                break;
            struct timespec ts = {0, 20000000};
            nanosleep(&ts, NULL);
        }
        checked[i] = promtool(text[i], why, sizeof why);
        if (fetched[i] == 0 && checked[i] != 0)
            rill_test__failf(__FILE__, __LINE__, "promtool on scrape %d: %s", i, why);
        parsed[i] = parse(text[i], &sc[i]);
        if (fetched[i] == 0 && parsed[i] != 0)
            rill_test__failf(__FILE__, __LINE__, "scrape %d: %s", i, sc[i].why);
    }
    char head[128];
    int st404 = fetch(c.port, "/nope", head, sizeof head); /* curl -f: exit 22 */
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:%u/metrics/x", c.port);
    int rc404 = run(cmd, head, sizeof head);
    int code404 = atoi(head);
    static const char bad[] = "GET /metrics\r\n\r\n";
    static const char nohost[] = "GET /metrics HTTP/1.1\r\n\r\n";
    static const char post[] = "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    static char huge[20000];
    memset(huge, 'a', sizeof huge);
    memcpy(huge, "GET /metrics HTTP/1.1\r\nX-Long: ", 31);
    int st400 = raw(c.port, bad, sizeof bad - 1);
    int st400h = raw(c.port, nohost, sizeof nohost - 1);
    int st405 = raw(c.port, post, sizeof post - 1);
    int st431 = raw(c.port, huge, sizeof huge);
    /* Slow: half a request, then silence; cut off at the idle limit (2 s). */
    int fd = cli_connect((uint16_t)c.port);
    double t0 = now_s();
    ssize_t slow = -2;
    if (fd >= 0) {
        cli_send(fd, "GET /metr", 9);
        char b[64];
        slow = recv(fd, b, sizeof b, 0);
        close(fd);
    }
    double cut_after = now_s() - t0;
    int rc = child_wait(&c, got, sizeof got);

    CHECK_EQ(fetched[0], 0);
    CHECK_EQ(fetched[1], 0);
    CHECK_EQ(checked[0], 0);
    CHECK_EQ(checked[1], 0);
    CHECK_EQ(parsed[0], 0);
    CHECK_EQ(parsed[1], 0);
    check_scrape(&sc[0], 0);
    check_scrape(&sc[1], 1);
    /* Taken while the run went on (it is slowed to several seconds). */
    const sample *r0 = find(&sc[0], "rill_pipeline_running{pipeline=\"ip_stats\"}");
    const sample *r1 = find(&sc[1], "rill_pipeline_running{pipeline=\"ip_stats\"}");
    CHECK(r0 && r1);
    CHECK_EQ((int)r0->v, 1);
    CHECK_EQ((int)r1->v, 1);
    int counters = 0, grew = 0;
    for (int i = 0; i < sc[0].n; i++) {
        const sample *a = &sc[0].s[i];
        if (strcmp(a->type, "counter") != 0)
            continue;
        counters++;
        const sample *b = find(&sc[1], a->series);
        if (!b)
            rill_test__failf(__FILE__, __LINE__, "%s missing from the second scrape", a->series);
        else if (b->v < a->v)
            rill_test__failf(__FILE__, __LINE__, "%s went back: %g then %g", a->series, a->v,
                             b->v);
        else
            grew += b->v > a->v;
    }
    CHECK(counters >= 7 * 10);
    CHECK(grew > 0);
    CHECK(st404 != 0);
    CHECK_EQ(rc404, 0);
    CHECK_EQ(code404, 404);
    CHECK_EQ(st400, 400);
    CHECK_EQ(st400h, 400);
    CHECK_EQ(st405, 405);
    CHECK_EQ(st431, 431);
    CHECK_EQ(slow, 0);
    if (cut_after < 1.0 || cut_after > 30.0)
        rill_test__failf(__FILE__, __LINE__, "a silent client was cut after %.2f s", cut_after);
    if (rc != 0)
        rill_test__failf(__FILE__, __LINE__, "ip_stats exited %d: %s", rc, c.errtext);
    CHECK_STREQ(got, want);
}

RILL_TEST(ip_stats_metrics, bad_address_is_a_usage_error) {
    char out[256];
    CHECK_EQ(run(BIN " --quiet --metrics nonsense " LOG " " IPS " 2>/dev/null", out, sizeof out),
             2);
    CHECK_EQ(run(BIN " --quiet --metrics 127.0.0.1:99999 " LOG " " IPS " 2>/dev/null", out,
                 sizeof out), 2);
    CHECK_EQ(run(BIN " --quiet --metrics not-an-ip:0 " LOG " " IPS " 2>/dev/null", out,
                 sizeof out), 2);
}
