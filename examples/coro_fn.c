/* The seed's send/close demo: a coroutine that both produces and consumes.
 *
 *     def coro_fn():
 *         val = yield 'Starting'
 *         print('Consume', val)
 *         yield 'Hello World'
 *
 *     co = coro_fn()
 *     print(co.send(None))
 *     print(co.send('data'))
 *     co.close()
 */
#include <stdio.h>

#include "rill.h"

struct coro_fn {
    rill_gen gen;
    int closed; /* counts on_close calls, to show close runs it exactly once */
};

static int coro_fn_body(rill_gen *g) {
    RILL_GEN_BEGIN(g);
    RILL_YIELD(g, "Starting");
    /* RILL_SENT is only valid right after the yield: read it before the next
     * one, exactly like `val = yield ...`. */
    printf("Consume %s\n", (const char *)RILL_SENT(g));
    RILL_YIELD(g, "Hello World");
    RILL_GEN_END(g);
}

/* The GeneratorExit handler: the seed's coroutine has none, so it prints
 * nothing; it only records that close reached it. */
static int coro_fn_close(rill_gen *g) {
    RILL_CONTAINER_OF(g, struct coro_fn, gen)->closed++;
    return 0;
}

int main(void) {
    struct coro_fn co = {.closed = 0};
    void *v;
    rill_gen_init(&co.gen, coro_fn_body, coro_fn_close);

    /* A fresh coroutine must be started with NULL: it is not yet waiting at
     * a yield that could receive a value (Python raises TypeError). */
    if (rill_gen_send(&co.gen, NULL, &v) != 0)
        return 1;
    puts((const char *)v);
    if (rill_gen_send(&co.gen, "data", &v) != 0)
        return 1;
    puts((const char *)v);

    /* Suspended at its second yield: close runs the cleanup once, and the
     * coroutine is finished for good. */
    if (rill_gen_close(&co.gen) != 0 || co.closed != 1 ||
        rill_gen_next(&co.gen, &v) != RILL_EDONE) {
        fputs("coro_fn: close did not finish the coroutine\n", stderr);
        return 1;
    }
    return 0;
}
