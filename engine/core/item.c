/* Owned item copies: counter and bytes in one allocation. */
#include <stdlib.h>
#include <string.h>

#include "rill_int.h"

static void rill__copy_release(rill_ref *ref) { free(ref); }

/* Never released: retain and release skip it before touching the count, so
 * static items share no written cache line between threads. The count and
 * the no-op release are only a guard for code that reaches it otherwise. */
static void rill__static_release(rill_ref *ref) { (void)ref; }
RILL_API rill_ref rill__ref_static = { 1ul << 62, rill__static_release };

RILL_API int rill_item_copy(const void *data, size_t len, rill_item *out) {
    if (!out || (!data && len))
        return RILL_EINVAL;
    if (len > SIZE_MAX - sizeof(rill_ref) - 1)
        return RILL_ENOMEM;
    rill_ref *ref = malloc(sizeof *ref + len + 1);
    if (!ref)
        return RILL_ENOMEM;
    rill_ref_init(ref, rill__copy_release);
    char *bytes = (char *)(ref + 1);
    if (len)
        memcpy(bytes, data, len);
    bytes[len] = '\0';
    out->data = bytes;
    out->len = len;
    out->owner = ref;
    return 0;
}
