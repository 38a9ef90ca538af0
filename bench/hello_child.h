/* A server under test as a child process of the benchmark or test that
 * drives it (bench/hello.c, tests/test_hello_load.c): hc_spawn starts it
 * with its stdout a pipe and waits for its first line, "listening on
 * HOST:PORT"; hc_reap waits for its exit, with its CPU time from wait4.
 * Included by bench/hello_client.h. Each function static inline. */
#ifndef RILL_BENCH_HELLO_CHILD_H
#define RILL_BENCH_HELLO_CHILD_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline double hc_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct hc_child {
    pid_t pid;
    int out;        /* read end of the child's stdout */
    uint16_t port;
    char host[64];
} hc_child;

/* Start argv (or, when argv is NULL, fn(arg) in a fork of this process,
 * whose return value is the exit status) with stdout a pipe and stderr sent
 * to err_path (NULL: inherited), and wait up to timeout_ms for its
 * "listening on HOST:PORT" line. Returns 0, or -1 with the child reaped. */
static inline int hc_spawn(char *const argv[], int (*fn)(void *), void *arg, const char *err_path,
                           int timeout_ms, hc_child *c) {
    int p[2];
    memset(c, 0, sizeof *c);
    c->out = -1;
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    fflush(NULL);
    c->pid = fork();
    if (c->pid < 0) {
        close(p[0]), close(p[1]);
        return -1;
    }
    if (c->pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        if (err_path) {
            int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (e >= 0)
                dup2(e, STDERR_FILENO);
        }
        if (!argv)
            _exit(fn(arg));
        execvp(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(p[1]);
    c->out = p[0];
    char line[256];
    size_t len = 0;
    double until = hc_now() + timeout_ms / 1000.0;
    while (len < sizeof line - 1 && !memchr(line, '\n', len)) {
        struct pollfd pf = {.fd = c->out, .events = POLLIN};
        int left = (int)((until - hc_now()) * 1000);
        if (left <= 0 || poll(&pf, 1, left) <= 0)
            break;
        ssize_t n = read(c->out, line + len, sizeof line - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    line[len] = '\0';
    char *colon = strrchr(line, ':');
    unsigned port = 0;
    if (strncmp(line, "listening on ", 13) == 0 && colon && sscanf(colon + 1, "%u", &port) == 1 &&
        port > 0 && port < 65536 && (size_t)(colon - line - 13) < sizeof c->host) {
        memcpy(c->host, line + 13, (size_t)(colon - line - 13));
        c->port = (uint16_t)port;
        return 0;
    }
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
    close(c->out);
    c->pid = 0;
    return -1;
}

/* Wait up to timeout_ms for c to exit (SIGKILL it after that), with its
 * resource usage. Returns its wait status, or -1 if it had to be killed. */
static inline int hc_reap(hc_child *c, int timeout_ms, struct rusage *ru) {
    int st = 0;
    double until = hc_now() + timeout_ms / 1000.0;
    pid_t got;
    while ((got = wait4(c->pid, &st, WNOHANG, ru)) == 0 && hc_now() < until) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    int killed = got == 0;
    if (killed) {
        kill(c->pid, SIGKILL);
        wait4(c->pid, &st, 0, ru);
    }
    close(c->out);
    c->pid = 0;
    return killed ? -1 : st;
}

static inline double hc_cpu_s(const struct rusage *ru) {
    return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) +
           (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) * 1e-6;
}

#endif
