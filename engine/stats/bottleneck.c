/* The bottleneck heuristic of a snapshot (rill_stats.bottleneck): which
 * stage holds the pipeline up, judged from how full its queues ran. */
#include "stats_int.h"
#include "pipeline/pipeline_int.h"

static double rill__mean_fill(const rill_queue_stats *q) {
    if (q->capacity == 0)
        return 0;
    if (q->samples == 0)
        return (double)q->high_water / (double)q->capacity;
    return (double)q->depth_sum / (double)q->samples / (double)q->capacity;
}

/* The stage whose input queues run fullest while its output queues run
 * emptiest: everything upstream waits for it, nothing downstream does. */
int rill__bottleneck(const rill_pipeline *p, const rill_stats *s) {
    int best = -1;
    double best_score = 0.25; /* below this no queue is worth naming */
    for (unsigned i = 0; i < p->n; i++) {
        double in = 0, out = 0;
        unsigned nin = 0, nout = 0;
        for (size_t k = 0; k < s->nqueues; k++) {
            const rill__queue_stats *q = &p->queue_stats[k];
            double f = rill__mean_fill(&s->queues[k]);
            if (q->consumer == i)
                in = f > in ? f : in, nin++;
            if (q->producer == i)
                out = f > out ? f : out, nout++;
        }
        double score = in - out;
        if (nin && score > best_score) {
            best_score = score;
            best = (int)i;
        }
    }
    return best;
}
