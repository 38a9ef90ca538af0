/* Output shared by the statistics reports (report.c, report_json.c,
 * report_svg.c): a FILE writer that remembers the first error, and names
 * checked as UTF-8 and escaped per format, since names are user data. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "report_int.h"

static void rill__rep_fail(rill__rep *w) {
    if (!w->err)
        w->err = errno ? errno : EIO;
}

void rill__rep_printf(rill__rep *w, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (vfprintf(w->f, fmt, ap) < 0)
        rill__rep_fail(w);
    va_end(ap);
}

void rill__rep_put(rill__rep *w, const void *s, size_t n) {
    if (n && fwrite(s, 1, n, w->f) != n)
        rill__rep_fail(w);
}

void rill__rep_puts(rill__rep *w, const char *s) { rill__rep_put(w, s, strlen(s)); }

/* A write error may surface only when the buffer is flushed: flush, so the
 * caller learns of a full disk from the report call itself. */
int rill__rep_end(rill__rep *w) {
    if (fflush(w->f) != 0)
        rill__rep_fail(w);
    if (!w->err && ferror(w->f))
        w->err = EIO;
    return -w->err;
}

/* ---- names: UTF-8 checked, escaped per format ------------------------------ */

/* Length of the valid UTF-8 sequence at s (n > 0 bytes left) and its code
 * point, or 0 when the byte starts none (stray continuation, overlong form,
 * surrogate, beyond U+10FFFF, cut short): such a byte becomes U+FFFD. */
size_t rill__utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, v = c & 0x1fu, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        len = 3, v = c & 0x0fu, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, v = c & 0x07u, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3fu);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

void rill__rep_escaped(rill__rep *w, const char *str, int how) {
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    size_t n = strlen((const char *)s);
    while (n) {
        uint32_t cp;
        size_t len = rill__utf8_next(s, n, &cp);
        const char *sub = NULL;
        char buf[8];
        if (len == 0)
            sub = how == RILL__ESC_JSON ? "\\ufffd" : REPLACEMENT, len = 1;
        else if (how == RILL__ESC_JSON && (cp == '"' || cp == '\\'))
            sub = cp == '"' ? "\\\"" : "\\\\";
        else if (how == RILL__ESC_PROM && (cp == '"' || cp == '\\' || cp == '\n'))
            sub = cp == '"' ? "\\\"" : cp == '\\' ? "\\\\" : "\\n";
        else if (how == RILL__ESC_JSON && (cp < 0x20 || cp == 0x7f))
            snprintf(buf, sizeof buf, "\\u%04x", (unsigned)cp), sub = buf;
        else if (how == RILL__ESC_XML && cp == '&')
            sub = "&amp;";
        else if (how == RILL__ESC_XML && cp == '<')
            sub = "&lt;";
        else if (how == RILL__ESC_XML && cp == '>')
            sub = "&gt;";
        else if (how == RILL__ESC_XML && cp == '"')
            sub = "&quot;";
        else if (how == RILL__ESC_XML && cp == '\'')
            sub = "&apos;";
        else if (how == RILL__ESC_XML && ((cp < 0x20 && cp != '\t' && cp != '\n') || cp == 0xfffe ||
                                    cp == 0xffff))
            sub = REPLACEMENT; /* not allowed in XML 1.0 (CR would be normalized away) */
        if (sub)
            rill__rep_puts(w, sub);
        else
            rill__rep_put(w, s, len);
        s += len, n -= len;
    }
}

const char *rill__policy_name(unsigned policy) {
    switch (policy) {
    case RILL_OVERFLOW_BLOCK: return "block";
    case RILL_OVERFLOW_DROP_NEWEST: return "drop_newest";
    case RILL_OVERFLOW_DROP_OLDEST: return "drop_oldest";
    default: return "unknown";
    }
}

/* Mean fill in [0, 1]: the mean sampled depth over the capacity, or -1 when
 * no sample was taken (or no capacity is known). */
double rill__mean_fill(const rill_queue_stats *q) {
    if (!q->samples || !q->capacity)
        return -1;
    return (double)q->depth_sum / (double)q->samples / (double)q->capacity;
}
