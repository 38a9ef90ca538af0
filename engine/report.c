/* Reports of a statistics snapshot: a human table, JSON, and an SVG plot of
 * queue fill over time. They read only the rill_stats they are given (so a
 * hand-built one works too) and know nothing of particular stages. Names are
 * user data: every report sanitizes them for its format (docs/stats.md). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "rill_int.h"

/* ---- output with the first write error remembered ------------------------- */

typedef struct rep {
    FILE *f;
    int err;
} rep;

static void rep_fail(rep *w) {
    if (!w->err)
        w->err = errno ? errno : EIO;
}

__attribute__((format(printf, 2, 3))) static void rep_printf(rep *w, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (vfprintf(w->f, fmt, ap) < 0)
        rep_fail(w);
    va_end(ap);
}

static void rep_put(rep *w, const void *s, size_t n) {
    if (n && fwrite(s, 1, n, w->f) != n)
        rep_fail(w);
}

static void rep_puts(rep *w, const char *s) { rep_put(w, s, strlen(s)); }

/* A write error may surface only when the buffer is flushed: flush, so the
 * caller learns of a full disk from the report call itself. */
static int rep_end(rep *w) {
    if (fflush(w->f) != 0)
        rep_fail(w);
    if (!w->err && ferror(w->f))
        w->err = EIO;
    return -w->err;
}

/* ---- names: UTF-8 checked, escaped per format ------------------------------ */

/* Length of the valid UTF-8 sequence at s (n > 0 bytes left) and its code
 * point, or 0 when the byte starts none (stray continuation, overlong form,
 * surrogate, beyond U+10FFFF, cut short): such a byte becomes U+FFFD. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
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

enum { ESC_JSON, ESC_XML };
#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

static void put_escaped(rep *w, const char *str, int how) {
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    size_t n = strlen((const char *)s);
    while (n) {
        uint32_t cp;
        size_t len = utf8_next(s, n, &cp);
        const char *sub = NULL;
        char buf[8];
        if (len == 0)
            sub = how == ESC_JSON ? "\\ufffd" : REPLACEMENT, len = 1;
        else if (how == ESC_JSON && (cp == '"' || cp == '\\'))
            sub = cp == '"' ? "\\\"" : "\\\\";
        else if (how == ESC_JSON && (cp < 0x20 || cp == 0x7f))
            snprintf(buf, sizeof buf, "\\u%04x", (unsigned)cp), sub = buf;
        else if (how == ESC_XML && cp == '&')
            sub = "&amp;";
        else if (how == ESC_XML && cp == '<')
            sub = "&lt;";
        else if (how == ESC_XML && cp == '>')
            sub = "&gt;";
        else if (how == ESC_XML && cp == '"')
            sub = "&quot;";
        else if (how == ESC_XML && cp == '\'')
            sub = "&apos;";
        else if (how == ESC_XML && ((cp < 0x20 && cp != '\t' && cp != '\n') || cp == 0xfffe ||
                                    cp == 0xffff))
            sub = REPLACEMENT; /* not allowed in XML 1.0 (CR would be normalized away) */
        if (sub)
            rep_puts(w, sub);
        else
            rep_put(w, s, len);
        s += len, n -= len;
    }
}

/* A name for the terminal: control characters and invalid bytes become '?';
 * longer than max characters, it keeps max - 3 and ends in "...". out must
 * hold 4 * max + 1 bytes. */
