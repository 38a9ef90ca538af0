/* rill — streaming line source.
 *
 * Reads a file descriptor in large chunks into reference-counted buffers and
 * emits every line as a slice of its buffer: no copy of the bytes, no malloc
 * and no atomic operation per line. Memory stays bounded by the chunk size
 * plus the longest line allowed, whatever the file size.
 *
 * What counts as a line: the bytes up to (not including) each '\n'; a last
 * line without '\n' is a line too; an empty file has no lines. CR before LF,
 * NUL bytes and invalid UTF-8 are data and reach the item unchanged (unless
 * RILL_LINES_STRIP_CR, which removes one '\r' right before a '\n' only: a
 * '\r' ending a file without a final '\n' stays). A line longer than
 * max_line (measured as emitted, after any '\r' is stripped) is an error
 * (RILL_ETOOLONG, the default) or, with RILL_LINES_TRUNCATE, emitted cut to
 * max_line bytes and counted in rill_lines_stats() (truncated) — never silent;
 * the rest of a cut line is skipped as it is read, never buffered.
 *
 * Items point into the source's current buffer and are borrowed for the
 * emit call (rill/item.h): a stage that keeps one retains item->owner, which
 * keeps that whole buffer alive; the source then reads into a new buffer
 * instead of reusing it. Each call of the source's produce callback does
 * one read() and emits the lines it completes; a short read (a pipe, a
 * terminal) is fine. A non-blocking fd is waited on with poll().
 *
 * Replicas (rill_stage_opts.replicas = N): a regular file is cut into N byte
 * ranges of the size it had when the stage was added, from the fd's offset
 * then (where a single reader would start: 0 for rill_lines_file_add), each
 * moved to the next line start, and replica k reads range k with pread() on
 * its own thread (the fd's offset is left where it was):
 * every line is read by exactly one replica, whatever the line lengths (a
 * replica whose range no line starts in emits nothing); bytes appended
 * later are not read. Any other fd (a pipe, stdin) is read by replica 0
 * alone: connect one unreplicated source to replicated stages instead to
 * deal its lines out.
 */
#ifndef RILL_LINES_H
#define RILL_LINES_H

#include <stdint.h>

#include "rill/pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    RILL_LINES_TRUNCATE = 1u << 0, /* over-long lines: truncate, do not fail */
    RILL_LINES_STRIP_CR = 1u << 1, /* drop one '\r' before each '\n' */
    RILL_LINES_CLOSE_FD = 1u << 2  /* the stage closes fd when freed */
};

#define RILL_LINES_DEFAULT_MAX_LINE (1u << 20) /* 1 MiB */
#define RILL_LINES_DEFAULT_CHUNK (256u << 10)  /* 256 KiB per read buffer */

typedef struct rill_lines_opts {
    size_t max_line;  /* longest line in bytes; 0 = RILL_LINES_DEFAULT_MAX_LINE */
    size_t chunk;     /* read buffer size; 0 = RILL_LINES_DEFAULT_CHUNK */
    unsigned flags;   /* RILL_LINES_* */
} rill_lines_opts;

struct rill_lines_stats {
    uint64_t lines;      /* lines emitted (in runs, rill_emit_items: a run a
                            stop kept from a stage counts too, its lines
                            never delivered in rill_pipeline_discarded; the
                            source's items_out is the same) */
    uint64_t bytes;      /* bytes read from the fd */
    uint64_t truncated;  /* lines cut to max_line (RILL_LINES_TRUNCATE) */
};

/* Add a source stage reading lines from fd (which must stay open until the
 * pipeline is freed; closed then only with RILL_LINES_CLOSE_FD). lopts
 * and opts may be NULL. Returns 0, RILL_EINVAL, or an error of
 * rill_stage_add. Read errors fail the pipeline with -errno. */
int rill_lines_fd_add(rill_pipeline *p, const char *name, int fd,
                      const rill_lines_opts *lopts, const rill_stage_opts *opts,
                      rill_stage **out);

/* Open path read-only now (so a missing file is reported here, as -errno:
 * -ENOENT, -EACCES, -EISDIR...) and add a line source that owns the fd. */
int rill_lines_file_add(rill_pipeline *p, const char *name, const char *path,
                        const rill_lines_opts *lopts, const rill_stage_opts *opts,
                        rill_stage **out);

/* Counters of a line source stage, summed over its replicas. Callable from
 * any thread while the pipeline runs (progress reports: each counter is
 * current, not all taken at the same instant); exact once it is closed.
 * Works on the TCP line source too (rill/tcp_lines.h: its own stats call
 * adds the connection counters). RILL_EINVAL if st is not a line source. */
int rill_lines_stats(const rill_stage *st, struct rill_lines_stats *out);

#ifdef __cplusplus
}
#endif
#endif
