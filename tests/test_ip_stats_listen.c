/* examples/ip_stats --listen end to end: the real binary fed by real
 * clients (nc, socat, and this test's own socket), its counts compared with
 * those of the same binary run on the file, in the same test. With
 * --threaded every stage of the child is RILL_STAGE_THREADED, the source
 * included: that names this file a threaded test, run under ThreadSanitizer
 * too (the child is built with the same sanitizer). */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "need_tool.h"
#include "net_util.h"
#include "rill.h"
#include "rill_test.h"
#include "run_cmd.h"

#define LOG RILL_DATA_DIR "/apache_logs"
#define BIN RILL_BIN_DIR "/ip_stats"
#define LIMIT_S 60 /* generous bound on any wait: a hang fails, nothing is timed */

static const char *const ips = "83.149.9.216 93.114.45.13 207.241.237.101 66.249.73.135";

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pause_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ip_stats --listen 0 ARGS, running; its stdout goes to a file. */
typedef struct server {
    pid_t pid;
    int err;         /* its stderr */
    uint16_t port;
    char out[256];   /* path of its stdout */
    char errtext[1024];
} server;

/* Start it and read its "listening on 127.0.0.1:PORT" line. */
static int server_start(server *s, const char *args) {
    static int seq;
    memset(s, 0, sizeof *s);
    snprintf(s->out, sizeof s->out, "%s/listen_out_%ld_%d", RILL_TEST_TMP, (long)getpid(), seq++);
    int pe[2];
    if (pipe(pe) < 0)
        return -1;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "exec %s --quiet --listen 0 %s > %s", BIN, args, s->out);
    s->pid = fork();
    if (s->pid == 0) {
        dup2(pe[1], 2);
        close(pe[0]);
        close(pe[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(pe[1]);
    s->err = pe[0];
    if (s->pid < 0)
        return -1;
    size_t len = 0;
    double end = now_s() + LIMIT_S;
    while (!strchr(s->errtext, '\n') && len + 1 < sizeof s->errtext && now_s() < end) {
        struct pollfd p = {s->err, POLLIN, 0};
        if (poll(&p, 1, 100) != 1)
            continue;
        ssize_t n = read(s->err, s->errtext + len, sizeof s->errtext - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        s->errtext[len] = '\0';
    }
    unsigned port;
    if (sscanf(s->errtext, "listening on 127.0.0.1:%u\n", &port) != 1 || port == 0 ||
        port > 65535)
        return -1;
    s->port = (uint16_t)port;
    return 0;
}

/* Wait for it to exit (killing it past the limit); its exit status, with
 * its stdout in out and the rest of its stderr in s->errtext. */
static int server_wait(server *s, char *out, size_t cap) {
    int st = 0;
    double end = now_s() + LIMIT_S;
    pid_t w;
    while ((w = waitpid(s->pid, &st, WNOHANG)) == 0 && now_s() < end)
        pause_ms(2);
    if (w == 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &st, 0);
    }
    ssize_t n = read(s->err, s->errtext, sizeof s->errtext - 1);
    s->errtext[n > 0 ? n : 0] = '\0';
    close(s->err);
    FILE *f = fopen(s->out, "r");
    size_t got = f ? fread(out, 1, cap - 1, f) : 0;
    out[got] = '\0';
    if (f)
        fclose(f);
    unlink(s->out);
    return w != 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Start ip_stats --listen ARGS, run the shell command CLIENTS (with %u for
 * the port, up to 8 times), and compare its output with ip_stats FILEARGS
 * run on the file. */
static void compare(const char *args, const char *clients, const char *fileargs, int *ok) {
    char want[8192], got[8192], cmd[8192];
    *ok = 0;
    snprintf(cmd, sizeof cmd, "%s %s", BIN, fileargs);
    if (run(cmd, want, sizeof want) != 0 || !*want) {
        rill_test__failf(__FILE__, __LINE__, "%s failed", cmd);
        return;
    }
    server s;
    if (server_start(&s, args) != 0) {
        rill_test__failf(__FILE__, __LINE__, "ip_stats --listen 0 %s did not listen: %s", args,
                         s.errtext);
        if (s.pid > 0) {
            kill(s.pid, SIGKILL);
            waitpid(s.pid, NULL, 0);
        }
        return;
    }
    unsigned p = s.port;
    snprintf(cmd, sizeof cmd, clients, p, p, p, p, p, p, p, p);
    int crc = system(cmd);
    if (crc != 0) /* the clients failed: do not wait for connections that never come */
        kill(s.pid, SIGKILL);
    int rc = server_wait(&s, got, sizeof got);
    *ok = crc == 0 && rc == 0 && strcmp(got, want) == 0;
    if (!*ok)
        rill_test__failf(__FILE__, __LINE__,
                         "ip_stats --listen 0 %s\nclients: %s (status %d)\nstatus %d, stderr: "
                         "%s\ngot:\n%swant:\n%s",
                         args, cmd, crc, rc, s.errtext, got, want);
}

#define NC "nc -N 127.0.0.1 %u < " LOG
#define SOCAT "socat -u FILE:" LOG " TCP:127.0.0.1:%u"

/* compare() with the four IPs: ip_stats --listen OPTS --connections N IPS
 * against ip_stats LOG IPS. */
static void compare_ips(const char *opts, unsigned conns, const char *clients, int *ok) {
    char args[512], fileargs[512];
    snprintf(args, sizeof args, "%s --connections %u %s", opts, conns, ips);
    snprintf(fileargs, sizeof fileargs, "%s %s", LOG, ips);
    compare(args, clients, fileargs, ok);
}

RILL_TEST(ip_stats_listen, nc_gives_the_file_counts) {
    NEED_TOOL("nc", "netcat-openbsd");
    int ok;
    compare_ips("", 1, NC, &ok);
    CHECK(ok);
    compare("--connections 1 --top 20", NC, LOG " --top 20", &ok);
    CHECK(ok);
}

RILL_TEST(ip_stats_listen, nc_threaded_gives_the_file_counts) {
    NEED_TOOL("nc", "netcat-openbsd");
    int ok;
    compare_ips("--threaded", 1, NC, &ok);
    CHECK(ok);
    /* A small queue: the source waits for room again and again. */
    compare("--threaded --capacity 16 --connections 1 --top 20", NC, LOG " --top 20", &ok);
    CHECK(ok);
}

RILL_TEST(ip_stats_listen, socat_gives_the_file_counts) {
    NEED_TOOL("socat", "socat");
    int ok;
    compare_ips("", 1, SOCAT, &ok);
    CHECK(ok);
    compare("--threaded --connections 1 --top 5", SOCAT, LOG " --top 5", &ok);
    CHECK(ok);
}

/* Slices of the log sent at once by several clients sum to the file's
 * counts. The slices are cut at line ends; nc and socat take turns. */
RILL_TEST(ip_stats_listen, clients_at_once_sum_to_the_file_counts) {
    enum { SLICES = 5 };
    NEED_TOOL("nc", "netcat-openbsd");
    NEED_TOOL("socat", "socat");
    FILE *in = fopen(LOG, "r");
    CHECK(in != NULL);
    char path[SLICES][256];
    FILE *out[SLICES];
    for (int i = 0; i < SLICES; i++) {
        snprintf(path[i], sizeof path[i], "%s/listen_slice_%ld_%d", RILL_TEST_TMP,
                 (long)getpid(), i);
        out[i] = fopen(path[i], "w");
        CHECK(out[i] != NULL);
    }
    char *line = NULL;
    size_t cap = 0;
    long n = 0;
    while (getline(&line, &cap, in) != -1)
        fputs(line, out[(n++ / 777) % SLICES]); /* runs of 777 lines, round robin */
    free(line);
    fclose(in);
    for (int i = 0; i < SLICES; i++)
        CHECK_EQ(fclose(out[i]), 0);
    char clients[4096] = "", one[1400];
    for (int i = 0; i < SLICES; i++) {
        if (i % 2)
            snprintf(one, sizeof one, "socat -u FILE:%s TCP:127.0.0.1:%%u & ", path[i]);
        else
            snprintf(one, sizeof one, "nc -N 127.0.0.1 %%u < %s & ", path[i]);
        strcat(clients, one);
    }
    strcat(clients, "wait");
    char args[512];
    int ok;
    compare_ips("", SLICES, clients, &ok);
    CHECK(ok);
    snprintf(args, sizeof args, "--threaded --capacity 64 --connections %d --top 15", SLICES);
    compare(args, clients, LOG " --top 15", &ok);
    CHECK(ok);
    for (int i = 0; i < SLICES; i++)
        unlink(path[i]);
}

/* Bytes the server has not read yet from its connections on port (the
 * receive queues in /proc/net/tcp), or -1 if it has none. */
static long unread_on(uint16_t port) {
    FILE *f = fopen("/proc/net/tcp", "r");
    if (!f)
        return -1;
    char row[512];
    long unread = -1;
    while (fgets(row, sizeof row, f)) {
        unsigned lport, st;
        unsigned long tx, rx;
        if (sscanf(row, " %*d: %*8x:%x %*8x:%*x %x %lx:%lx", &lport, &st, &tx, &rx) == 4 &&
            lport == port && st == 1 /* ESTABLISHED */)
            unread = (unread < 0 ? 0 : unread) + (long)rx;
    }
    fclose(f);
    return unread;
}

/* SIGTERM stops at once: a client still connected is cut, and what it sent,
 * its unterminated last line included, is counted. */
RILL_TEST(ip_stats_listen, sigterm_counts_what_arrived) {
    for (int threaded = 0; threaded < 2; threaded++) {
        server s;
        CHECK_EQ(server_start(&s, threaded ? "--threaded 1.2.3.4 5.6.7.8 9.9.9.9"
                                            : "1.2.3.4 5.6.7.8 9.9.9.9"),
                 0);
        int fd = cli_connect(s.port);
        CHECK(fd >= 0);
        CHECK_EQ(cli_sends(fd, "1.2.3.4 - a\n5.6.7.8 - b\n1.2.3.4 - c\n9.9.9.9 - partial"), 0);
        double end = now_s() + LIMIT_S;
        while (unread_on(s.port) != 0 && now_s() < end)
            pause_ms(2);
        CHECK_EQ(unread_on(s.port), 0);
        kill(s.pid, SIGTERM);
        char out[512];
        CHECK_EQ(server_wait(&s, out, sizeof out), 0);
        CHECK_STREQ(out, "1.2.3.4 2\n5.6.7.8 1\n9.9.9.9 1\n");
        close(fd);
    }
}

/* A second signal aborts without counts. The first one must have been
 * handled before the second is sent (two pending SIGTERMs are one): the
 * listener is closed by then. A slow reducer (--slow, 100 ms an item) has
 * seconds of queued lines left after the first, so the pipeline still runs
 * when the second comes; the abort cuts that short. */
RILL_TEST(ip_stats_listen, second_signal_aborts) {
    server s;
    CHECK_EQ(server_start(&s, "--threaded --slow reduce:100000 1.2.3.4"), 0);
    int fd = cli_connect(s.port);
    CHECK(fd >= 0);
    for (int i = 0; i < 100; i++)
        CHECK_EQ(cli_sends(fd, "1.2.3.4 - x\n"), 0);
    double end = now_s() + LIMIT_S;
    while (unread_on(s.port) != 0 && now_s() < end)
        pause_ms(2);
    kill(s.pid, SIGTERM);
    int probe = 0;
    while (probe != -ECONNREFUSED && now_s() < end) {
        /* Until the stop takes effect: accepted, or queued and then reset. */
        if ((probe = cli_connect(s.port)) >= 0)
            close(probe);
        pause_ms(2);
    }
    CHECK_EQ(probe, -ECONNREFUSED);
    kill(s.pid, SIGTERM);
    char out[512];
    CHECK_EQ(server_wait(&s, out, sizeof out), 1);
    CHECK_STREQ(out, "");
    CHECK(strstr(s.errtext, "pipeline aborted") != NULL);
    close(fd);
}

RILL_TEST(ip_stats_listen, bad_usage) {
    char out[256];
    CHECK_EQ(run(BIN " --listen 70000 2>/dev/null", out, sizeof out), 2);
    CHECK_EQ(run(BIN " --listen x 2>/dev/null", out, sizeof out), 2);
    CHECK_EQ(run(BIN " --connections 2 " LOG " 2>/dev/null", out, sizeof out), 2);
    CHECK_EQ(run(BIN " --listen 0 --connections 0 2>/dev/null", out, sizeof out), 2);
    CHECK_EQ(run(BIN " --help | grep -c -- --listen", out, sizeof out), 0);
}
