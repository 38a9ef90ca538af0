/* Line splitting over reference-counted read buffers, shared by the file
 * line source (stages/lines.c) and the TCP line source (stages/tcp_lines.c),
 * so both cut lines by exactly the same rules (rill/lines.h).
 *
 * A splitter owns one reference to its current buffer. The caller reads
 * into rill__lsplit_space() after rill__lsplit_prepare(), reports the bytes
 * with rill__lsplit_fed(), then emits the completed lines. Emitting can be
 * resumed: with try_emit a refused line (RILL_EAGAIN) stays pending, with
 * nothing counted, and the next call starts at that line again — a TCP
 * connection waits for room without losing its place. */
#ifndef RILL_LINES_INT_H
#define RILL_LINES_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/counter.h"
#include "core/rill_int.h"

typedef struct rill__lbuf {
    rill_ref ref; /* first: the release function casts back */
    size_t cap;
    char data[];
} rill__lbuf;

typedef struct rill__lsplit {
    size_t chunk, max_line;
    size_t slack;    /* 1 with STRIP_CR: a tail of max_line+1 may end in '\r' */
    size_t cap_init; /* first capacity of a buffer; grows up to cap_max */
    size_t cap_max;
    bool strip_cr, truncate;
    bool skipping;   /* TRUNCATE: discarding the rest of an over-long line */
    bool pending;    /* fed bytes whose lines are not all emitted yet */
    rill__lbuf *buf; /* current buffer; the splitter holds one reference */
    size_t fill;     /* bytes of buf->data read into: emitted lines lie
                        before it, nothing after it is anyone's */
    size_t room;     /* bytes the next read may take (set by prepare) */
    size_t toff, tlen; /* unfinished line: buf->data[toff .. toff+tlen) */
    size_t pos, scan, end; /* pending: lines of data[pos..end), '\n' search
                              resumes at scan */
    uint64_t lines;  /* lines emitted by this splitter */
    struct rill_lines_stats *stats; /* shared counters, written by one thread */
} rill__lsplit;

/* Fill *lo's defaults (chunk: default_chunk) and check it: 0 or RILL_EINVAL.
 * known: the RILL_LINES_* flags the caller accepts. */
int rill__lsplit_opts(rill_lines_opts *lo, size_t default_chunk, unsigned known);

/* rill__lsplit_opts refused *lo (as the caller gave it): record why, naming
 * the function fn and the stage, and return RILL_EINVAL. */
static inline int rill__lsplit_opts_error(rill_pipeline *p, const char *fn, const char *name,
                                          const rill_lines_opts *lo, unsigned known) {
    const char *what = name ? name : "(unnamed)";
    if (!lo) /* not reached: the defaults pass */
        return rill__setup_error(p, RILL_EINVAL, "%s '%s': bad default lopts", fn, what);
    if (lo->flags & ~known)
        return rill__setup_error(p, RILL_EINVAL, "%s '%s': unknown flags 0x%x in lopts", fn,
                                 what, lo->flags & ~known);
    return rill__setup_error(p, RILL_EINVAL, "%s '%s': lopts chunk %zu or max_line %zu is too "
                             "large", fn, what, lo->chunk, lo->max_line);
}

/* Set sp up for lo (checked by rill__lsplit_opts), counting into stats. */
void rill__lsplit_init(rill__lsplit *sp, const rill_lines_opts *lo, struct rill_lines_stats *stats);

/* Make room to read into right after the unfinished line: sp->room bytes,
 * a chunk, or at least half a chunk where the buffer is kept by others and
 * still has that much unused. 0 or RILL_ENOMEM. */
int rill__lsplit_prepare(rill__lsplit *sp);

/* Where to read (room for sp->room bytes), after prepare. */
static inline char *rill__lsplit_space(rill__lsplit *sp) {
    return sp->buf->data + sp->toff + sp->tlen;
}

/* n > 0 bytes were read into rill__lsplit_space(). */
void rill__lsplit_fed(rill__lsplit *sp, size_t n);

/* Emit the pending lines: 0 when all are out, RILL_ETOOLONG at an over-long
 * line without TRUNCATE (the lines before it are out), RILL_EAGAIN (try
 * only: rill_try_emit refused; call again later), or an emit error. */
int rill__lsplit_emit(rill_stage *st, rill__lsplit *sp);
int rill__lsplit_try_emit(rill_stage *st, rill__lsplit *sp);

/* End of input: emit the unfinished last line, if any (never stripped of
 * '\r'). Same results as the emit functions; 0 once nothing is left. */
int rill__lsplit_finish(rill_stage *st, rill__lsplit *sp, bool try_emit);

/* Bytes held back: pending lines plus the unfinished line. */
static inline size_t rill__lsplit_held(const rill__lsplit *sp) {
    return sp->pending ? sp->end - sp->pos : sp->tlen;
}

/* Drop the buffer (stages that kept lines hold their own references) and
 * anything unfinished. */
void rill__lsplit_release(rill__lsplit *sp);

/* The TCP line source's counters, or NULL if st is not one (tcp_lines.c),
 * so rill_lines_stats() answers for both kinds of line source. */
const struct rill_lines_stats *rill__tcp_lines_counters(const rill_stage *st);

#endif
