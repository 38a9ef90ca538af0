/* Owned item copies: counter and bytes in one allocation. */
#include <stdlib.h>
#include <string.h>

#include "rill_int.h"

static void rill__copy_release(rill_ref *ref) { free(ref); }

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
