/* hello_server rejects each bad option before it listens, with a message
 * naming the option, the value given and the range allowed (issue 15,
 * item 4: before, it printed only the option's name and the usage). */
#include <stdio.h>
#include <string.h>

#include "rill_test.h"
#include "run_cmd.h"

#define HELLO_BIN RILL_BIN_DIR "/hello_server"

/* Run hello_server ARGS; it must exit 2 with nothing on stdout (it never
 * listened) and a first stderr line containing each of the wants. */
static void rejects(const char *args, const char *const *wants, int *ok) {
    char cmd[512], out[4096], err[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>/dev/null", HELLO_BIN, args);
    *ok = 0;
    int rc = run(cmd, out, sizeof out);
    if (rc != 2 || *out) {
        rill_test__failf(__FILE__, __LINE__, "%s: status %d, stdout '%s'", args, rc, out);
        return;
    }
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1 >/dev/null | head -n 1", HELLO_BIN, args);
    run(cmd, err, sizeof err);
    for (; *wants; wants++)
        if (!strstr(err, *wants)) {
            rill_test__failf(__FILE__, __LINE__, "%s: '%s' not in: %s", args, *wants, err);
            return;
        }
    *ok = 1;
}

#define REJECTS(args, ...)                                                     \
    do {                                                                       \
        static const char *const w_[] = {__VA_ARGS__, NULL};                   \
        int ok_;                                                               \
        rejects(args, w_, &ok_);                                               \
        CHECK(ok_);                                                            \
    } while (0)

RILL_TEST(hello_options, the_reviews_four_say_value_and_range) {
    REJECTS("--max-message 1", "--max-message '1'", "out of range", "allowed: 2 to ");
    REJECTS("--port 70000", "--port '70000'", "out of range", "allowed: 0 to 65535");
    REJECTS("--count 0", "--count '0'", "out of range", "allowed: 1 to ");
    REJECTS("--max-conns 0", "--max-conns '0'", "out of range", "allowed: 1 to 4294967295");
}

RILL_TEST(hello_options, not_a_number_missing_value_and_unknown) {
    REJECTS("--port=x", "--port 'x'", "not a whole decimal number", "allowed: 0 to 65535");
    REJECTS("--backlog -1", "--backlog '-1'", "not a whole decimal number", "allowed: 1 to ");
    REJECTS("--idle-ms ' 5'", "--idle-ms ' 5'", "not a whole decimal number");
    REJECTS("--deadline-ms 99999999999999999999", "--deadline-ms '99999999999999999999'",
            "out of range", "allowed: 0 to 9223372036854 ms");
    REJECTS("--idle-ms", "--idle-ms needs a value", "allowed: 0 to ");
    REJECTS("--what 1", "unknown option '--what'");
    REJECTS("--host=", "--host needs an address");
}

/* Each option is checked before the server is made: a bad one after a port
 * already in use is still a usage error (2), not a bind failure (1). */
RILL_TEST(hello_options, checked_before_any_work) {
    REJECTS("--port 0 --max-message 1", "--max-message '1'");
    REJECTS("--host nowhere --port 0 --count 0", "--count '0'");
}
