/* Tests that drive an external program (nc, socat, curl...) check for it
 * first: a missing tool fails the test at once with the Debian package to
 * install, instead of the test waiting out its timeout for a client that
 * never ran. */
#ifndef RILL_TESTS_NEED_TOOL_H
#define RILL_TESTS_NEED_TOOL_H

#include <stdio.h>

#include "rill_test.h"
#include "run_cmd.h"

/* 0 if tool is on PATH; else a test failure naming it and its package, -1. */
static inline int need_tool_at(const char *tool, const char *package, const char *file,
                               int line) {
    char cmd[256], out[16];
    snprintf(cmd, sizeof cmd, "command -v '%s' >/dev/null 2>&1 && echo yes", tool);
    if (run(cmd, out, sizeof out) == 0 && out[0] == 'y')
        return 0;
    rill_test__failf(file, line,
                     "%s is not installed (not on PATH): install the Debian package %s "
                     "(apt-get install %s, or scripts/deps.sh test)",
                     tool, package, package);
    return -1;
}

/* In a test body: return (failed) unless tool is installed. */
#define NEED_TOOL(tool, package)                                               \
    do {                                                                       \
        if (need_tool_at(tool, package, __FILE__, __LINE__))                   \
            return;                                                            \
    } while (0)

#endif
