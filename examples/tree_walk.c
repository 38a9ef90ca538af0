/* The seed's tree walk: a generator of generators. Each node's visit is its
 * own generator that delegates to its children's visits with yield from.
 *
 *     def visit(self):
 *         for node in self.left_nodes:
 *             yield from node.visit()
 *         yield self.value
 *         for node in self.right_nodes:
 *             yield from node.visit()
 *
 * As in Python, every visit() call makes a new generator: its state is
 * allocated when the parent delegates and freed when the delegation ends, so
 * a walk holds one state per level of the current path, never per node. */
#include <stdio.h>
#include <stdlib.h>

#include "rill.h"

struct node {
    int value;
    const struct node *left, *right; /* arrays of children */
    size_t nleft, nright;
};

struct visit {
    rill_gen gen;
    const struct node *node;
    size_t i;            /* index into the children being walked */
    struct visit *child; /* the visit we delegate to, owned by us */
};

static int visit_body(rill_gen *g);

/* Closing a walk early (or a child failing) abandons the path innermost
 * first: by the time our on_close runs the child is closed, so freeing it is
 * all that is left. */
static int visit_close(rill_gen *g) {
    struct visit *v = RILL_CONTAINER_OF(g, struct visit, gen);
    free(v->child);
    v->child = NULL;
    return 0;
}

static void visit_init(struct visit *v, const struct node *n) {
    v->node = n;
    v->i = 0;
    v->child = NULL;
    rill_gen_init(&v->gen, visit_body, visit_close);
}

/* Start v->child on node n; false when out of memory. */
static int visit_child(struct visit *v, const struct node *n) {
    v->child = malloc(sizeof *v->child);
    if (!v->child)
        return 0;
    visit_init(v->child, n);
    return 1;
}

static int visit_body(rill_gen *g) {
    struct visit *v = RILL_CONTAINER_OF(g, struct visit, gen);
    RILL_GEN_BEGIN(g);
    for (v->i = 0; v->i < v->node->nleft; v->i++) {
        if (!visit_child(v, &v->node->left[v->i]))
            return RILL_ENOMEM;
        RILL_YIELD_FROM(g, &v->child->gen);
        free(v->child); /* the driver is done with an exhausted delegate */
        v->child = NULL;
    }
    RILL_YIELD(g, &v->node->value);
    for (v->i = 0; v->i < v->node->nright; v->i++) {
        if (!visit_child(v, &v->node->right[v->i]))
            return RILL_ENOMEM;
        RILL_YIELD_FROM(g, &v->child->gen);
        free(v->child);
        v->child = NULL;
    }
    RILL_GEN_END(g);
}

#define LEAF(v) {(v), NULL, NULL, 0, 0}

int main(void) {
    /* root = Node(0, [Node(1, [Node(7), Node(8)]), Node(2, None, [Node(9), Node(10)]),
     *                 Node(3)], [Node(4), Node(5), Node(6)]) */
    const struct node under1[] = {LEAF(7), LEAF(8)};
    const struct node right2[] = {LEAF(9), LEAF(10)};
    const struct node left0[] = {{1, under1, NULL, 2, 0}, {2, NULL, right2, 0, 2}, LEAF(3)};
    const struct node right0[] = {LEAF(4), LEAF(5), LEAF(6)};
    const struct node root = {0, left0, right0, 3, 3};

    struct visit walk;
    visit_init(&walk, &root);
    void *v;
    int rc, first = 1;
    while ((rc = rill_gen_next(&walk.gen, &v)) == 0) {
        printf(first ? "%d" : " %d", *(const int *)v);
        first = 0;
    }
    putchar('\n');
    if (rc != RILL_EDONE) {
        fprintf(stderr, "tree_walk: %s\n", rill_strerror(rc));
        return 1;
    }
    return 0;
}
