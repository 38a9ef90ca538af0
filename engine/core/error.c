/* Error names and messages: rill's own codes and negated errno values. */
#include <string.h>

#include "rill_int.h"

static const struct {
    int code;
    const char *name, *text;
} rill__errors[] = {
    {RILL_OK, "RILL_OK", "success"},
    {RILL_EDONE, "RILL_EDONE", "generator exhausted"},
    {RILL_ECLOSED, "RILL_ECLOSED", "already closed"},
    {RILL_ESTATE, "RILL_ESTATE", "not allowed in the current state"},
    {RILL_ECYCLE, "RILL_ECYCLE", "connection would create a cycle"},
    {RILL_ETOOLONG, "RILL_ETOOLONG", "line longer than the configured limit"},
    {RILL_EABORTED, "RILL_EABORTED", "pipeline aborted"},
    {RILL_ENOTSUP, "RILL_ENOTSUP", "operation not supported"},
    {RILL_ESTAGE, "RILL_ESTAGE", "stage failed"},
    {RILL_EEXIST, "RILL_EEXIST", "name already in use"},
};

RILL_API const char *rill_strerror(int code) {
    for (size_t i = 0; i < sizeof rill__errors / sizeof rill__errors[0]; i++)
        if (rill__errors[i].code == code)
            return rill__errors[i].text;
    if (code < 0 && code > -10000) {
        /* strerrordesc_np: static, thread-safe (unlike strerror). */
        const char *s = strerrordesc_np(-code);
        if (s)
            return s;
    }
    return "unknown error";
}

RILL_API const char *rill_errname(int code) {
    for (size_t i = 0; i < sizeof rill__errors / sizeof rill__errors[0]; i++)
        if (rill__errors[i].code == code)
            return rill__errors[i].name;
    if (code < 0 && code > -10000) {
        const char *s = strerrorname_np(-code);
        if (s)
            return s;
    }
    return "UNKNOWN";
}
