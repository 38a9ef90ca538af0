/* A real redis-server for a test: on a free 127.0.0.1 port, in a temporary
 * directory of its own, stopped whatever happens to the test.
 *
 * Stopping it "whatever happens": the server is this process's child, forked
 * with PR_SET_PDEATHSIG = SIGKILL, so the kernel kills it when the test
 * process dies in any way (a crash, ctest's timeout SIGKILL); an atexit
 * handler stops every server still running at a normal exit, including one
 * after a failed CHECK that returned before the test's own stop. The same
 * holds for worker processes started with proc_spawn.
 *
 *   redis_server rs;
 *   if (redis_server_start(&rs, false)) return;   // skipped or failed: reported
 *   ... 127.0.0.1:rs.port ...
 *   redis_server_stop(&rs);
 */
#ifndef RILL_TESTS_REDIS_SERVER_H
#define RILL_TESTS_REDIS_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rill_test.h"
#include "run_cmd.h"

#define REDIS_START_S 20 /* bound on a server's start, never a measurement */

typedef struct redis_server {
    pid_t pid;
    uint16_t port;
    bool aof;
    char dir[256];
    char addr[32]; /* "127.0.0.1:PORT" */
} redis_server;

/* Every child still running, for the atexit handler. */
#define REDIS_MAX_CHILDREN 64
static pid_t redis__children[REDIS_MAX_CHILDREN];

static inline void redis__at_exit(void) {
    for (int i = 0; i < REDIS_MAX_CHILDREN; i++)
        if (redis__children[i] > 0) {
            kill(redis__children[i], SIGKILL);
            waitpid(redis__children[i], NULL, 0);
            redis__children[i] = 0;
        }
}

static inline void redis__track(pid_t pid, bool add) {
    static bool registered;
    if (!registered) {
        registered = true;
        atexit(redis__at_exit);
    }
    for (int i = 0; i < REDIS_MAX_CHILDREN; i++)
        if (add ? redis__children[i] == 0 : redis__children[i] == pid) {
            redis__children[i] = add ? pid : 0;
            return;
        }
}

static inline double redis__now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void redis__pause_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Start argv[0] (a path, or a name found on PATH) as a child that dies with
 * this process; stdout to out, stderr to err (paths; NULL: /dev/null).
 * Returns the pid or -1. Wait for it with proc_wait. */
static inline pid_t proc_spawn(char *const argv[], const char *out, const char *err) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) {
        if (pid > 0)
            redis__track(pid, true);
        return pid;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* the parent died before the prctl */
        _exit(127);
    int o = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o >= 0)
        dup2(o, 1);
    if (e >= 0)
        dup2(e, 2);
    execvp(argv[0], argv);
    _exit(127);
}

/* Wait for pid for at most limit_s seconds (then kill it): its exit status,
 * or -1 if it was killed, crashed or did not end in time. */
static inline int proc_wait(pid_t pid, double limit_s) {
    double end = redis__now() + limit_s;
    int st = 0;
    pid_t w;
    while ((w = waitpid(pid, &st, WNOHANG)) == 0 && redis__now() < end)
        redis__pause_ms(10);
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        redis__track(pid, false);
        return -1;
    }
    redis__track(pid, false);
    return w == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A port nothing listens on now (bound and released: another process may
 * take it before the server does; redis_server_start retries). */
static inline uint16_t redis__free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    uint16_t port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* A connection to the test's server (for setting up and checking). */
static inline redisContext *redis_connect(const redis_server *s) {
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
    if (c && c->err) {
        redisFree(c);
        return NULL;
    }
    if (c)
        redisSetTimeout(c, tv);
    return c;
}

/* Kill the server at once (SIGKILL: no shutdown save), as a crash would. */
static inline void redis_server_kill(redis_server *s) {
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        redis__track(s->pid, false);
    }
    s->pid = 0;
}

