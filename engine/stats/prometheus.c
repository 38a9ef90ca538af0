/* A snapshot in Prometheus' text exposition format, version 0.0.4
 * (rill_stats_write_prometheus, rill_pipeline_metrics_write): the figures a
 * scraper polls while the pipeline runs. docs/stats.md lists the metrics.
 *
 * Conventions kept: base units (seconds, items) in the names, `_total` on
 * counters and only on counters, one HELP and one TYPE line per family with
 * every sample of the family right after them, label values escaped
 * (backslash, double quote, newline) and kept valid UTF-8, since stage names
 * are user data. Counters only ever grow from one snapshot to the next,
 * which is why a thread's waiting, CPU and run-queue times are exported
 * and not its busy time (an estimate that may go down; docs/stats.md). */
#include <stddef.h>

#include "report_int.h"
#include "stats_int.h"

enum { RILL__PM_COUNT, RILL__PM_SECONDS, RILL__PM_BOOL };

typedef struct rill__pm_family {
    const char *name;
    const char *type; /* counter or gauge */
    const char *help;
    size_t off;       /* of a uint64_t (bool for RILL__PM_BOOL) in the row */
    int unit;
} rill__pm_family;

#define QF(name, type, field, unit, help) \
    {name, type, help, offsetof(rill_queue_stats, field), unit}
static const rill__pm_family rill__pm_queue[] = {
    QF("rill_queue_capacity_items", "gauge", capacity, RILL__PM_COUNT,
       "Items the producer may have queued."),
    QF("rill_queue_depth_items", "gauge", depth, RILL__PM_COUNT,
       "Items in the queue now, counted in the ring."),
    QF("rill_queue_ready_items", "gauge", ready, RILL__PM_COUNT,
       "Of the depth, items the consumer can take now (not being delivered)."),
    QF("rill_queue_unpublished_items", "gauge", unpublished, RILL__PM_COUNT,
       "Items in the producer's partial batch, not yet handed over."),
    QF("rill_queue_high_water_items", "gauge", high_water, RILL__PM_COUNT,
       "Largest depth seen at a hand-over."),
    QF("rill_queue_enqueued_items_total", "counter", in, RILL__PM_COUNT,
       "Items handed to the queue by its producer."),
    QF("rill_queue_delivered_items_total", "counter", out, RILL__PM_COUNT,
       "Items delivered to the consuming stage."),
    QF("rill_queue_dropped_items_total", "counter", dropped, RILL__PM_COUNT,
       "Items dropped by the overflow policy."),
    QF("rill_queue_discarded_items_total", "counter", discarded, RILL__PM_COUNT,
       "Items thrown away because the pipeline stopped."),
    QF("rill_queue_batches_total", "counter", batches, RILL__PM_COUNT,
       "Batches handed over."),
    QF("rill_queue_full_wait_seconds_total", "counter", wait_full_ns, RILL__PM_SECONDS,
       "Time the producer waited for room in the queue."),
    QF("rill_queue_empty_wait_seconds_total", "counter", wait_empty_ns, RILL__PM_SECONDS,
       "Time the consumer's thread waited with all its inputs empty."),
    QF("rill_queue_depth_samples_total", "counter", samples, RILL__PM_COUNT,
       "Depth samples taken by the sampler."),
    QF("rill_queue_sampled_depth_items_total", "counter", depth_sum, RILL__PM_COUNT,
       "Sum of the sampled depths (mean depth: divide by the samples)."),
};
#undef QF

#define SF(name, type, field, unit, help) \
    {name, type, help, offsetof(rill_stage_stats, field), unit}
static const rill__pm_family rill__pm_stage[] = {
    SF("rill_stage_received_items_total", "counter", items_in, RILL__PM_COUNT,
       "Items the stage received."),
    SF("rill_stage_emitted_items_total", "counter", items_out, RILL__PM_COUNT,
       "Items the stage emitted."),
    SF("rill_stage_queued_items", "gauge", input_depth, RILL__PM_COUNT,
       "Items queued in front of the stage now, over all its input queues."),
    SF("rill_stage_input_capacity_items", "gauge", input_capacity, RILL__PM_COUNT,
       "Sum of the capacities of the stage's input queues."),
    SF("rill_stage_threaded", "gauge", threaded, RILL__PM_BOOL,
       "1 if the stage runs a thread of its own."),
};
#undef SF

