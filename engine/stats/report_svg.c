/* The statistics snapshot as an SVG plot of every queue's fill over time. */
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include "report_int.h"

/* Plot geometry in pixels. One polyline point per pixel column at most. */
enum { SVG_W = 960, PL = 80, PT = 104, PW = 820, PH = 360, LEGEND_ROW = 18, VERDICT_COLS = 130 };
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
static void svg_queue_line(rill__rep *w, const rill_stats *s, size_t k, uint64_t tmax) {
    const rill_queue_stats *q = &s->queues[k];
    long col = -1;
    uint64_t deepest = 0;
    size_t npts = 0;
    double x0 = 0, y0 = 0;
    rill__rep_printf(w, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
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
            rill__rep_printf(w, "%s%.1f,%.1f", npts ? (npts % 10 ? " " : "\n") : "", x0, y0);
            npts++;
        }
        if (d)
            col = c, deepest = d->depth;
    }
    if (npts == 1) /* one point draws nothing: make it a short dash */
        rill__rep_printf(w, " %.1f,%.1f %.1f,%.1f", x0 - 3, y0, x0 + 3, y0);
    rill__rep_puts(w, "\"><title>");
    rill__rep_escaped(w, q->from, RILL__ESC_XML);
    rill__rep_puts(w, " -&gt; ");
    rill__rep_escaped(w, q->to, RILL__ESC_XML);
    rill__rep_puts(w, "</title></polyline>\n");
}

static void svg_axes(rill__rep *w, uint64_t tmax) {
    rill__rep_printf(w, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"white\" "
                  "stroke=\"black\"/>\n", PL, PT, PW, PH);
    for (int pct = 0; pct <= 100; pct += 20) {
        double y = PT + PH - pct / 100.0 * PH;
        rill__rep_printf(w, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                      "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%d</text>\n",
                   PL, y, PL + PW, y, PL - 6, y + 4, pct);
    }
    uint64_t step = nice_step(tmax);
    for (uint64_t t = 0; t <= tmax; t += step) {
        double x = PL + (double)t / (double)tmax * PW;
        rill__rep_printf(w, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>"
                      "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"black\"/>"
                      "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n",
                   x, PT, x, PT + PH, x, PT + PH, x, PT + PH + 5, x, PT + PH + 18,
                   (double)t / 1e9);
        if (tmax - t < step)
            break;
    }
    rill__rep_printf(w, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">time (s)</text>\n",
               PL + PW / 2, PT + PH + 36);
    rill__rep_printf(w, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 %d %d)\">"
                  "queue fill (%% of capacity)</text>\n", 24, PT + PH / 2, 24, PT + PH / 2);
}

/* The bottleneck's verdict under the title, wrapped at its "; " parts into
 * at most three lines of about VERDICT_COLS characters. */
static void svg_verdict(rill__rep *w, const rill_stats *s) {
    char v[sizeof s->verdict + 16];
    if (s->verdict[0])
        snprintf(v, sizeof v, "bottleneck: %.*s", (int)sizeof s->verdict - 1, s->verdict);
    else if (s->bottleneck >= 0 && (size_t)s->bottleneck < s->nstages)
        snprintf(v, sizeof v, "bottleneck: %.200s", s->stages[s->bottleneck].name);
    else
        snprintf(v, sizeof v, "bottleneck: none");
    const char *p = v;
    for (int line = 0; *p && line < 3; line++) {
        size_t n = strlen(p), cut = n;
        if (n > VERDICT_COLS && line < 2) /* the last part of "; " before the limit */
            for (size_t i = 0; i + 1 < VERDICT_COLS; i++)
                if (p[i] == ';' && p[i + 1] == ' ')
                    cut = i + 1;
        char part[sizeof v];
        memcpy(part, p, cut);
        part[cut] = 0;
        rill__rep_printf(w, "<text x=\"20\" y=\"%d\" fill=\"#b00\"%s>", 64 + 15 * line,
                         line ? "" : " font-weight=\"bold\"");
        rill__rep_escaped(w, part, RILL__ESC_XML);
        rill__rep_puts(w, "</text>\n");
        p += cut;
        while (*p == ' ')
            p++;
    }
}

RILL_API int rill_stats_write_svg(const rill_stats *s, FILE *to) {
    if (!s || !to)
        return RILL_EINVAL;
    rill__rep w = {to, 0};
    uint64_t tmax = s->elapsed_ns;
    for (size_t i = 0; i < s->nsamples; i++)
        tmax = s->samples[i].t_ns > tmax ? s->samples[i].t_ns : tmax;
    tmax = tmax ? tmax : 1000000; /* an empty run still gets a 1 ms axis */
    int height = PT + PH + 56 + LEGEND_ROW * (int)(s->nqueues ? s->nqueues : 1) + 10;
    rill__rep_printf(&w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
                   "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
                   "font-size=\"12\">\n<title>", SVG_W, height, SVG_W, height);
    rill__rep_escaped(&w, s->pipeline, RILL__ESC_XML);
    rill__rep_puts(&w, ": queue fill over time</title>\n<rect width=\"100%\" height=\"100%\" "
                 "fill=\"white\"/>\n<text x=\"20\" y=\"26\" font-size=\"16\" "
                 "font-weight=\"bold\">");
    rill__rep_escaped(&w, s->pipeline, RILL__ESC_XML);
    rill__rep_printf(&w, ": queue fill over time</text>\n<text x=\"20\" y=\"44\">%.3f s elapsed, "
                   "%zu depth samples</text>\n", (double)s->elapsed_ns / 1e9, s->nsamples);
    svg_verdict(&w, s);
    svg_axes(&w, tmax);
    bool any = false;
    for (size_t i = 0; i < s->nsamples && !any; i++)
        any = s->samples[i].queue < s->nqueues;
    if (!any)
        rill__rep_printf(&w, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"16\" "
                       "fill=\"#888\">%s</text>\n", PL + PW / 2, PT + PH / 2,
                   s->nqueues ? "no samples" : "no queues");
    for (size_t k = 0; k < s->nqueues && any; k++)
        svg_queue_line(&w, s, k, tmax);
    for (size_t k = 0; k < s->nqueues; k++) {
        int y = PT + PH + 56 + LEGEND_ROW * (int)k;
        const rill_queue_stats *q = &s->queues[k];
        rill__rep_printf(&w, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
                       "stroke-width=\"3\"/><text x=\"%d\" y=\"%d\">", PL, y - 4, PL + 24, y - 4,
                   palette[k % NPALETTE], PL + 32, y);
        rill__rep_escaped(&w, q->from, RILL__ESC_XML);
        rill__rep_puts(&w, " -&gt; ");
        rill__rep_escaped(&w, q->to, RILL__ESC_XML);
        rill__rep_printf(&w, " (capacity %" PRIu64 ", %s", q->capacity,
                   rill__policy_name(q->policy));
        if (q->samples && q->capacity) /* who holds the items: consumer or producer */
            rill__rep_printf(&w, "; mean: %.0f%% ready for the consumer, %.0f%% in delivery, "
                             "%.0f%% unpublished in the producer's partial batch",
                             100.0 * (double)q->ready_sum / (double)q->samples / (double)q->capacity,
                             100.0 * ((double)q->depth_sum - (double)q->ready_sum) / (double)q->samples /
                                 (double)q->capacity,
                             100.0 * (double)q->unpublished_sum / (double)q->samples /
                                 (double)q->capacity);
        rill__rep_puts(&w, ")</text>\n");
    }
    rill__rep_puts(&w, "</svg>\n");
    return rill__rep_end(&w);
}
