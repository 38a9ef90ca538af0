/* rill — fields and numbers inside items.
 *
 * Items are not NUL-terminated (rill/item.h): strtoull or sscanf on
 * item->data reads past the item. These helpers read only the item's own
 * bytes. Fields are slices of the item they come from (same data, same
 * owner): no copy, valid as long as the item is.
 *
 * Errors say what and where: the parsers fill a rill_parse_error (optional)
 * with a static description and the byte offset in the item at which
 * parsing failed, ready for rill_stage_fail(st, rc, "field %zu: %s at byte
 * %zu", ...).
 *
 * Thread-safety: every function here is pure (reads its arguments only).
 */
#ifndef RILL_FIELDS_H
#define RILL_FIELDS_H

#include <stddef.h>
#include <stdint.h>

#include "rill/item.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How bytes are split into fields (flags of rill_fields_init, rill_split_add). */
enum {
    /* Empty fields ("a,,b" has three fields with ',') are skipped. */
    RILL_FIELDS_SKIP_EMPTY = 1u << 0,
    /* Split on runs of ASCII whitespace (space, \t, \n, \v, \f, \r) instead
     * of the separator byte, and skip empty fields: Python's str.split(). */
    RILL_FIELDS_WHITESPACE = 1u << 1
};

/* An iterator over the fields of one item. Fields are private: use the
 * functions below. */
typedef struct rill_fields {
    const rill_item *rill__item;
    size_t rill__pos;   /* offset of the next field */
    int rill__done;
    unsigned char rill__sep;
    unsigned rill__flags;
} rill_fields;

/* Start iterating over the fields of item split on the byte sep (ignored
 * with RILL_FIELDS_WHITESPACE). item must stay valid while fs is used.
 * Without RILL_FIELDS_SKIP_EMPTY an empty item has one empty field, as
 * Python's "".split(","). Returns 0, or RILL_EINVAL for NULL or an unknown
 * flag. */
int rill_fields_init(rill_fields *fs, const rill_item *item, char sep, unsigned flags);

/* The next field into *field (a slice of the item, same owner). Returns 0,
 * or RILL_EDONE once every field has been returned (and on every later
 * call), or RILL_EINVAL for NULL. */
int rill_fields_next(rill_fields *fs, rill_item *field);

/* The n-th field (from 0) of item split on sep as above, into *field.
 * Returns 0, RILL_EDONE if the item has n fields or fewer (*field is then
 * empty), or RILL_EINVAL for NULL or an unknown flag. */
int rill_field_nth(const rill_item *item, char sep, unsigned flags, size_t n,
                   rill_item *field);

/* item without the ASCII whitespace at both ends (a slice of it). */
rill_item rill_item_trim(const rill_item *item);

/* Why a number did not parse: a static description (never NULL after a
 * failure) and the offset in the item of the offending byte (the item's
 * length when the item ended too early). */
typedef struct rill_parse_error {
    const char *what;
    size_t at;
} rill_parse_error;

/* Parse the whole item as a decimal integer: an optional sign ('+', or '-'
 * for the signed parser) and at least one digit, nothing else (no spaces:
 * trim first). Returns 0 with *out set; RILL_EINVAL (not a number: err says
 * what and where) or -ERANGE (does not fit: err->at is the first digit that
 * overflows). *out is untouched on failure. err may be NULL. */
int rill_item_i64(const rill_item *item, int64_t *out, rill_parse_error *err);
int rill_item_u64(const rill_item *item, uint64_t *out, rill_parse_error *err);

/* The n-th field of item, split as by rill_field_nth, parsed as by
 * rill_item_u64: the common "column 8 is a number" in one call. Returns 0
 * with *out set; RILL_EDONE if the item has no n-th field; RILL_EINVAL or
 * -ERANGE as rill_item_u64, with err->at an offset in item (not in the
 * field). err may be NULL. */
int rill_field_u64(const rill_item *item, char sep, unsigned flags, size_t n, uint64_t *out,
                   rill_parse_error *err);

/* Parse the whole item as a floating-point number in the C locale's form of
 * strtod (decimal or hex, "inf", "nan"), with no leading or trailing
 * spaces. Returns 0, RILL_EINVAL (err says what and where; also for an item
 * of more than 511 bytes) or -ERANGE (overflow; an underflow to 0 or a
 * denormal is accepted). */
int rill_item_f64(const rill_item *item, double *out, rill_parse_error *err);

#ifdef __cplusplus
}
#endif
#endif
