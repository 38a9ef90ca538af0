#include <stdlib.h>
#include <string.h>

#include "rill_int.h"

RILL_API unsigned rill_version(void) { return RILL_VERSION_HEX; }
RILL_API const char *rill_version_string(void) { return RILL_VERSION_STRING; }

char *rill__strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}
