/* The seed's say() generator: three values, then StopIteration.
 *
 *     def say():
 *         yield "C"
 *         yield "Java"
 *         yield "Python"
 *
 * The seed's C version returns NULL on the fourth call and printf("%s") of
 * NULL is undefined; rill reports exhaustion as RILL_EDONE instead, which we
 * print as the exception Python raises: a "StopIteration" line on stderr. */
#include <stdio.h>

#include "rill.h"

struct say {
    rill_gen gen; /* no other state: the resume point is all that say needs */
};

static int say_body(rill_gen *g) {
    RILL_GEN_BEGIN(g);
    RILL_YIELD(g, "C");
    RILL_YIELD(g, "Java");
    RILL_YIELD(g, "Python");
    RILL_GEN_END(g);
}

int main(void) {
    struct say co;
    rill_gen_init(&co.gen, say_body, NULL);
    for (int i = 0; i < 4; i++) { /* one more next() than there are values */
        void *v;
        int rc = rill_gen_next(&co.gen, &v);
        if (rc == RILL_EDONE) {
            fflush(stdout); /* keep the order of the two streams on a terminal */
            fputs("StopIteration\n", stderr);
            return i == 3 ? 0 : 1;
        }
        if (rc != 0) {
            fprintf(stderr, "say: %s\n", rill_strerror(rc));
            return 1;
        }
        puts((const char *)v);
    }
    fputs("say: no StopIteration after three values\n", stderr);
    return 1;
}
