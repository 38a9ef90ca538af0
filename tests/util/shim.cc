// Registers the C test bodies of tests/test_*.c with GoogleTest.
#include <gtest/gtest.h>

#include <cstdarg>
#include <cstdio>
#include <string>
#include <vector>

#include "rill_test.h"

namespace {

struct CTest {
    const char *suite, *name, *file;
    int line;
    rill_test_fn fn;
};

std::vector<CTest> &registry() {
    static std::vector<CTest> r;
    return r;
}

class CBody : public testing::Test {
  public:
    explicit CBody(rill_test_fn fn) : fn_(fn) {}
    void TestBody() override { fn_(); }

  private:
    rill_test_fn fn_;
};

}  // namespace

extern "C" void rill_test__register(const char *suite, const char *name, rill_test_fn fn,
                                    const char *file, int line) {
    registry().push_back(CTest{suite, name, file, line, fn});
}

extern "C" void rill_test__fail(const char *file, int line, const char *msg) {
    ADD_FAILURE_AT(file, line) << msg;
}

extern "C" void rill_test__failf(const char *file, int line, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ADD_FAILURE_AT(file, line) << buf;
}

extern "C" void rill_test__skip(const char *file, int line, const char *msg) {
    ::testing::internal::AssertHelper(::testing::TestPartResult::kSkip, file, line, msg) =
        ::testing::Message();
}

int main(int argc, char **argv) {
    testing::InitGoogleTest(&argc, argv);
    for (const CTest &t : registry()) {
        rill_test_fn fn = t.fn;
        testing::RegisterTest(t.suite, t.name, nullptr, nullptr, t.file, t.line,
                              [fn]() -> testing::Test * { return new CBody(fn); });
    }
    return RUN_ALL_TESTS();
}
