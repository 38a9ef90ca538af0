/* The seed's fib generator, with its state in a struct instead of statics.
 *
 *     def fib():
 *         a, b = 0, 1
 *         while True:
 *             yield a
 *             a, b = a + b, a
 *
 * Python's `print(next(co), end=' ')` writes "0 1 ... 34 " (a trailing space,
 * no newline). We print the numbers separated by single spaces and end the
 * line instead, so the output is exactly the line the seed shows. */
#include <stdio.h>

#include "rill.h"

struct fib {
    rill_gen gen;
    long a, b; /* everything that lives across a yield is here, not on the stack */
};

static int fib_body(rill_gen *g) {
    struct fib *f = RILL_CONTAINER_OF(g, struct fib, gen);
    RILL_GEN_BEGIN(g);
    for (f->a = 0, f->b = 1;;) {
        RILL_YIELD(g, &f->a);
        long sum = f->a + f->b; /* a local is fine: it is not used across the yield */
        f->b = f->a;
        f->a = sum;
    }
    RILL_GEN_END(g);
}

int main(void) {
    struct fib co;
    rill_gen_init(&co.gen, fib_body, NULL);
    for (int i = 0; i < 10; i++) {
        void *v;
        int rc = rill_gen_next(&co.gen, &v);
        if (rc != 0) { /* an infinite generator never ends: this is a bug */
            fprintf(stderr, "fib: %s\n", rill_strerror(rc));
            return 1;
        }
        printf(i ? " %ld" : "%ld", *(long *)v);
    }
    putchar('\n');
    /* Nothing to close: fib holds no resources, and a suspended generator
     * without on_close may simply be forgotten. */
    return 0;
}
