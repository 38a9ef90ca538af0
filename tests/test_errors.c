/* Error codes: every rill code has its own name and text, the range is
 * dense, and errno values pass through. */
#include <string.h>

#include "rill.h"
#include "rill_test.h"

RILL_TEST(errors, every_rill_code_has_a_name_and_a_text) {
    for (int code = -10001; code > RILL_EMAX_; code--) {
        const char *name = rill_errname(code);
        CHECK(strncmp(name, "RILL_E", 6) == 0);
        CHECK(strcmp(rill_strerror(code), "unknown error") != 0);
        for (int other = code + 1; other <= -10001; other++)
            CHECK(strcmp(rill_errname(other), name) != 0);
    }
    CHECK_STREQ(rill_errname(RILL_EABORTED), "RILL_EABORTED");
    CHECK_STREQ(rill_strerror(RILL_EABORTED), "pipeline aborted");
}

RILL_TEST(errors, codes_outside_the_list_are_unknown) {
    CHECK_STREQ(rill_errname(RILL_EMAX_), "UNKNOWN");
    CHECK_STREQ(rill_strerror(RILL_EMAX_), "unknown error");
    CHECK_STREQ(rill_errname(-10000), "UNKNOWN");
    CHECK_STREQ(rill_errname(1), "UNKNOWN");
}

RILL_TEST(errors, zero_and_errno_values) {
    CHECK_STREQ(rill_errname(RILL_OK), "RILL_OK");
    CHECK_STREQ(rill_strerror(RILL_OK), "success");
    CHECK_STREQ(rill_errname(-ENOENT), "ENOENT");
    CHECK_STREQ(rill_errname(RILL_EAGAIN), "EAGAIN");
    CHECK(strcmp(rill_strerror(-EPIPE), "unknown error") != 0);
}
