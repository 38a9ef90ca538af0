/* examples/hello_server as a child process for the end-to-end tests: start
 * it on --port 0, read the port from its "listening on HOST:PORT" line, wait
 * for its exit (with a generous bound), read its stderr summary. */
#ifndef RILL_TESTS_HELLO_CHILD_H
#define RILL_TESTS_HELLO_CHILD_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HELLO_BIN RILL_BIN_DIR "/hello_server"
#define HELLO_EXIT_BOUND_S 60

typedef struct hello_child {
    pid_t pid;
    uint16_t port;
    char err_path[256];
    char summary[1024]; /* its last stderr line, after hello_wait */
} hello_child;

/* Start hello_server --port 0 with the NULL-terminated extra args; nofile > 0
 * sets its RLIMIT_NOFILE (soft and hard) first. Returns 0 once it listens
 * (c->port known), or -1. */
static inline int hello_start(hello_child *c, const char *const *args, long nofile) {
    static int seq;
    const char *argv[32];
    int n = 0;
    argv[n++] = HELLO_BIN;
    argv[n++] = "--port";
    argv[n++] = "0";
    for (; args && *args && n < 31; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    memset(c, 0, sizeof *c);
    snprintf(c->err_path, sizeof c->err_path, "%s/hello_server_%d_%d.err", RILL_TEST_TMP,
             (int)getpid(), seq++);
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    c->pid = fork();
    if (c->pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (c->pid == 0) {
        int e = open(c->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (e < 0 || dup2(p[1], 1) < 0 || dup2(e, 2) < 0)
            _exit(126);
        if (nofile > 0) {
            struct rlimit rl = {(rlim_t)nofile, (rlim_t)nofile};
            if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                _exit(126);
        }
        execv(HELLO_BIN, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    FILE *out = fdopen(p[0], "r");
    char line[256];
    int ok = out && fgets(line, sizeof line, out) && strncmp(line, "listening on ", 13) == 0;
    if (ok) {
        char *colon = strrchr(line, ':');
        long port = colon ? strtol(colon + 1, NULL, 10) : 0;
        ok = port > 0 && port < 65536;
        c->port = (uint16_t)port;
    }
    if (out)
        fclose(out);
    else
        close(p[0]);
    if (!ok) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
        c->pid = 0;
        return -1;
    }
    return 0;
}

/* Wait for the exit (killing it after the bound) and read the summary.
 * Returns the exit status, or -1 if it did not exit normally in time. */
static inline int hello_wait(hello_child *c) {
    int st = 0, rc = -1;
    pid_t r = 0;
    for (int i = 0; i < HELLO_EXIT_BOUND_S * 100 && (r = waitpid(c->pid, &st, WNOHANG)) == 0;
         i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (r == 0) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, &st, 0);
    } else if (r == c->pid && WIFEXITED(st)) {
        rc = WEXITSTATUS(st);
    }
    c->pid = 0;
    FILE *f = fopen(c->err_path, "r");
    char line[1024];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "hello_server: accepted=", 23) == 0)
            snprintf(c->summary, sizeof c->summary, "%s", line);
    if (f)
        fclose(f);
    unlink(c->err_path);
    return rc;
}

#if defined(__SANITIZE_THREAD__)
#define HELLO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HELLO_TSAN 1
#endif
#endif

/* Send sig (SIGINT/SIGTERM: stop) and wait for the exit as hello_wait.
 * Under ThreadSanitizer the signal is sent again every second while the
 * child lives: its runtime can drop an asynchronous signal that arrives
 * between "listening on" and the server's first blocking call (seen: the
 * handler never runs, the server sleeps in epoll_wait for ever; never
 * without TSan). A second stop signal is harmless to hello_server. */
static inline int hello_stop(hello_child *c, int sig) {
    if (kill(c->pid, sig) != 0)
        return -1;
#ifdef HELLO_TSAN
    for (int i = 0; i < HELLO_EXIT_BOUND_S * 100; i++) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid != 0)
            break; /* it has exited (left for hello_wait to reap) */
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (i % 100 == 99)
            kill(c->pid, sig);
    }
#endif
    return hello_wait(c);
}

/* A counter from the summary ("key=N"), or -1 if missing. */
static inline long long hello_stat(const hello_child *c, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *p = strstr(c->summary, pat);
    return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

#endif
