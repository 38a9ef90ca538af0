/* rill's C test harness: test bodies are C functions that register
 * themselves; tests/util/shim.cc hands them to GoogleTest (filters, XML output,
 * ctest discovery). A failed CHECK reports through GoogleTest and returns
 * from the test body (no longjmp across C++ frames). Never call CHECK from a
 * worker thread: record the failure and check it in the test thread. */
#ifndef RILL_TEST_H
#define RILL_TEST_H

#include <stdint.h>
#include <string.h>

/* RILL_TEST_TSAN: 1 in a ThreadSanitizer build (gcc's macro or clang's
 * feature test), where timing-dependent checks are relaxed. */
#if defined(__SANITIZE_THREAD__)
#define RILL_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RILL_TEST_TSAN 1
#endif
#endif
#ifndef RILL_TEST_TSAN
#define RILL_TEST_TSAN 0
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*rill_test_fn)(void);
void rill_test__register(const char *suite, const char *name, rill_test_fn fn,
                         const char *file, int line);
void rill_test__fail(const char *file, int line, const char *msg);
void rill_test__failf(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Mark the running test skipped (GTEST_SKIP); the caller then returns. */
void rill_test__skip(const char *file, int line, const char *msg);

#define RILL_TEST(suite, name)                                                 \
    static void suite##__##name(void);                                         \
    __attribute__((constructor)) static void suite##__##name##__reg(void) {    \
        rill_test__register(#suite, #name, suite##__##name, __FILE__, __LINE__); \
    }                                                                          \
    static void suite##__##name(void)

/* Fail and return from the (void) test body. */
#define CHECK(c)                                                               \
    do {                                                                       \
        if (!(c)) {                                                            \
            rill_test__fail(__FILE__, __LINE__, "CHECK(" #c ") failed");      \
            return;                                                            \
        }                                                                      \
    } while (0)

#define CHECK_EQ(a, b)                                                         \
    do {                                                                       \
        long long rill__a = (long long)(a), rill__b = (long long)(b);          \
        if (rill__a != rill__b) {                                              \
            rill_test__failf(__FILE__, __LINE__, "CHECK_EQ(%s, %s): %lld != %lld", \
                             #a, #b, rill__a, rill__b);                        \
            return;                                                            \
        }                                                                      \
    } while (0)

#define CHECK_STREQ(a, b)                                                      \
    do {                                                                       \
        const char *rill__a = (a), *rill__b = (b);                             \
        if (!rill__a || !rill__b || strcmp(rill__a, rill__b) != 0) {           \
            rill_test__failf(__FILE__, __LINE__, "CHECK_STREQ(%s, %s): \"%s\" != \"%s\"", \
                             #a, #b, rill__a ? rill__a : "(null)",             \
                             rill__b ? rill__b : "(null)");                    \
            return;                                                            \
        }                                                                      \
    } while (0)

/* Check that a rill call returned 0, naming the error otherwise. */
#define CHECK_OK(call)                                                         \
    do {                                                                       \
        int rill__rc = (call);                                                 \
        if (rill__rc != 0) {                                                   \
            rill_test__failf(__FILE__, __LINE__, "%s returned %d (%s)", #call, \
                             rill__rc, rill_strerror(rill__rc));               \
            return;                                                            \
        }                                                                      \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
