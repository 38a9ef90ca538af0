/* Line splitting over reference-counted read buffers; see lines_int.h.
 *
 * Before each read the splitter either reuses its buffer in place (nobody
 * else kept a reference: the single-threaded steady state allocates
 * nothing), or appends after what it read last while at least half a chunk
 * is unused there (emitted lines are never written over), or leaves the
 * buffer to whoever retained it and takes a fresh one. Appending matters
 * for short reads (a socket delivering a line at a time): without it every
 * kept line would pin a buffer of its own, a full queue of them capacity
 * buffers. So a buffer is left behind only once more than half of it has
 * been read into. The unfinished last line of a read is carried to the
 * front of the buffer (or stays put when appending) and the next read
 * continues it, so a buffer never holds more than max_line of carried-over
 * bytes plus one chunk. */
#include <stdlib.h>
#include <string.h>

#include "lines_int.h"

static void rill__lbuf_release(rill_ref *ref) { free(ref); }

static rill__lbuf *rill__lbuf_new(size_t cap) {
    rill__lbuf *b = malloc(sizeof *b + cap);
    if (!b)
        return NULL;
    rill_ref_init(&b->ref, rill__lbuf_release);
    b->cap = cap;
    return b;
}

int rill__lsplit_opts(rill_lines_opts *lo, size_t default_chunk, unsigned known) {
    if (lo->flags & ~known)
        return RILL_EINVAL;
    if (!lo->max_line)
        lo->max_line = RILL_LINES_DEFAULT_MAX_LINE;
    if (!lo->chunk)
        lo->chunk = default_chunk;
    /* Keep the largest buffer well inside what malloc and ssize_t allow. */
    const size_t limit = (size_t)1 << (sizeof(size_t) > 4 ? 40 : 29);
    return lo->max_line > limit || lo->chunk > limit ? RILL_EINVAL : 0;
}

void rill__lsplit_init(rill__lsplit *sp, const rill_lines_opts *lo, struct rill_lines_stats *stats) {
    memset(sp, 0, sizeof *sp);
    size_t slack = (lo->flags & RILL_LINES_STRIP_CR) ? 1 : 0;
    sp->strip_cr = slack;
    sp->truncate = lo->flags & RILL_LINES_TRUNCATE;
    sp->chunk = lo->chunk;
    sp->max_line = lo->max_line;
    sp->slack = slack;
    sp->cap_max = lo->chunk + lo->max_line + slack;
    sp->cap_init = lo->chunk + (lo->max_line + slack < lo->chunk ? lo->max_line + slack : lo->chunk);
    sp->stats = stats;
}

int rill__lsplit_prepare(rill__lsplit *sp) {
    rill__lbuf *b = sp->buf;
    size_t need = sp->tlen + sp->chunk;
    if (b && b->cap >= need && rill_ref_count(&b->ref) == 1) {
        if (sp->toff)
            memmove(b->data, b->data + sp->toff, sp->tlen);
        sp->toff = 0;
        sp->fill = sp->tlen;
        sp->room = sp->chunk;
        return 0;
    }
    size_t left = b ? b->cap - sp->fill : 0;
    bool tail_last = sp->tlen == 0 || sp->toff + sp->tlen == sp->fill;
    if (left >= sp->chunk - sp->chunk / 2 && tail_last) {
        sp->toff = sp->fill - sp->tlen; /* an empty line may start anywhere */
        sp->room = left < sp->chunk ? left : sp->chunk;
        return 0;
    }
    size_t cap = sp->cap_init;
    while (cap < need)
        cap = cap > sp->cap_max / 2 ? sp->cap_max : 2 * cap;
    rill__lbuf *nb = rill__lbuf_new(cap);
    if (!nb)
        return RILL_ENOMEM;
    if (b) {
        memcpy(nb->data, b->data + sp->toff, sp->tlen);
        rill_ref_release(&b->ref);
    }
    sp->buf = nb;
    sp->toff = 0;
    sp->fill = sp->tlen;
    sp->room = sp->chunk;
    return 0;
}

void rill__lsplit_fed(rill__lsplit *sp, size_t n) {
    rill__counter_add(&sp->stats->bytes, (uint64_t)n);
    size_t pos = sp->toff, scan = sp->toff + sp->tlen, end = scan + n;
    sp->fill = end;
    if (sp->skipping) {
        const char *nl = memchr(sp->buf->data + scan, '\n', n);
        if (!nl) {
            sp->tlen = 0;
            return;
        }
        sp->skipping = false;
        pos = scan = (size_t)(nl + 1 - sp->buf->data);
    }
    sp->pos = pos;
    sp->scan = scan;
    sp->end = end;
    sp->pending = true;
}

static inline int rill__lsplit_out(rill_stage *st, const rill_item *it, bool try_emit) {
    return try_emit ? rill_try_emit(st, it) : rill_emit(st, it);
}

static void rill__lsplit_count(rill__lsplit *sp, uint64_t n, uint64_t truncated) {
    sp->lines += n;
    rill__counter_add(&sp->stats->lines, n);
    if (truncated)
        rill__counter_add(&sp->stats->truncated, truncated);
}

