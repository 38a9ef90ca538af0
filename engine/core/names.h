/* A table from C-string names to pointers, for lookups by name that must stay
 * constant-time as a graph grows (a pipeline's stage names). The table does
 * not copy keys: each key must stay valid and unchanged while it is in the
 * table. Not thread-safe: the owner serializes every call. */
#ifndef RILL_NAMES_H
#define RILL_NAMES_H

#include <stddef.h>
#include <stdint.h>

typedef struct rill__name_slot {
    const char *key; /* NULL: empty */
    void *val;
    uint64_t hash;
} rill__name_slot;

typedef struct rill__names {
    rill__name_slot *slots; /* power-of-two count, at most 3/4 full */
    size_t cap, n;
} rill__names;

/* The value stored under key, or NULL. A zeroed table is empty. */
void *rill__names_get(const rill__names *t, const char *key);

/* Store val under key, which must not be in the table yet. Returns 0 or
 * RILL_ENOMEM (the table is unchanged then). */
int rill__names_put(rill__names *t, const char *key, void *val);

/* Make room for extra more puts, which then cannot fail. 0 or RILL_ENOMEM. */
int rill__names_reserve(rill__names *t, size_t extra);

/* Free the slots (not the keys or values); the table is empty again. */
void rill__names_free(rill__names *t);

#endif
