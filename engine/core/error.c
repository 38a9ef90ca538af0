/* Error names and messages: rill's own codes (RILL_ERRNO_MAP) and negated
 * errno values. */
#include <string.h>

#include "rill_int.h"

#define RILL__ERR_NAME(name, value, text) "RILL_" #name,
#define RILL__ERR_TEXT(name, value, text) text,
static const char *const rill__err_names[] = {RILL_ERRNO_MAP(RILL__ERR_NAME)};
static const char *const rill__err_texts[] = {RILL_ERRNO_MAP(RILL__ERR_TEXT)};

/* The list is dense from -10001: its position indexes both tables. */
#define RILL__ERR_FIRST (-10001)
#define RILL__ERR_POS(name, value, text) rill__err_pos_##name,
enum { RILL_ERRNO_MAP(RILL__ERR_POS) rill__err_count };
#define RILL__ERR_DENSE(name, value, text) \
    _Static_assert((value) == RILL__ERR_FIRST - rill__err_pos_##name, "RILL_" #name " out of order");
RILL_ERRNO_MAP(RILL__ERR_DENSE)
_Static_assert(RILL_EMAX_ == RILL__ERR_FIRST - rill__err_count, "RILL_EMAX_ is one past the last");

/* Index of a rill code in the tables, or -1. */
static int rill__err_index(int code) {
    return code <= RILL__ERR_FIRST && code > RILL_EMAX_ ? RILL__ERR_FIRST - code : -1;
}

RILL_API const char *rill_strerror(int code) {
    int i = rill__err_index(code);
    if (i >= 0)
        return rill__err_texts[i];
    if (code == 0)
        return "success";
    if (code < 0 && code > -10000) {
        /* strerrordesc_np: static, thread-safe (unlike strerror). */
        const char *s = strerrordesc_np(-code);
        if (s)
            return s;
    }
    return "unknown error";
}

RILL_API const char *rill_errname(int code) {
    int i = rill__err_index(code);
    if (i >= 0)
        return rill__err_names[i];
    if (code == 0)
        return "RILL_OK";
    if (code < 0 && code > -10000) {
        const char *s = strerrorname_np(-code);
        if (s)
            return s;
    }
    return "UNKNOWN";
}
