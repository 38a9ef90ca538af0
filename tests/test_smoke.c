/* The harness itself: a C body runs, and the library links. */
#include "rill.h"
#include "rill_test.h"

RILL_TEST(smoke, version_and_errors) {
    CHECK_EQ(rill_version(), RILL_VERSION_HEX);
    CHECK_STREQ(rill_version_string(), RILL_VERSION_STRING);
    CHECK_STREQ(rill_errname(RILL_ECYCLE), "RILL_ECYCLE");
    CHECK_STREQ(rill_errname(-ENOENT), "ENOENT");
    CHECK_STREQ(rill_strerror(0), "success");
    CHECK_STREQ(rill_strerror(-ENOENT), "No such file or directory");
    CHECK_STREQ(rill_strerror(-123456), "unknown error");
}
