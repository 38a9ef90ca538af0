/* The hello server (examples/hello_server, on rill's scheduler) against the
 * seed's Python selector server (bench/hello_baseline.py) and a bare epoll
 * loop, all three driven by the same C client (bench/hello_client.h) on
 * loopback in one run.
 *
 * Usage: bench_hello [--conns N] [--concurrency C] [--rounds R]
 *                    [--servers bare,rill,seed]     PYTHON=interp (python3)
 *
 * Each server is a child: hello_server found next to this program, python
 * running the baseline (its per-accept DEBUG log goes to /dev/null, as the
 * seed's stdout redirected), and the bare loop in a fork of this program.
 * A round starts each server with "--count N", runs N connections of which
 * C are in flight at once (each one short request, "ping-<i>\n\n", in one
 * write, the reply checked byte for byte), then reaps the server when it
 * exits by itself and reads its CPU time (user + sys) from wait4. An idle
 * run (start, SIGTERM, reap, no connection) measures start-up cost, which
 * the CPU per 10,000 connections is given net of. Best of R rounds: the
 * highest connections/s, the lowest CPU. Any failed connection or server
 * fails the run (exit 1).
 *
 * Each round's line also gives the server's and the client's CPU as a share
 * of the run's time: the process near 100% is what limits connections/s.
 * The bare loop reads right after accept and registers with epoll only if
 * the request is not there yet: accept4, read, write, close is about the
 * least a server can do per connection. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_util.h"
#include "hello_client.h"

#define BASELINE RILL_DATA_DIR "/../bench/hello_baseline.py"

/* ---- the bare epoll server: the kernel-bound ceiling ------------------------ */

#define BARE_BUF 4096

static volatile sig_atomic_t bare_stop;
static void bare_on_term(int sig) { (void)sig, bare_stop = 1; }

/* Read what one connection sent; reply and close at the blank line. Each
 * buffer starts with "Hello " so the reply is one write from it; a reply
 * this short always fits the socket's send buffer. */
static int bare_read(int fd, char **bufs, unsigned *lens) {
    char *b = bufs[fd];
    unsigned len = lens[fd];
    ssize_t n = read(fd, b + 6 + len, BARE_BUF - 6 - len);
    if (n < 0 && errno == EAGAIN)
        return 0;
    if (n <= 0) {
        close(fd);
        return 1;
    }
    lens[fd] = len + (unsigned)n;
    char *end = memmem(b + 6 + (len ? len - 1 : 0), (size_t)n + (len ? 1 : 0), "\n\n", 2);
    if (end) {
        ssize_t w = write(fd, b, (size_t)(end - b));
        (void)w;
    } else if (lens[fd] < BARE_BUF - 6) {
        return 0;
    } else {
        ssize_t w = write(fd, "ERROR message too large\n", 24);
        (void)w;
    }
    close(fd);
    return 1;
}

static int bare_server(void *arg) {
    long count = *(const long *)arg;
    struct sigaction sa = {.sa_handler = bare_on_term};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    size_t nfd = (size_t)rl.rlim_cur;
    char **bufs = calloc(nfd, sizeof *bufs);
    unsigned *lens = calloc(nfd, sizeof *lens);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int ep = epoll_create1(0);
    struct epoll_event ev[256] = {{.events = EPOLLIN, .data.fd = lfd}};
    if (!bufs || !lens || lfd < 0 || ep < 0 ||
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 1024) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) != 0 ||
        epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev[0]) != 0) {
        perror("bare server");
        return 1;
    }
    printf("listening on 127.0.0.1:%u\n", ntohs(a.sin_port));
    fflush(stdout);
    long ended = 0;
    while (!bare_stop && (!count || ended < count)) {
        int n = epoll_wait(ep, ev, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;
            if (fd != lfd) {
                ended += bare_read(fd, bufs, lens);
                continue;
            }
            int c;
            while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                if ((size_t)c >= nfd || (!bufs[c] && !(bufs[c] = malloc(BARE_BUF)))) {
                    close(c);
                    ended++;
                    continue;
                }
                memcpy(bufs[c], "Hello ", 6);
                lens[c] = 0;
                /* The request is usually there already: read before
                 * paying for an epoll registration. */
                struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                if (bare_read(c, bufs, lens))
                    ended++;
                else if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce) != 0)
                    close(c), ended++;
            }
        }
    }
    return 0;
}

/* ---- the benchmark ------------------------------------------------------------ */

enum { BARE, RILL, SEED, NSERVERS };
static const char *const names[NSERVERS] = {"bare epoll", "rill hello_server", "seed python"};

struct result {
    int on;
    double cps, cpu, idle, client_cpu, busy; /* best conns/s, least CPU s */
};

static char rill_path[4200];
static const char *python = "python3";

/* The interpreter itself, not a wrapper (pyenv's shim is a bash script
 * that would add its own start-up to the server's CPU time). */