static void tty_name(const char *str, char *out, unsigned max) {
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    size_t n = strlen((const char *)s), o = 0, total = 0;
    for (size_t i = 0; i < n; total++) {
        uint32_t cp;
        size_t len = utf8_next(s + i, n - i, &cp);
        i += len ? len : 1;
    }
    unsigned keep = total > max ? max - 3 : max;
    for (unsigned width = 0; n && width < keep; width++) {
        uint32_t cp;
        size_t len = utf8_next(s, n, &cp);
        if (len == 0 || cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
            out[o++] = '?', len = len ? len : 1;
        else
            memcpy(out + o, s, len), o += len;
        s += len, n -= len;
    }
    if (total > max)
        memcpy(out + o, "...", 3), o += 3;
    out[o] = 0;
}

static unsigned text_width(const char *s) {
    unsigned w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

static const char *policy_name(unsigned policy) {
    switch (policy) {
    case RILL_OVERFLOW_BLOCK: return "block";
    case RILL_OVERFLOW_DROP_NEWEST: return "drop_newest";
    case RILL_OVERFLOW_DROP_OLDEST: return "drop_oldest";
    default: return "unknown";
    }
}

/* Mean fill in [0, 1]: the mean sampled depth over the capacity, or -1 when
 * no sample was taken (or no capacity is known). */
static double mean_fill(const rill_queue_stats *q) {
    if (!q->samples || !q->capacity)
        return -1;
    return (double)q->depth_sum / (double)q->samples / (double)q->capacity;
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

/* ---- the human table -------------------------------------------------------- */

enum { QCOLS = 13, SCOLS = 6, NAMEMAX = 32, CELL = 8 * NAMEMAX + 16 };
static const char *const qhead[QCOLS] = {
    "queue", "policy", "capacity", "depth", "high", "in", "out", "dropped",
    "discarded", "batches", "prod wait ms", "cons wait ms", "mean fill %"};
static const char *const shead[SCOLS] = {"stage",     "thread",  "items in",
                                         "items out", "busy ms", "busy %"};

static void queue_cell(const rill_stats *s, size_t r, int c, char *b) {
    const rill_queue_stats *q = &s->queues[r];
    const uint64_t v[] = {q->capacity, q->depth,   q->high_water, q->in,
                          q->out,      q->dropped, q->discarded,  q->batches};
    double fill = mean_fill(q);
    if (c == 0) {
        tty_name(q->from, b, NAMEMAX);
        size_t o = strlen(b);
        memcpy(b + o, " -> ", 4);
        tty_name(q->to, b + o + 4, NAMEMAX);
    } else if (c == 1) {
        snprintf(b, CELL, "%s", policy_name(q->policy));
    } else if (c < 10) {
        snprintf(b, CELL, "%" PRIu64, v[c - 2]);
    } else if (c < 12) {
        snprintf(b, CELL, "%.1f", ms(c == 10 ? q->wait_full_ns : q->wait_empty_ns));
    } else {
        if (fill < 0)
            snprintf(b, CELL, "-");
        else
            snprintf(b, CELL, "%.1f", fill * 100);
    }
}

static void stage_cell(const rill_stats *s, size_t r, int c, char *b) {
    const rill_stage_stats *st = &s->stages[r];
    if (c == 0)
        tty_name(st->name, b, NAMEMAX);
    else if (c == 1)
        snprintf(b, CELL, "%s", st->threaded ? "yes" : "no");
    else if (c < 4)
        snprintf(b, CELL, "%" PRIu64, c == 2 ? st->items_in : st->items_out);
    else if (!st->threaded)
        snprintf(b, CELL, "-"); /* inline stages are not timed */
    else if (c == 4)
        snprintf(b, CELL, "%.1f", ms(st->busy_ns));
    else if (!s->elapsed_ns)
        snprintf(b, CELL, "-");
    else
        snprintf(b, CELL, "%.1f", 100.0 * (double)st->busy_ns / (double)s->elapsed_ns);
}

/* Two passes over the cells: widths, then the aligned rows (the first column
 * left-aligned, numbers right-aligned). */
static void put_table(rep *w, const rill_stats *s, size_t rows, int cols,
                      const char *const *head,
                      void (*cell)(const rill_stats *, size_t, int, char *)) {
    unsigned width[QCOLS];
    char b[CELL];
    for (int c = 0; c < cols; c++)
        width[c] = text_width(head[c]);
    for (size_t r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            cell(s, r, c, b);
            unsigned t = text_width(b);
            width[c] = t > width[c] ? t : width[c];
        }
    for (size_t r = 0; r <= rows; r++) {
        for (int c = 0; c < cols; c++) {
            const char *t = b;
            if (r == 0)
                t = head[c];
            else
                cell(s, r - 1, c, b);
            int pad = (int)(width[c] - text_width(t));
            if (c == 0)
                rep_printf(w, "  %s%*s", t, pad, "");
            else
                rep_printf(w, "  %*s%s", pad, "", t);
        }
        rep_puts(w, "\n");
    }
}

static void put_bottleneck(rep *w, const rill_stats *s) {
    if (s->bottleneck < 0 || (size_t)s->bottleneck >= s->nstages) {
        rep_puts(w, "bottleneck: none found (no stage's input queues ran clearly fuller "
                    "than its outputs)\n");
        return;
    }
    const rill_stage_stats *st = &s->stages[s->bottleneck];
    char name[CELL];
    tty_name(st->name, name, NAMEMAX);
    /* Its input queues are those whose consumer has its (unique) name; the
     * fullest counts, as in the engine's rule. */
    double fill = -1, hw = 0;
    for (size_t k = 0; k < s->nqueues; k++) {
        const rill_queue_stats *q = &s->queues[k];
        if (!q->to || !st->name || strcmp(q->to, st->name) != 0)
            continue;
        double f = mean_fill(q), h = q->capacity ? (double)q->high_water / (double)q->capacity : 0;
        fill = f > fill ? f : fill;
        hw = h > hw ? h : hw;
    }
    rep_printf(w, "bottleneck: %s (", name);
    if (fill >= 0)
        rep_printf(w, "input queues %.0f%% full", fill * 100);
    else
        rep_printf(w, "input queues up to %.0f%% full, no samples", hw * 100);
    if (st->threaded && s->elapsed_ns)
        rep_printf(w, ", busy %.0f%%)\n", 100.0 * (double)st->busy_ns / (double)s->elapsed_ns);
    else
        rep_puts(w, ", busy not measured: inline)\n");
}

RILL_API int rill_stats_print(const rill_stats *s, FILE *to) {
    if (!s || !to)
        return RILL_EINVAL;
    rep w = {to, 0};
    char name[CELL];
    tty_name(s->pipeline, name, 64);
    rep_printf(&w, "pipeline %s: %.3f s elapsed%s\n", name, (double)s->elapsed_ns / 1e9,
               s->running ? ", running" : "");
    if (s->nsamples)
        rep_printf(&w, "depth samples: %zu, every %.3f ms per queue\n", s->nsamples,
                   ms(s->sample_interval_ns));
    else
        rep_puts(&w, "depth samples: none (sampler off; mean fill needs it)\n");
    if (s->nqueues) {
        rep_puts(&w, "queues (counts in items):\n");
        put_table(&w, s, s->nqueues, QCOLS, qhead, queue_cell);
    } else {
        rep_puts(&w, "queues: none\n");
    }
    rep_puts(&w, "stages:\n");
    put_table(&w, s, s->nstages, SCOLS, shead, stage_cell);
    put_bottleneck(&w, s);
    return rep_end(&w);
}

/* ---- JSON ------------------------------------------------------------------- */

static void json_str(rep *w, const char *key, const char *v, const char *after) {
    rep_printf(w, "\"%s\": \"", key);
    put_escaped(w, v, ESC_JSON);
    rep_printf(w, "\"%s", after);
}

static void json_u64(rep *w, const char *key, uint64_t v, const char *after) {
    rep_printf(w, "\"%s\": %" PRIu64 "%s", key, v, after);
}

RILL_API int rill_stats_write_json(const rill_stats *s, FILE *to) {
    if (!s || !to)
        return RILL_EINVAL;
    rep w = {to, 0};
    rep_puts(&w, "{\n  ");
    json_str(&w, "pipeline", s->pipeline, ",\n  ");
    json_u64(&w, "elapsed_ns", s->elapsed_ns, ",\n  ");
    rep_printf(&w, "\"running\": %s,\n  ", s->running ? "true" : "false");
    json_u64(&w, "sample_interval_ns", s->sample_interval_ns, ",\n  ");
    if (s->bottleneck >= 0 && (size_t)s->bottleneck < s->nstages)
        json_str(&w, "bottleneck", s->stages[s->bottleneck].name, ",\n");
    else
        rep_puts(&w, "\"bottleneck\": null,\n");
    rep_puts(&w, "  \"queues\": [");
    for (size_t k = 0; k < s->nqueues; k++) {
        const rill_queue_stats *q = &s->queues[k];
        rep_puts(&w, k ? ",\n    {" : "\n    {");
        json_str(&w, "from", q->from, ", ");
        json_str(&w, "to", q->to, ", ");
        rep_printf(&w, "\"policy\": \"%s\",\n     ", policy_name(q->policy));
        json_u64(&w, "capacity", q->capacity, ", ");
        json_u64(&w, "depth", q->depth, ", ");
        json_u64(&w, "high_water", q->high_water, ",\n     ");
        json_u64(&w, "in", q->in, ", ");
        json_u64(&w, "out", q->out, ", ");
        json_u64(&w, "dropped", q->dropped, ", ");
        json_u64(&w, "discarded", q->discarded, ", ");
        json_u64(&w, "batches", q->batches, ",\n     ");
        json_u64(&w, "wait_full_ns", q->wait_full_ns, ", ");
        json_u64(&w, "wait_empty_ns", q->wait_empty_ns, ", ");
        json_u64(&w, "samples", q->samples, ", ");
        json_u64(&w, "depth_sum", q->depth_sum, ",\n     \"bands\": [");
        for (int b = 0; b < RILL_STATS_BANDS; b++)
            rep_printf(&w, "%s%" PRIu64, b ? ", " : "", q->bands[b]);
        rep_puts(&w, "]}");
    }
    rep_puts(&w, s->nqueues ? "\n  ],\n  \"stages\": [" : "],\n  \"stages\": [");
    for (size_t i = 0; i < s->nstages; i++) {
        const rill_stage_stats *st = &s->stages[i];
        rep_puts(&w, i ? ",\n    {" : "\n    {");
        json_str(&w, "name", st->name, ", ");
        rep_printf(&w, "\"threaded\": %s, ", st->threaded ? "true" : "false");
        json_u64(&w, "items_in", st->items_in, ", ");
        json_u64(&w, "items_out", st->items_out, ",\n     ");
        json_u64(&w, "busy_ns", st->busy_ns, ", ");
        json_u64(&w, "input_depth", st->input_depth, ", ");
        json_u64(&w, "input_capacity", st->input_capacity, "}");
    }
    rep_puts(&w, s->nstages ? "\n  ],\n  \"samples\": [" : "],\n  \"samples\": [");
    for (size_t i = 0; i < s->nsamples && !w.err; i++) {
        const rill_depth_sample *d = &s->samples[i];
        rep_printf(&w, "%s[%" PRIu64 ", %" PRIu32 ", %" PRIu32 "]", i ? ",\n    " : "\n    ",
                   d->t_ns, d->queue, d->depth);
    }
    rep_puts(&w, s->nsamples ? "\n  ]\n}\n" : "]\n}\n");
    return rep_end(&w);
}

/* ---- SVG: fill of every queue over time -------------------------------------- */

/* Plot geometry in pixels. One polyline point per pixel column at most. */
enum { SVG_W = 960, PL = 80, PT = 60, PW = 820, PH = 360, LEGEND_ROW = 18 };
static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define NPALETTE (sizeof palette / sizeof *palette)

/* A tick step of 1, 2 or 5 times a power of ten giving at most ~8 ticks. */
static uint64_t nice_step(uint64_t span) {
    uint64_t raw = span / 8 ? span / 8 : 1, p = 1;
    while (p <= raw / 10)
        p *= 10;
    return raw <= p ? p : raw <= 2 * p ? 2 * p : raw <= 5 * p ? 5 * p : 10 * p;
}

static double y_of(uint64_t depth, uint64_t cap) {
    double f = cap ? (double)depth / (double)cap : 0;
    return PT + PH - (f > 1 ? 1 : f) * PH;
}

/* Decimate: the deepest sample of each pixel column, so peaks stay visible. */
static void svg_queue_line(rep *w, const rill_stats *s, size_t k, uint64_t tmax) {
    const rill_queue_stats *q = &s->queues[k];
    long col = -1;
    uint64_t deepest = 0;
    size_t npts = 0;
    double x0 = 0, y0 = 0;
    rep_printf(w, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
               palette[k % NPALETTE]);
    for (size_t i = 0; i <= s->nsamples && !w->err; i++) {
        const rill_depth_sample *d = i < s->nsamples ? &s->samples[i] : NULL;
        if (d && d->queue != k)
            continue;
        long c = d ? (long)((double)d->t_ns / (double)tmax * PW) : -2;
        if (c == col) {
            deepest = d->depth > deepest ? d->depth : deepest;
            continue;
        }
        if (col >= 0) { /* flush the finished column */
            x0 = PL + (double)col, y0 = y_of(deepest, q->capacity);
            rep_printf(w, "%s%.1f,%.1f", npts ? (npts % 10 ? " " : "\n") : "", x0, y0);
            npts++;
        }
        if (d)
            col = c, deepest = d->depth;
    }
    if (npts == 1) /* one point draws nothing: make it a short dash */
        rep_printf(w, " %.1f,%.1f %.1f,%.1f", x0 - 3, y0, x0 + 3, y0);
    rep_puts(w, "\"><title>");
    put_escaped(w, q->from, ESC_XML);
    rep_puts(w, " -&gt; ");
    put_escaped(w, q->to, ESC_XML);
    rep_puts(w, "</title></polyline>\n");
}

static void svg_axes(rep *w, uint64_t tmax) {
    rep_printf(w, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"white\" "
                  "stroke=\"black\"/>\n", PL, PT, PW, PH);
    for (int pct = 0; pct <= 100; pct += 20) {
        double y = PT + PH - pct / 100.0 * PH;
        rep_printf(w, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                      "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%d</text>\n",
                   PL, y, PL + PW, y, PL - 6, y + 4, pct);
    }
    uint64_t step = nice_step(tmax);
    for (uint64_t t = 0; t <= tmax; t += step) {
        double x = PL + (double)t / (double)tmax * PW;
        rep_printf(w, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>"
                      "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"black\"/>"
                      "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n",
                   x, PT, x, PT + PH, x, PT + PH, x, PT + PH + 5, x, PT + PH + 18,
                   (double)t / 1e9);
        if (tmax - t < step)
            break;
    }
    rep_printf(w, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">time (s)</text>\n",
               PL + PW / 2, PT + PH + 36);
    rep_printf(w, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 %d %d)\">"
                  "queue fill (%% of capacity)</text>\n", 24, PT + PH / 2, 24, PT + PH / 2);
}

RILL_API int rill_stats_write_svg(const rill_stats *s, FILE *to) {
    if (!s || !to)
        return RILL_EINVAL;
    rep w = {to, 0};
    uint64_t tmax = s->elapsed_ns;
    for (size_t i = 0; i < s->nsamples; i++)
        tmax = s->samples[i].t_ns > tmax ? s->samples[i].t_ns : tmax;
    tmax = tmax ? tmax : 1000000; /* an empty run still gets a 1 ms axis */
    int height = PT + PH + 56 + LEGEND_ROW * (int)(s->nqueues ? s->nqueues : 1) + 10;
    rep_printf(&w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
                   "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
                   "font-size=\"12\">\n<title>", SVG_W, height, SVG_W, height);
    put_escaped(&w, s->pipeline, ESC_XML);
    rep_puts(&w, ": queue fill over time</title>\n<rect width=\"100%\" height=\"100%\" "
                 "fill=\"white\"/>\n<text x=\"20\" y=\"26\" font-size=\"16\" "
                 "font-weight=\"bold\">");
    put_escaped(&w, s->pipeline, ESC_XML);
    rep_printf(&w, ": queue fill over time</text>\n<text x=\"20\" y=\"44\">%.3f s elapsed, "
                   "%zu depth samples</text>\n", (double)s->elapsed_ns / 1e9, s->nsamples);
    svg_axes(&w, tmax);
    bool any = false;
    for (size_t i = 0; i < s->nsamples && !any; i++)
        any = s->samples[i].queue < s->nqueues;
    if (!any)
        rep_printf(&w, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"16\" "
                       "fill=\"#888\">%s</text>\n", PL + PW / 2, PT + PH / 2,
                   s->nqueues ? "no samples" : "no queues");
    for (size_t k = 0; k < s->nqueues && any; k++)
        svg_queue_line(&w, s, k, tmax);
    for (size_t k = 0; k < s->nqueues; k++) {
        int y = PT + PH + 56 + LEGEND_ROW * (int)k;
        const rill_queue_stats *q = &s->queues[k];
        rep_printf(&w, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
                       "stroke-width=\"3\"/><text x=\"%d\" y=\"%d\">", PL, y - 4, PL + 24, y - 4,
                   palette[k % NPALETTE], PL + 32, y);
        put_escaped(&w, q->from, ESC_XML);
        rep_puts(&w, " -&gt; ");
        put_escaped(&w, q->to, ESC_XML);
        rep_printf(&w, " (capacity %" PRIu64 ", %s)</text>\n", q->capacity,
                   policy_name(q->policy));
    }
    rep_puts(&w, "</svg>\n");
    return rep_end(&w);
}
