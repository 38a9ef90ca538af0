/* Reports of a statistics snapshot: a human table, JSON, and an SVG plot of
 * queue fill over time. They read only the rill_stats they are given (so a
 * hand-built one works too) and know nothing of particular stages. Names are
 * user data: every report sanitizes them for its format (docs/stats.md). */
#include <inttypes.h>
#include <string.h>

#include "report_int.h"

/* A name for the terminal: control characters and invalid bytes become '?';
 * longer than max characters, it keeps max - 3 and ends in "...". out must
 * hold 4 * max + 1 bytes. */
static void tty_name(const char *str, char *out, unsigned max) {
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    size_t n = strlen((const char *)s), o = 0, total = 0;
    for (size_t i = 0; i < n; total++) {
        uint32_t cp;
        size_t len = rill__utf8_next(s + i, n - i, &cp);
        i += len ? len : 1;
    }
    unsigned keep = total > max ? max - 3 : max;
    for (unsigned width = 0; n && width < keep; width++) {
        uint32_t cp;
        size_t len = rill__utf8_next(s, n, &cp);
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

static double ms(uint64_t ns) { return (double)ns / 1e6; }

/* ---- the human table -------------------------------------------------------- */

enum { QCOLS = 17, SCOLS = 7, NAMEMAX = 32, CELL = 8 * NAMEMAX + 16 };
static const char *const qhead[QCOLS] = {
    "queue", "policy", "capacity", "depth", "ready", "unpub", "high", "in", "out", "dropped",
    "discarded", "batches", "prod wait ms", "cons wait ms", "mean fill %", "ready %", "unpub %"};
static const char *const shead[SCOLS] = {"stage",   "thread", "items in", "items out",
                                         "busy ms", "busy %", "thread cpu/wait/runq %"};

static void queue_cell(const rill_stats *s, size_t r, int c, char *b) {
    const rill_queue_stats *q = &s->queues[r];
    const uint64_t v[] = {q->capacity, q->depth, q->ready,   q->unpublished, q->high_water,
                          q->in,       q->out,   q->dropped, q->discarded,  q->batches};
    double fill = rill__mean_fill(q);
    if (c == 0) {
        tty_name(q->from, b, NAMEMAX);
        size_t o = strlen(b);
        memcpy(b + o, " -> ", 4);
        tty_name(q->to, b + o + 4, NAMEMAX);
    } else if (c == 1) {
        snprintf(b, CELL, "%s", rill__policy_name(q->policy));
    } else if (c < 12) {
        snprintf(b, CELL, "%" PRIu64, v[c - 2]);
    } else if (c < 14) {
        snprintf(b, CELL, "%.1f", ms(c == 12 ? q->wait_full_ns : q->wait_empty_ns));
    } else if (fill < 0) {
        snprintf(b, CELL, "-");
    } else if (c == 14) {
        snprintf(b, CELL, "%.1f", fill * 100);
    } else { /* the mean of the sampled ready or unpublished items, as a fill */
        uint64_t sum = c == 15 ? q->ready_sum : q->unpublished_sum;
        snprintf(b, CELL, "%.1f", 100.0 * (double)sum / (double)q->samples / (double)q->capacity);
    }
}

static void stage_cell(const rill_stats *s, size_t r, int c, char *b) {
    const rill_stage_stats *st = &s->stages[r];
    double el = (double)s->elapsed_ns;
    if (c == 0)
        tty_name(st->name, b, NAMEMAX);
    else if (c == 1 && (st->threaded || st->thread < 0 || (size_t)st->thread >= s->nstages))
        snprintf(b, CELL, "%s", st->threaded ? "yes" : "caller's");
    else if (c == 1) /* inline on another stage's thread: name it */
        tty_name(s->stages[st->thread].name, b, NAMEMAX);
    else if (c < 4)
        snprintf(b, CELL, "%" PRIu64, c == 2 ? st->items_in : st->items_out);
    else if (!st->measured || !s->elapsed_ns)
        snprintf(b, CELL, "-"); /* its thread's time is not known */
    else if (c == 4)
        snprintf(b, CELL, "%.1f", ms(st->busy_ns));
    else if (c == 5)
        snprintf(b, CELL, "%.1f", 100.0 * (double)st->busy_ns / el);
    else
        snprintf(b, CELL, "%.0f/%.0f/%.0f", 100.0 * (double)st->thread_cpu_ns / el,
                 100.0 * (double)st->thread_wait_ns / el, 100.0 * (double)st->thread_runq_ns / el);
}

/* Two passes over the cells: widths, then the aligned rows (the first column
 * left-aligned, numbers right-aligned). */
static void put_table(rill__rep *w, const rill_stats *s, size_t rows, int cols,
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
                rill__rep_printf(w, "  %s%*s", t, pad, "");
            else
                rill__rep_printf(w, "  %*s%s", pad, "", t);
        }
        rill__rep_puts(w, "\n");
    }
}

/* The verdict is made by the engine (engine/stats/bottleneck.c); a
 * hand-built snapshot without one gets the stage's name alone. */
static void put_bottleneck(rill__rep *w, const rill_stats *s) {
    char line[4 * sizeof s->verdict + 1];
    if (s->verdict[0]) { /* a hand-built snapshot's may lack its NUL */
        char v[sizeof s->verdict];
        snprintf(v, sizeof v, "%.*s", (int)sizeof v - 1, s->verdict);
        tty_name(v, line, sizeof v - 1);
        rill__rep_printf(w, "bottleneck: %s\n", line);
    } else if (s->bottleneck >= 0 && (size_t)s->bottleneck < s->nstages) {
        tty_name(s->stages[s->bottleneck].name, line, NAMEMAX);
        rill__rep_printf(w, "bottleneck: %s\n", line);
    } else {
        rill__rep_puts(w, "bottleneck: none\n");
    }
}

RILL_API int rill_stats_print(const rill_stats *s, FILE *to) {
    if (!s || !to)
        return RILL_EINVAL;
    rill__rep w = {to, 0};
    char name[CELL];
    tty_name(s->pipeline, name, 64);
    rill__rep_printf(&w, "pipeline %s: %.3f s elapsed%s\n", name, (double)s->elapsed_ns / 1e9,
               s->running ? ", running" : "");
    if (s->nsamples)
        rill__rep_printf(&w, "depth samples: %zu, every %.3f ms per queue\n", s->nsamples,
                   ms(s->sample_interval_ns));
    else
        rill__rep_puts(&w, "depth samples: none (sampler off; mean fill needs it)\n");
    if (s->nqueues) {
        rill__rep_puts(&w, "queues (counts in items):\n");
        put_table(&w, s, s->nqueues, QCOLS, qhead, queue_cell);
    } else {
        rill__rep_puts(&w, "queues: none\n");
    }
    rill__rep_puts(&w, "stages:\n");
    put_table(&w, s, s->nstages, SCOLS, shead, stage_cell);
    put_bottleneck(&w, s);
    return rill__rep_end(&w);
}
