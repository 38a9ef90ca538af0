/* Running a program the way a user would, for the end-to-end tests of the
 * examples (tests/test_coro_examples.c, tests/test_ip_stats.c). */
#ifndef RILL_TESTS_RUN_CMD_H
#define RILL_TESTS_RUN_CMD_H

#include <stddef.h>
#include <stdio.h>
#include <sys/wait.h>

/* Run a shell command; its stdout goes to buf (at most cap - 1 bytes,
 * NUL-terminated). Returns the exit status, or -1 if it could not run or
 * did not exit normally (a crash must not pass for a status). */
static inline int run(const char *cmd, char *buf, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(buf, 1, cap - 1, p);
    buf[n] = '\0';
    int st = pclose(p);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
