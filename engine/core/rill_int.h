/* Internal declarations shared by engine/ and stages/ (prefix rill__). */
#ifndef RILL_INT_H
#define RILL_INT_H

#include "rill.h"

#if defined(RILL_BUILDING)
#define RILL_API __attribute__((visibility("default")))
#else
#define RILL_API
#endif

#define RILL__UNUSED(x) ((void)(x))
#define RILL__LIKELY(x) __builtin_expect(!!(x), 1)
#define RILL__UNLIKELY(x) __builtin_expect(!!(x), 0)

/* strdup without POSIX-only declarations leaking into callers. */
char *rill__strdup(const char *s);

#endif