static int resolve_python(void) {
    static char exe[4096];
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "%s -c 'import sys; print(sys.executable)' 2>/dev/null", python);
    FILE *p = popen(cmd, "r");
    if (!p)
        return 0;
    int ok = fgets(exe, sizeof exe, p) && exe[0] == '/';
    if (pclose(p) != 0 || !ok)
        return 0;
    exe[strcspn(exe, "\n")] = '\0';
    python = exe;
    return 1;
}

static size_t ping(void *arg, uint64_t i, char *buf, size_t cap, unsigned *pieces) {
    (void)arg, (void)pieces;
    return (size_t)snprintf(buf, cap, "ping-%llu\n\n", (unsigned long long)i);
}

/* The servers' stderr (hello_server's summary, a Python traceback): shown
 * only when something failed. */
static char err_path[64] = "/tmp/bench_hello.XXXXXX";

static void drop_stderr(void) { unlink(err_path); }

static void show_stderr(void) {
    char line[512];
    FILE *f = fopen(err_path, "r");
    while (f && fgets(line, sizeof line, f))
        fprintf(stderr, "  server: %s", line);
    if (f)
        fclose(f);
}

/* Start server k; count 0 means no --count (the idle run). */
static int start(int k, long count, hc_child *c) {
    static long bare_count;
    char cnt[32];
    snprintf(cnt, sizeof cnt, "%ld", count);
    char *rill[] = {rill_path, "--port", "0", "--backlog", "1024", "--count", cnt, NULL};
    char *seed[] = {(char *)python, BASELINE, "--log", "/dev/null", "--count", cnt, NULL};
    if (!count) /* drop "--count N": the server runs until SIGTERM */
        rill[5] = seed[4] = NULL;
    bare_count = count;
    int rc = k == BARE ? hc_spawn(NULL, bare_server, &bare_count, err_path, 10000, c)
                       : hc_spawn(k == RILL ? rill : seed, NULL, NULL, err_path, 10000, c);
    if (rc != 0) {
        fprintf(stderr, "bench_hello: %s did not start listening\n", names[k]);
        show_stderr();
    }
    return rc;
}

static int exited_ok(int k, int st) {
    if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 1;
    fprintf(stderr, "bench_hello: %s %s (status %d)\n", names[k],
            st == -1 ? "did not exit and was killed" : "exited with a failure", st);
    show_stderr();
    return 0;
}

/* Non-idle CPU jiffies of the whole machine, from /proc/stat. */
static double busy_jiffies(void) {
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    return n == 8 ? (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) : 0;
}

static int one_round(int k, long n, unsigned conc, int round, struct result *r) {
    hc_child c;
    if (start(k, n, &c) != 0)
        return -1;
    hc_opts o = {.host = c.host, .port = c.port, .concurrency = conc, .total = (uint64_t)n,
                 .req_cap = 64, .request = ping};
    hc_result res;
    struct rusage me0, me1, srv;
    getrusage(RUSAGE_SELF, &me0);
    double j0 = busy_jiffies();
    int rc = hc_run(&o, &res);
    double j1 = busy_jiffies();
    getrusage(RUSAGE_SELF, &me1);
    int st = hc_reap(&c, 10000, &srv);
    if (rc != 0) {
        fprintf(stderr, "bench_hello: %s: %llu of %ld connections FAILED (%llu wrong replies, %llu "
                "EADDRNOTAVAIL)\n", names[k], (unsigned long long)res.errors, n,
                (unsigned long long)res.mismatches, (unsigned long long)res.addr_unavail);
        for (int i = 0; i < 3 && res.first[i][0]; i++)
            fprintf(stderr, "  %s\n", res.first[i]);
        if (res.addr_unavail)
            fprintf(stderr, "  out of local ports: see `ss -s` (TIME_WAIT) and "
                    "net.ipv4.ip_local_port_range\n");
        show_stderr();
        return -1;
    }
    if (!exited_ok(k, st))
        return -1;
    if (res.peak != (conc < (unsigned long)n ? conc : (unsigned long)n)) {
        fprintf(stderr, "bench_hello: %s: only %llu connections in flight\n", names[k],
                (unsigned long long)res.peak);
        return -1;
    }
    double cps = (double)n / res.seconds, cpu = hc_cpu_s(&srv);
    double mine = hc_cpu_s(&me1) - hc_cpu_s(&me0);
    double busy = (j1 - j0) / (double)sysconf(_SC_CLK_TCK) / res.seconds;
    /* Which process was the bottleneck: CPU as a share of the run's time. */
    printf("round %d %-17s %6.0f conns/s %6.3f s | server CPU %.3f s %3.0f%% (user %.3f) | "
           "client %.3f s %3.0f%% | %.2f cores busy\n", round, names[k], cps, res.seconds, cpu,
           100 * cpu / res.seconds,
           (double)srv.ru_utime.tv_sec + (double)srv.ru_utime.tv_usec * 1e-6, mine,
           100 * mine / res.seconds, busy);
    if (cps > r->cps)
        r->cps = cps, r->busy = busy;
    if (r->cpu == 0 || cpu < r->cpu)
        r->cpu = cpu, r->client_cpu = mine;
    return 0;
}