static void rill__pm_head(rill__rep *w, const char *name, const char *type, const char *help) {
    rill__rep_printf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void rill__pm_label(rill__rep *w, const char *sep, const char *key, const char *val) {
    rill__rep_printf(w, "%s%s=\"", sep, key);
    rill__rep_escaped(w, val, RILL__ESC_PROM);
    rill__rep_puts(w, "\"");
}

static void rill__pm_value(rill__rep *w, const void *row, const rill__pm_family *f) {
    const char *at = (const char *)row + f->off;
    if (f->unit == RILL__PM_BOOL) {
        rill__rep_puts(w, *(const bool *)at ? " 1\n" : " 0\n");
        return;
    }
    uint64_t v = *(const uint64_t *)at;
    if (f->unit == RILL__PM_SECONDS)
        rill__rep_printf(w, " %llu.%09llu\n", (unsigned long long)(v / 1000000000u),
                         (unsigned long long)(v % 1000000000u));
    else
        rill__rep_printf(w, " %llu\n", (unsigned long long)v);
}

static void rill__pm_seconds(rill__rep *w, uint64_t ns) {
    rill__rep_printf(w, " %llu.%09llu\n", (unsigned long long)(ns / 1000000000u),
                     (unsigned long long)(ns % 1000000000u));
}

RILL_API int rill_stats_write_prometheus(const rill_stats *s, FILE *to) {
    if (!s || !to)
        return RILL_EINVAL;
    rill__rep w = {to, 0};
    const char *pl = s->pipeline;

    rill__pm_head(&w, "rill_pipeline_elapsed_seconds", "gauge",
                  "Time since the pipeline started (until it closed).");
    rill__pm_label(&w, "rill_pipeline_elapsed_seconds{", "pipeline", pl);
    rill__rep_puts(&w, "}");
    rill__pm_seconds(&w, s->elapsed_ns);
    rill__pm_head(&w, "rill_pipeline_running", "gauge",
                  "1 while the pipeline runs (started and not closed).");
    rill__pm_label(&w, "rill_pipeline_running{", "pipeline", pl);
    rill__rep_puts(&w, s->running ? "} 1\n" : "} 0\n");
    if (s->bottleneck >= 0 && (size_t)s->bottleneck < s->nstages) {
        rill__pm_head(&w, "rill_pipeline_bottleneck", "gauge",
                      "1 for the stage the statistics name as the bottleneck.");
        rill__pm_label(&w, "rill_pipeline_bottleneck{", "pipeline", pl);
        rill__pm_label(&w, ",", "stage", s->stages[s->bottleneck].name);
        rill__rep_puts(&w, "} 1\n");
    }

    for (size_t f = 0; f < sizeof rill__pm_stage / sizeof rill__pm_stage[0]; f++) {
        const rill__pm_family *fam = &rill__pm_stage[f];
        rill__pm_head(&w, fam->name, fam->type, fam->help);
        for (size_t i = 0; i < s->nstages; i++) {
            rill__rep_puts(&w, fam->name);
            rill__pm_label(&w, "{", "pipeline", pl);
            rill__pm_label(&w, ",", "stage", s->stages[i].name);
            rill__rep_puts(&w, "}");
            rill__pm_value(&w, &s->stages[i], fam);
        }
    }
    /* Thread figures on the stage heading each measured thread. */
    static const struct {
        const char *name, *help;
        size_t off;
    } th[] = {
        {"rill_stage_thread_wait_seconds_total",
         "Time the stage's thread waited for input or for room (threaded stages).",
         offsetof(rill_stage_stats, thread_wait_ns)},
        {"rill_stage_thread_cpu_seconds_total", "CPU time of the stage's thread.",
         offsetof(rill_stage_stats, thread_cpu_ns)},
        {"rill_stage_thread_runq_seconds_total",
         "Time the stage's thread was runnable but had no CPU (0 if not known).",
         offsetof(rill_stage_stats, thread_runq_ns)},
    };
    for (size_t f = 0; f < sizeof th / sizeof th[0]; f++) {
        bool any = false;
        for (size_t i = 0; i < s->nstages; i++) {
            const rill_stage_stats *st = &s->stages[i];
            if (!st->threaded || !st->measured)
                continue;
            if (!any)
                rill__pm_head(&w, th[f].name, "counter", th[f].help);
            any = true;
            rill__rep_puts(&w, th[f].name);
            rill__pm_label(&w, "{", "pipeline", pl);
            rill__pm_label(&w, ",", "stage", st->name);
            rill__rep_puts(&w, "}");
            rill__pm_seconds(&w, *(const uint64_t *)((const char *)st + th[f].off));
        }
    }

    for (size_t f = 0; f < sizeof rill__pm_queue / sizeof rill__pm_queue[0]; f++) {
        const rill__pm_family *fam = &rill__pm_queue[f];
        rill__pm_head(&w, fam->name, fam->type, fam->help);
        for (size_t k = 0; k < s->nqueues; k++) {
            rill__rep_puts(&w, fam->name);
            rill__pm_label(&w, "{", "pipeline", pl);
            rill__pm_label(&w, ",", "from", s->queues[k].from);
            rill__pm_label(&w, ",", "to", s->queues[k].to);
            /* from and to alone may repeat (a stage connected twice to
             * another): the queue's index keeps every series distinct */
            rill__rep_printf(&w, ",queue=\"%zu\"}", k);
            rill__pm_value(&w, &s->queues[k], fam);
        }
    }
    return rill__rep_end(&w);
}

RILL_API int rill_pipeline_metrics_write(rill_pipeline *p, FILE *to) {
    if (!p || !to)
        return RILL_EINVAL;
    rill_stats *s = NULL;
    int rc = rill_pipeline_stats(p, &s);
    if (rc)
        return rc;
    rc = rill_stats_write_prometheus(s, to);
    rill_stats_free(s);
    return rc;
}
