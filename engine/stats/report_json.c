/* The statistics snapshot as JSON (schema in docs/stats.md). */
#include <inttypes.h>

#include "report_int.h"

static void json_str(rill__rep *w, const char *key, const char *v, const char *after) {
    rill__rep_printf(w, "\"%s\": \"", key);
    rill__rep_escaped(w, v, RILL__ESC_JSON);
    rill__rep_printf(w, "\"%s", after);
}

static void json_u64(rill__rep *w, const char *key, uint64_t v, const char *after) {
    rill__rep_printf(w, "\"%s\": %" PRIu64 "%s", key, v, after);
}

RILL_API int rill_stats_write_json(const rill_stats *s, FILE *to) {
    if (!s || !to)
        return RILL_EINVAL;
    rill__rep w = {to, 0};
    rill__rep_puts(&w, "{\n  ");
    json_str(&w, "pipeline", s->pipeline, ",\n  ");
    json_u64(&w, "elapsed_ns", s->elapsed_ns, ",\n  ");
    rill__rep_printf(&w, "\"running\": %s,\n  ", s->running ? "true" : "false");
    json_u64(&w, "sample_interval_ns", s->sample_interval_ns, ",\n  ");
    if (s->bottleneck >= 0 && (size_t)s->bottleneck < s->nstages)
        json_str(&w, "bottleneck", s->stages[s->bottleneck].name, ",\n");
    else
        rill__rep_puts(&w, "\"bottleneck\": null,\n");
    rill__rep_puts(&w, "  ");
    json_str(&w, "verdict", s->verdict, ",\n");
    rill__rep_puts(&w, "  \"queues\": [");
    for (size_t k = 0; k < s->nqueues; k++) {
        const rill_queue_stats *q = &s->queues[k];
        rill__rep_puts(&w, k ? ",\n    {" : "\n    {");
        json_str(&w, "from", q->from, ", ");
        json_str(&w, "to", q->to, ", ");
        rill__rep_printf(&w, "\"policy\": \"%s\",\n     ", rill__policy_name(q->policy));
        json_u64(&w, "capacity", q->capacity, ", ");
        json_u64(&w, "depth", q->depth, ", ");
        json_u64(&w, "ready", q->ready, ", ");
        json_u64(&w, "unpublished", q->unpublished, ", ");
        json_u64(&w, "high_water", q->high_water, ",\n     ");
        json_u64(&w, "in", q->in, ", ");
        json_u64(&w, "out", q->out, ", ");
        json_u64(&w, "dropped", q->dropped, ", ");
        json_u64(&w, "discarded", q->discarded, ", ");
        json_u64(&w, "batches", q->batches, ",\n     ");
        json_u64(&w, "wait_full_ns", q->wait_full_ns, ", ");
        json_u64(&w, "wait_empty_ns", q->wait_empty_ns, ", ");
        json_u64(&w, "samples", q->samples, ", ");
        json_u64(&w, "depth_sum", q->depth_sum, ", ");
        json_u64(&w, "ready_sum", q->ready_sum, ", ");
        json_u64(&w, "unpublished_sum", q->unpublished_sum, ",\n     \"bands\": [");
        for (int b = 0; b < RILL_STATS_BANDS; b++)
            rill__rep_printf(&w, "%s%" PRIu64, b ? ", " : "", q->bands[b]);
        rill__rep_puts(&w, "]}");
    }
    rill__rep_puts(&w, s->nqueues ? "\n  ],\n  \"stages\": [" : "],\n  \"stages\": [");
    for (size_t i = 0; i < s->nstages; i++) {
        const rill_stage_stats *st = &s->stages[i];
        rill__rep_puts(&w, i ? ",\n    {" : "\n    {");
        json_str(&w, "name", st->name, ", ");
        rill__rep_printf(&w, "\"threaded\": %s, ", st->threaded ? "true" : "false");
        json_u64(&w, "items_in", st->items_in, ", ");
        json_u64(&w, "items_out", st->items_out, ",\n     ");
        json_u64(&w, "busy_ns", st->busy_ns, ", ");
        json_u64(&w, "input_depth", st->input_depth, ", ");
        json_u64(&w, "input_capacity", st->input_capacity, ",\n     ");
        if (st->thread >= 0 && (size_t)st->thread < s->nstages)
            json_str(&w, "thread", s->stages[st->thread].name, ", ");
        else
            rill__rep_puts(&w, "\"thread\": null, ");
        rill__rep_printf(&w, "\"measured\": %s, ", st->measured ? "true" : "false");
        json_u64(&w, "thread_busy_ns", st->thread_busy_ns, ", ");
        json_u64(&w, "thread_cpu_ns", st->thread_cpu_ns, ",\n     ");
        json_u64(&w, "thread_wait_ns", st->thread_wait_ns, ", ");
        json_u64(&w, "thread_runq_ns", st->thread_runq_ns, ", ");
        json_u64(&w, "thread_life_ns", st->thread_life_ns, "}");
    }
    rill__rep_puts(&w, s->nstages ? "\n  ],\n  \"samples\": [" : "],\n  \"samples\": [");
    for (size_t i = 0; i < s->nsamples && !w.err; i++) {
        const rill_depth_sample *d = &s->samples[i];
        rill__rep_printf(&w, "%s[%" PRIu64 ", %" PRIu32 ", %" PRIu32 "]", i ? ",\n    " : "\n    ",
                   d->t_ns, d->queue, d->depth);
    }
    rill__rep_puts(&w, s->nsamples ? "\n  ]\n}\n" : "]\n}\n");
    return rill__rep_end(&w);
}
