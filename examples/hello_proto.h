/* The request framer of the seed's hello protocol (examples/hello_server.c):
 * a request is the bytes before the first blank line ("\n\n"), found
 * anywhere in the stream, across reads. Pure code, shared by the server,
 * its tests and the fuzz target (tests/fuzz/fuzz_hello.c).
 *
 * The seed's Python server only looks for "\n\n" at the end of each chunk it
 * receives, so a request split inside the blank line, or followed by more
 * bytes in the same chunk, is never seen; this framer finds it wherever it
 * is, and bytes after it are ignored.
 *
 * Limit: the blank line must end within the first max bytes of the stream
 * (request length + 2 <= max). Once max bytes have arrived without one, the
 * request is too large. The framer never looks past max bytes, so a caller
 * needs to buffer at most max bytes.
 *
 *     hello_framer f;
 *     hello_framer_init(&f, 65536);
 *     while ((st = hello_framer_feed(&f, chunk, n)) == HELLO_NEED_MORE)
 *         ... read the next chunk ...
 *     if (st == HELLO_COMPLETE) reply with the first f.req_len bytes
 */
#ifndef RILL_EXAMPLES_HELLO_PROTO_H
#define RILL_EXAMPLES_HELLO_PROTO_H

#include <stddef.h>
#include <string.h>

enum {
    HELLO_NEED_MORE = 0, /* no blank line yet, and fewer than max bytes */
    HELLO_COMPLETE = 1,  /* found: the request is the first req_len bytes */
    HELLO_TOO_LARGE = 2  /* max bytes without a blank line */
};

typedef struct hello_framer {
    size_t max;     /* the blank line must end within this many bytes */
    size_t seen;    /* bytes examined so far (<= max) */
    size_t req_len; /* HELLO_COMPLETE: bytes before the "\n\n" */
    int state;      /* HELLO_* */
    int prev_nl;    /* the last byte examined was '\n' */
} hello_framer;

static inline void hello_framer_init(hello_framer *f, size_t max) {
    memset(f, 0, sizeof *f);
    f->max = max;
}

/* Feed the next n bytes of the stream. Returns the state (HELLO_*); once it
 * is not HELLO_NEED_MORE it stays, and later bytes are ignored. */
static inline int hello_framer_feed(hello_framer *f, const void *data, size_t n) {
    const unsigned char *p = (const unsigned char *)data;
    if (f->state != HELLO_NEED_MORE)
        return f->state;
    size_t take = n < f->max - f->seen ? n : f->max - f->seen;
    if (take > 0 && f->prev_nl && p[0] == '\n') { /* "\n" | "\n" across feeds */
        f->req_len = f->seen - 1;
        f->seen += 1;
        return f->state = HELLO_COMPLETE;
    }
    for (size_t i = 0; i < take;) {
        const unsigned char *q = (const unsigned char *)memchr(p + i, '\n', take - i);
        if (!q)
            break;
        size_t k = (size_t)(q - p);
        if (k + 1 < take && p[k + 1] == '\n') {
            f->req_len = f->seen + k;
            f->seen += k + 2;
            return f->state = HELLO_COMPLETE;
        }
        i = k + 1;
    }
    if (take > 0)
        f->prev_nl = p[take - 1] == '\n';
    f->seen += take;
    if (f->seen >= f->max)
        f->state = HELLO_TOO_LARGE;
    return f->state;
}

#endif