/* A line longer than max_line starting at ls: fail, or emit its head. */
static inline int rill__lsplit_overlong(rill_stage *st, rill__lsplit *sp, const char *ls,
                                        bool try_emit) {
    if (!sp->truncate)
        return RILL_ETOOLONG;
    rill_item it = {ls, sp->max_line, &sp->buf->ref};
    int rc = rill__lsplit_out(st, &it, try_emit);
    if (rc == 0)
        rill__lsplit_count(sp, 1, 1);
    return rc;
}

/* Lines are emitted in runs of up to this many (rill_emit_items): the
 * engine's per-emit work is paid once per run. bench_ip_stats found 32, 64
 * and 128 within the noise of each other (load 7-12 on 2 cores); 64 keeps
 * the array (1.5 KiB of stack) small. */
#define RILL__LSPLIT_RUN 64

/* The hot loop: every complete pending line, then the check of the
 * unfinished one. Inlined twice, so the file source's loop does not test
 * try_emit per line. rill_try_emit is all or nothing per line (a refused
 * line stays pending), so with try_emit lines go one at a time; otherwise
 * they are gathered into runs, the buffer they point into staying put
 * until the next prepare. */
static inline __attribute__((always_inline)) int rill__lsplit_scan(rill_stage *st,
                                                                  rill__lsplit *sp,
                                                                  bool try_emit) {
    if (!sp->pending)
        return 0;
    char *data = sp->buf->data;
    rill_ref *owner = &sp->buf->ref;
    const size_t max_line = sp->max_line;
    const bool strip_cr = sp->strip_cr;
    const char *ls = data + sp->pos, *p = data + sp->scan, *end = data + sp->end;
    uint64_t n = 0; /* kept out of sp so the loop needs no store per line */
    rill_item run[RILL__LSPLIT_RUN];
    size_t nrun = 0;
    int rc = 0;
    const char *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        size_t len = (size_t)(nl - ls);
        if (strip_cr && len && nl[-1] == '\r')
            len--;
        if (RILL__LIKELY(len <= max_line)) {
            rill_item it = {ls, len, owner};
            if (!try_emit) {
                run[nrun++] = it;
                if (RILL__UNLIKELY(nrun == RILL__LSPLIT_RUN)) {
                    rc = rill_emit_items(st, run, nrun);
                    n += nrun; /* emitted as far as counts go, even on failure */
                    nrun = 0;
                    if (RILL__UNLIKELY(rc < 0)) {
                        ls = p = nl + 1;
                        break;
                    }
                }
            } else {
                rc = rill_try_emit(st, &it);
                if (RILL__UNLIKELY(rc < 0))
                    break;
                n++;
            }
        } else {
            if (nrun) { /* the lines before it go first */
                rc = rill_emit_items(st, run, nrun);
                n += nrun;
                nrun = 0;
                if (rc < 0)
                    break;
            }
            rill__lsplit_count(sp, n, 0);
            n = 0;
            rc = rill__lsplit_overlong(st, sp, ls, try_emit);
            if (rc < 0)
                break;
        }
        ls = p = nl + 1;
    }
    if (nrun && rc == 0) {
        rc = rill_emit_items(st, run, nrun);
        n += nrun;
    }
    rill__lsplit_count(sp, n, 0);
    sp->pos = (size_t)(ls - data);
    sp->scan = (size_t)(p - data);
    if (rc < 0)
        return rc;
    size_t tlen = (size_t)(end - ls);
    if (tlen > max_line + sp->slack) {
        /* No '\n' yet and already too long, whatever follows. */
        sp->scan = sp->end;
        rc = rill__lsplit_overlong(st, sp, ls, try_emit);
        if (rc < 0)
            return rc;
        tlen = 0;
        sp->skipping = true;
    }
    sp->pending = false;
    sp->toff = sp->pos;
    sp->tlen = tlen;
    return 0;
}

int rill__lsplit_emit(rill_stage *st, rill__lsplit *sp) { return rill__lsplit_scan(st, sp, false); }

int rill__lsplit_try_emit(rill_stage *st, rill__lsplit *sp) {
    return rill__lsplit_scan(st, sp, true);
}

int rill__lsplit_finish(rill_stage *st, rill__lsplit *sp, bool try_emit) {
    int rc = try_emit ? rill__lsplit_try_emit(st, sp) : rill__lsplit_emit(st, sp);
    if (rc < 0 || sp->tlen == 0)
        return rc;
    const char *ls = sp->buf->data + sp->toff;
    if (sp->tlen > sp->max_line) {
        rc = rill__lsplit_overlong(st, sp, ls, try_emit);
    } else {
        rill_item it = {ls, sp->tlen, &sp->buf->ref};
        rc = rill__lsplit_out(st, &it, try_emit);
        if (rc == 0)
            rill__lsplit_count(sp, 1, 0);
    }
    if (rc == 0)
        sp->tlen = 0;
    return rc;
}

void rill__lsplit_release(rill__lsplit *sp) {
    if (sp->buf)
        rill_ref_release(&sp->buf->ref);
    sp->buf = NULL;
    sp->tlen = 0;
    sp->pending = false;
}