static int idle_run(int k, struct result *r) {
    hc_child c;
    struct rusage ru;
    if (start(k, 0, &c) != 0)
        return -1;
    kill(c.pid, SIGTERM);
    if (!exited_ok(k, hc_reap(&c, 10000, &ru)))
        return -1;
    if (r->idle == 0 || hc_cpu_s(&ru) < r->idle)
        r->idle = hc_cpu_s(&ru);
    return 0;
}

static int usage(void) {
    fprintf(stderr, "usage: bench_hello [--conns N] [--concurrency C] [--rounds R] "
            "[--servers bare,rill,seed]\n");
    return 2;
}

static void ratio(const char *what, double v, const char *target, int met) {
    printf("ratio  %-34s %7.3f   target %s: %s\n", what, v, target, met ? "met" : "MISSED");
}

int main(int argc, char **argv) {
    long n = 20000, rounds = 3;
    unsigned conc = 500;
    const char *servers = "bare,rill,seed";
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            return usage();
        if (!strcmp(argv[i], "--conns"))
            n = atol(argv[++i]);
        else if (!strcmp(argv[i], "--concurrency"))
            conc = (unsigned)atol(argv[++i]);
        else if (!strcmp(argv[i], "--rounds"))
            rounds = atol(argv[++i]);
        else if (!strcmp(argv[i], "--servers"))
            servers = argv[++i];
        else
            return usage();
    }
    if (n <= 0 || conc == 0 || rounds <= 0)
        return usage();
    if (getenv("PYTHON"))
        python = getenv("PYTHON");
    signal(SIGPIPE, SIG_IGN);
    long fds = hc_raise_nofile(4 * (long)conc + 64);
    int efd = mkstemp(err_path);
    if (efd < 0)
        return perror("bench_hello: mkstemp"), 1;
    close(efd);
    atexit(drop_stderr);
    ssize_t len = readlink("/proc/self/exe", rill_path, sizeof rill_path - 32);
    char *slash = len > 0 ? memrchr(rill_path, '/', (size_t)len) : NULL;
    if (!slash)
        return fprintf(stderr, "bench_hello: cannot find my own directory\n"), 1;
    strcpy(slash, "/hello_server");

    struct result r[NSERVERS] = {{0}};
    r[BARE].on = strstr(servers, "bare") != NULL;
    r[RILL].on = strstr(servers, "rill") != NULL && access(rill_path, X_OK) == 0;
    r[SEED].on = strstr(servers, "seed") != NULL && resolve_python();
    printf("bench_hello: %ld connections per round, %u in flight, best of %ld rounds, loopback; "
           "RLIMIT_NOFILE %ld; load %.2f\n", n, conc, rounds, fds, loadavg());
    if (strstr(servers, "rill") && !r[RILL].on)
        printf("rill: %s not found: not measured\n", rill_path);
    if (strstr(servers, "seed") && !r[SEED].on)
        printf("seed: %s not found: no Python baseline\n", python);
    if (r[SEED].on)
        printf("seed: %s %s, its DEBUG log (a line per accept, the seed's stdout) to /dev/null\n",
               python, BASELINE);

    for (long round = 1; round <= rounds; round++)
        for (int k = 0; k < NSERVERS; k++)
            if (r[k].on && one_round(k, n, conc, (int)round, &r[k]) != 0)
                return 1;
    for (long round = 1; round <= rounds; round++)
        for (int k = 0; k < NSERVERS; k++)
            if (r[k].on && idle_run(k, &r[k]) != 0)
                return 1;

    printf("\n%-18s %10s %16s %12s %12s %14s\n", "server", "conns/s", "CPU s/10k conns",
           "CPU s/run", "idle CPU s", "client s/10k");
    for (int k = 0; k < NSERVERS; k++)
        if (r[k].on)
            printf("%-18s %10.0f %16.4f %12.3f %12.4f %14.4f\n", names[k], r[k].cps,
                   (r[k].cpu - r[k].idle) * 1e4 / (double)n, r[k].cpu, r[k].idle,
                   r[k].client_cpu * 1e4 / (double)n);
    printf("(CPU s/10k conns: the server's user+sys over a run less its idle start/stop, per "
           "10,000 connections)\n\n");
    double net[NSERVERS];
    for (int k = 0; k < NSERVERS; k++)
        net[k] = r[k].cpu - r[k].idle;
    if (r[RILL].on && r[SEED].on) {
        ratio("CPU rill / seed", net[RILL] / net[SEED], "<= 0.333", net[RILL] * 3 <= net[SEED]);
        printf("ratio  %-34s %7.2f\n", "conns/s rill / seed", r[RILL].cps / r[SEED].cps);
    }
    if (r[RILL].on && r[BARE].on)
        ratio("conns/s rill / bare", r[RILL].cps / r[BARE].cps, ">= 0.9",
              r[RILL].cps >= 0.9 * r[BARE].cps);
    if (r[BARE].on && r[SEED].on)
        printf("ratio  %-34s %7.2f\nratio  %-34s %7.3f\n", "conns/s bare / seed",
               r[BARE].cps / r[SEED].cps, "CPU bare / seed", net[BARE] / net[SEED]);
    printf("load   %.2f (1-minute average, after the run)\n", loadavg());
    return 0;
}
