/* Fields and numbers inside items: every read stays within item->len, since
 * items are not NUL-terminated. */
#include <stdlib.h>
#include <string.h>

#include "rill_int.h"

static int rill__is_space(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
}

RILL_API int rill_fields_init(rill_fields *fs, const rill_item *item, char sep, unsigned flags) {
    if (!fs || !item || (flags & ~(unsigned)(RILL_FIELDS_SKIP_EMPTY | RILL_FIELDS_WHITESPACE)))
        return RILL_EINVAL;
    fs->rill__item = item;
    fs->rill__pos = 0;
    fs->rill__done = 0;
    fs->rill__sep = (unsigned char)sep;
    fs->rill__flags = flags & RILL_FIELDS_WHITESPACE ? flags | RILL_FIELDS_SKIP_EMPTY : flags;
    return 0;
}

/* Offset of the first separator at or after pos, or len. */
static size_t rill__field_end(const rill_fields *fs, const unsigned char *d, size_t pos,
                              size_t len) {
    if (fs->rill__flags & RILL_FIELDS_WHITESPACE) {
        while (pos < len && !rill__is_space(d[pos]))
            pos++;
        return pos;
    }
    if (pos >= len) /* an empty item's d may be NULL: no memchr on it */
        return len;
    const unsigned char *hit = memchr(d + pos, fs->rill__sep, len - pos);
    return hit ? (size_t)(hit - d) : len;
}

RILL_API int rill_fields_next(rill_fields *fs, rill_item *field) {
    if (!fs || !field)
        return RILL_EINVAL;
    const rill_item *it = fs->rill__item;
    const unsigned char *d = it->data;
    for (;;) {
        if (fs->rill__done)
            return RILL_EDONE;
        size_t pos = fs->rill__pos;
        size_t end = pos <= it->len ? rill__field_end(fs, d, pos, it->len) : it->len;
        /* The field ends at a separator (one more field follows it) or at the
         * item's end (this was the last one). */
        if (end >= it->len)
            fs->rill__done = 1;
        fs->rill__pos = end + 1;
        if (end == pos && (fs->rill__flags & RILL_FIELDS_SKIP_EMPTY))
            continue;
        field->data = d + pos;
        field->len = end - pos;
        field->owner = it->owner;
        return 0;
    }
}

RILL_API int rill_field_nth(const rill_item *item, char sep, unsigned flags, size_t n,
                            rill_item *field) {
    rill_fields fs;
    if (!field)
        return RILL_EINVAL;
    int rc = rill_fields_init(&fs, item, sep, flags);
    for (size_t i = 0; rc == 0; i++)
        if ((rc = rill_fields_next(&fs, field)) == 0 && i == n)
            return 0;
    field->data = item ? item->data : NULL;
    field->len = 0;
    field->owner = item ? item->owner : NULL;
    return rc;
}

RILL_API rill_item rill_item_trim(const rill_item *item) {
    const unsigned char *d = item->data;
    size_t b = 0, e = item->len;
    while (b < e && rill__is_space(d[b]))
        b++;
    while (e > b && rill__is_space(d[e - 1]))
        e--;
    rill_item out = { d + b, e - b, item->owner };
    return out;
}

static int rill__parse_fail(rill_parse_error *err, int rc, const char *what, size_t at) {
    if (err) {
        err->what = what;
        err->at = at;
    }
    return rc;
}

/* Digits of item from *pos into *v, at most limit; the sign is the caller's. */
static int rill__parse_digits(const rill_item *item, size_t pos, uint64_t limit, uint64_t *v,
                              rill_parse_error *err) {
    const unsigned char *d = item->data;
    if (pos == item->len)
        return rill__parse_fail(err, RILL_EINVAL, pos ? "no digits after the sign" : "empty",
                                pos);
    uint64_t acc = 0;
    for (; pos < item->len; pos++) {
        if (d[pos] < '0' || d[pos] > '9')
            return rill__parse_fail(err, RILL_EINVAL, "not a digit", pos);
        unsigned dig = d[pos] - '0';
        if (acc > (limit - dig) / 10)
            return rill__parse_fail(err, -ERANGE, "out of range", pos);
        acc = acc * 10 + dig;
    }
    *v = acc;
    return 0;
}

RILL_API int rill_item_u64(const rill_item *item, uint64_t *out, rill_parse_error *err) {
    if (!item || !out)
        return rill__parse_fail(err, RILL_EINVAL, "NULL argument", 0);
    size_t pos = item->len && ((const char *)item->data)[0] == '+';
    if (item->len && ((const char *)item->data)[0] == '-')
        return rill__parse_fail(err, RILL_EINVAL, "negative", 0);
    return rill__parse_digits(item, pos, UINT64_MAX, out, err);
}

RILL_API int rill_field_u64(const rill_item *item, char sep, unsigned flags, size_t n,
                            uint64_t *out, rill_parse_error *err) {
    rill_item f;
    int rc = rill_field_nth(item, sep, flags, n, &f);
    if (rc)
        return rill__parse_fail(err, rc, rc == RILL_EDONE ? "no such field" : "NULL argument or bad flags",
                                item ? item->len : 0);
    rc = rill_item_u64(&f, out, err);
    if (rc && err)
        err->at += (size_t)((const char *)f.data - (const char *)item->data);
    return rc;
}

RILL_API int rill_item_i64(const rill_item *item, int64_t *out, rill_parse_error *err) {
    if (!item || !out)
        return rill__parse_fail(err, RILL_EINVAL, "NULL argument", 0);
    const char *d = item->data;
    int neg = item->len && d[0] == '-';
    size_t pos = item->len && (d[0] == '-' || d[0] == '+');
    uint64_t v;
    int rc = rill__parse_digits(item, pos, neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX, &v, err);
    if (rc)
        return rc;
    /* -2^63 has no positive counterpart: negate in unsigned arithmetic. */
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

RILL_API int rill_item_f64(const rill_item *item, double *out, rill_parse_error *err) {
    if (!item || !out)
        return rill__parse_fail(err, RILL_EINVAL, "NULL argument", 0);
    char buf[512]; /* strtod needs a NUL: copy the item, it is short */
    if (item->len >= sizeof buf)
        return rill__parse_fail(err, RILL_EINVAL, "too long for a number", sizeof buf - 1);
    if (item->len == 0)
        return rill__parse_fail(err, RILL_EINVAL, "empty", 0);
    memcpy(buf, item->data, item->len);
    buf[item->len] = '\0';
    if (rill__is_space((unsigned char)buf[0]))
        return rill__parse_fail(err, RILL_EINVAL, "leading space", 0);
    /* A NUL inside the item would end strtod's view of it early. */
    size_t nul = strlen(buf);
    char *end;
    int saved = errno;
    errno = 0;
    double v = strtod(buf, &end);
    int range = errno == ERANGE;
    errno = saved;
    size_t stop = (size_t)(end - buf);
    if (stop == 0)
        return rill__parse_fail(err, RILL_EINVAL, "not a number", 0);
    if (stop < item->len)
        return rill__parse_fail(err, RILL_EINVAL,
                                stop == nul ? "NUL byte" : "unexpected byte after the number",
                                stop);
    if (range && (v > 1.0 || v < -1.0))
        return rill__parse_fail(err, -ERANGE, "out of range", 0);
    *out = v;
    return 0;
}