/* Run the server (again) on s->port and s->dir; wait until it answers PING.
 * With AOF, appendfsync no: Redis write()s the AOF before it replies, so
 * what a client saw acknowledged survives a SIGKILL of the server (the
 * page cache keeps it); fsync only matters if the machine goes down, and
 * on this shared disk fsync always made a commit cost 25 ms. */
static inline int redis__launch(redis_server *s) {
    char port[16];
    snprintf(port, sizeof port, "%u", (unsigned)s->port);
    char log[300];
    snprintf(log, sizeof log, "%s/redis.log", s->dir);
    char *argv[] = {(char *)"redis-server", (char *)"--port", port, (char *)"--bind",
                    (char *)"127.0.0.1", (char *)"--dir", s->dir, (char *)"--save", (char *)"",
                    (char *)"--appendonly", (char *)(s->aof ? "yes" : "no"),
                    (char *)"--appendfsync", (char *)"no", (char *)"--daemonize",
                    (char *)"no", (char *)"--logfile", log, NULL};
    s->pid = proc_spawn(argv, NULL, NULL);
    if (s->pid < 0)
        return -1;
    double end = redis__now() + REDIS_START_S;
    while (redis__now() < end) {
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) { /* exited: port taken? */
            redis__track(s->pid, false);
            s->pid = 0;
            return -1;
        }
        redisContext *c = redis_connect(s);
        redisReply *r = c ? (redisReply *)redisCommand(c, "PING") : NULL;
        bool up = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
        if (r)
            freeReplyObject(r);
        if (c)
            redisFree(c);
        if (up)
            return 0;
        redis__pause_ms(20);
    }
    redis_server_kill(s); /* started but never answered: not left running */
    return -1;
}

/* Start a server (aof: --appendonly yes). 0 when it answers;
 * otherwise the test has been marked skipped (redis-server not installed)
 * or failed, and the caller returns. */
static inline int redis_server_start_at(redis_server *s, bool aof, const char *file, int line) {
    char out[16];
    memset(s, 0, sizeof *s);
    if (run("command -v redis-server >/dev/null 2>&1 && echo yes", out, sizeof out) != 0 ||
        out[0] != 'y') {
        rill_test__skip(file, line,
                        "redis-server is not installed: install the Debian package "
                        "redis-server (scripts/deps.sh test) to run this test");
        return 1;
    }
    snprintf(s->dir, sizeof s->dir, "%s/redis-XXXXXX", RILL_TEST_TMP);
    if (!mkdtemp(s->dir)) {
        rill_test__failf(file, line, "mkdtemp %s: %s", s->dir, strerror(errno));
        return -1;
    }
    s->aof = aof;
    for (int tries = 0; tries < 5; tries++) {
        s->port = redis__free_port();
        if (s->port && redis__launch(s) == 0) {
            snprintf(s->addr, sizeof s->addr, "127.0.0.1:%u", (unsigned)s->port);
            return 0;
        }
    }
    rill_test__failf(file, line, "redis-server did not start (see %s/redis.log)", s->dir);
    return -1;
}
#define redis_server_start(s, aof) redis_server_start_at((s), (aof), __FILE__, __LINE__)


/* Start it again on the same port and directory (reloading its AOF). */
static inline int redis_server_restart(redis_server *s) {
    redis_server_kill(s);
    for (int tries = 0; tries < 50; tries++) /* the port may linger briefly */
        if (redis__launch(s) == 0)
            return 0;
        else
            redis__pause_ms(100);
    return -1;
}

/* Stop the server and remove its directory. */
static inline void redis_server_stop(redis_server *s) {
    redis_server_kill(s);
    if (s->dir[0]) {
        char cmd[320], out[8];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
        run(cmd, out, sizeof out);
        s->dir[0] = '\0';
    }
}

/* One command on c, its reply freed; the integer reply (or -1). */
static inline long long redis_int(redisContext *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = (redisReply *)redisvCommand(c, fmt, ap);
    va_end(ap);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    return v;
}

#endif
