/* Errors that say what and where: a call that fails before the run (or a
 * push) leaves in rill_pipeline_errmsg the argument at fault, the stage and
 * why; a stage returning -1 is reported as failing, not as EPERM. Each test
 * checks that the message names its cause. */
#include <stdio.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"

/* msg contains every one of the NULL-terminated words. */
static int has_all(const char *msg, const char *const *words) {
    for (; *words; words++)
        if (!strstr(msg, *words))
            return 0;
    return 1;
}
#define CHECK_MSG(p, ...) \
    CHECK(has_all(rill_pipeline_errmsg(p), (const char *const[]){__VA_ARGS__, NULL}))

static int noop_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st, (void)state, (void)it;
    return 0;
}
static int noop_produce(rill_stage *st, void *state) {
    (void)st, (void)state;
    return RILL_EDONE;
}

RILL_TEST(setup_errors, missing_file_names_path_and_stage_before_start) {
    rill_pipeline *p;
    rill_stage *src;
    char path[256];
    snprintf(path, sizeof path, "%s/no_such_dir/no_such_file.log", RILL_TEST_TMP);
    CHECK_OK(rill_pipeline_new("t", &p));
    CHECK_STREQ(rill_pipeline_errmsg(p), "");
    CHECK_EQ(rill_lines_file_add(p, "lines", path, NULL, NULL, &src), -ENOENT);
    CHECK_MSG(p, "rill_lines_file_add 'lines'", path, "No such file or directory");
    CHECK_EQ(rill_lines_file_add(p, "dir", RILL_TEST_TMP, NULL, NULL, &src), -EISDIR);
    CHECK_MSG(p, "rill_lines_file_add 'dir'", RILL_TEST_TMP, "directory");
    rill_pipeline_free(p);
    /* Without a pipeline the message still says what happened. */
    CHECK(strstr(rill_pipeline_errmsg(NULL), "rill_pipeline_new") != NULL);
}

RILL_TEST(setup_errors, stage_with_both_send_and_produce) {
    static const rill_stage_ops both = {.send = noop_send, .produce = noop_produce};
    static const rill_stage_ops neither = {0};
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new("t", &p));
    CHECK_EQ(rill_stage_add(p, "amb", &both, NULL, NULL, NULL), RILL_EINVAL);
    CHECK_MSG(p, "'amb'", "both send and produce");
    CHECK_EQ(rill_stage_add(p, "idle", &neither, NULL, NULL, NULL), RILL_EINVAL);
    CHECK_MSG(p, "'idle'", "neither send nor produce");
    static const rill_stage_ops sink = {.send = noop_send};
    rill_stage_opts bad = {.flags = 0x100};
    CHECK_EQ(rill_stage_add(p, "flags", &sink, NULL, &bad, NULL), RILL_EINVAL);
    CHECK_MSG(p, "'flags'", "unknown flags 0x100");
    CHECK_OK(rill_stage_add(p, "twice", &sink, NULL, NULL, NULL));
    CHECK_EQ(rill_stage_add(p, "twice", &sink, NULL, NULL, NULL), RILL_EEXIST);
    CHECK_MSG(p, "'twice'", "name already in use");
    rill_pipeline_free(p);
}

RILL_TEST(setup_errors, push_into_a_stage_that_is_not_an_entry) {
    static const rill_stage_ops sink = {.send = noop_send};
    static const rill_stage_ops src = {.produce = noop_produce};
    rill_pipeline *p;
    rill_stage *a, *b, *s;
    CHECK_OK(rill_pipeline_new("t", &p));
    CHECK_OK(rill_stage_add(p, "first", &sink, NULL, NULL, &a));
    CHECK_OK(rill_stage_add(p, "second", &sink, NULL, NULL, &b));
    CHECK_OK(rill_stage_add(p, "gen", &src, NULL, NULL, &s));
    CHECK_OK(rill_connect(a, b));
    CHECK_EQ(rill_connect(a, s), RILL_EINVAL);
    CHECK_MSG(p, "'first' -> 'gen'", "'gen' is a source");
    CHECK_EQ(rill_connect(b, a), RILL_ECYCLE);
    CHECK_MSG(p, "'second' -> 'first'", "cycle");
    rill_item it = rill_item_cstr("x");
    CHECK_EQ(rill_pipeline_push(p, b, &it), RILL_EINVAL);
    CHECK_MSG(p, "rill_pipeline_push", "'second'", "not an entry", "1 stage feeds");
    CHECK_EQ(rill_pipeline_push(p, s, &it), RILL_EINVAL);
    CHECK_MSG(p, "rill_pipeline_push", "'gen'", "is a source");
    /* rill_pipeline_error gives the message only when it is about rc. */
    CHECK(strstr(rill_pipeline_error(p, RILL_EINVAL), "'gen' is a source") != NULL);
    CHECK_STREQ(rill_pipeline_error(p, RILL_ENOMEM), rill_strerror(RILL_ENOMEM));
    CHECK_STREQ(rill_pipeline_error(NULL, RILL_ENOMEM), rill_strerror(RILL_ENOMEM));
    CHECK_OK(rill_pipeline_push(p, a, &it)); /* the refusals did not stop it */
    CHECK_OK(rill_pipeline_close(p));
    rill_pipeline_free(p);
}

static int minus_one_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st, (void)state, (void)it;
    return -1; /* the usual C habit */
}

RILL_TEST(setup_errors, stage_returning_minus_one_fails_as_a_stage_not_eperm) {
    static const rill_stage_ops ops = {.send = minus_one_send};
    for (int threaded = 0; threaded < 2; threaded++) {
        rill_pipeline *p;
        rill_stage *st;
        rill_stage_opts o = {.flags = threaded ? RILL_STAGE_THREADED : 0};
        CHECK_OK(rill_pipeline_new("t", &p));
        CHECK_OK(rill_stage_add(p, "habit", &ops, NULL, &o, &st));
        rill_item it = rill_item_cstr("x");
        int rc = rill_pipeline_push(p, st, &it);
        CHECK(rc == 0 || rc == RILL_ESTAGE);
        CHECK_EQ(rill_pipeline_close(p), RILL_ESTAGE);
        CHECK_MSG(p, "stage 'habit'", "returned -1");
        CHECK(!strstr(rill_pipeline_errmsg(p), "not permitted"));
        CHECK_STREQ(rill_pipeline_errstage(p), "habit");
        rill_pipeline_free(p);
    }
}

/* A real EPERM, given with rill_stage_fail, stays EPERM. */
static int eperm_send(rill_stage *st, void *state, const rill_item *it) {
    (void)state, (void)it;
    return rill_stage_fail(st, -EPERM, "cannot write the spool");
}

RILL_TEST(setup_errors, eperm_through_stage_fail_stays_eperm) {
    static const rill_stage_ops ops = {.send = eperm_send};
    rill_pipeline *p;
    rill_stage *st;
    CHECK_OK(rill_pipeline_new("t", &p));
    CHECK_OK(rill_stage_add(p, "spool", &ops, NULL, NULL, &st));
    rill_item it = rill_item_cstr("x");
    CHECK_EQ(rill_pipeline_push(p, st, &it), -EPERM);
    CHECK_EQ(rill_pipeline_close(p), -EPERM);
    CHECK_MSG(p, "stage 'spool'", "cannot write the spool", "not permitted");
    rill_pipeline_free(p);
}

RILL_TEST(setup_errors, connect_chain_connects_in_order_and_stops_at_the_first_error) {
    static const rill_stage_ops sink = {.send = noop_send};
    static const rill_stage_ops src = {.produce = noop_produce};
    rill_pipeline *p;
    rill_stage *a, *b, *c, *s;
    CHECK_OK(rill_pipeline_new("t", &p));
    CHECK_OK(rill_stage_add(p, "a", &sink, NULL, NULL, &a));
    CHECK_OK(rill_stage_add(p, "b", &sink, NULL, NULL, &b));
    CHECK_OK(rill_stage_add(p, "c", &sink, NULL, NULL, &c));
    CHECK_OK(rill_stage_add(p, "s", &src, NULL, NULL, &s));
    CHECK_OK(rill_connect_chain(a, b, c, NULL));
    CHECK_EQ(rill_stage_outputs(a), 1u);
    CHECK_EQ(rill_stage_outputs(b), 1u);
    CHECK_EQ(rill_stage_outputs(c), 0u);
    CHECK_EQ(rill_connect_chain(c, s, a, NULL), RILL_EINVAL);
    CHECK_MSG(p, "'c' -> 's'", "is a source");
    CHECK_EQ(rill_stage_outputs(c), 0u);
    rill_pipeline_free(p);
}

RILL_TEST(setup_errors, connect_chain_of_one_stage_is_refused_with_a_message) {
    static const rill_stage_ops sink = {.send = noop_send};
    rill_pipeline *p;
    rill_stage *a, *failed = NULL; /* as a stage whose add failed unchecked */
    CHECK_OK(rill_pipeline_new("t", &p));
    CHECK_OK(rill_stage_add(p, "a", &sink, NULL, NULL, &a));
    CHECK_EQ(rill_connect_chain(a, failed, a, NULL), RILL_EINVAL);
    CHECK_MSG(p, "rill_connect_chain", "only one stage", "check each stage's add");
    CHECK_EQ(rill_stage_outputs(a), 0u);
    rill_pipeline_free(p);
}

RILL_TEST(setup_errors, an_old_message_is_not_given_for_a_later_failure) {
    static const rill_stage_ops sink = {.send = noop_send};
    static const rill_stage_ops src = {.produce = noop_produce};
    rill_pipeline *p;
    rill_stage *a, *s;
    CHECK_OK(rill_pipeline_new("t", &p));
    CHECK_OK(rill_stage_add(p, "a", &sink, NULL, NULL, &a));
    CHECK_OK(rill_stage_add(p, "s", &src, NULL, NULL, &s));
    CHECK_EQ(rill_connect(a, s), RILL_EINVAL);
    CHECK(strstr(rill_pipeline_error(p, RILL_EINVAL), "is a source") != NULL);
    /* A later call that fails with the same code but says nothing: the
     * earlier message is not about it. */
    CHECK_OK(rill_stage_add(p, "b", &sink, NULL, NULL, NULL));
    CHECK_EQ(rill_filter_add(p, "f", NULL, NULL, NULL), RILL_EINVAL);
    CHECK_STREQ(rill_pipeline_error(p, RILL_EINVAL), rill_strerror(RILL_EINVAL));
    rill_pipeline_free(p);
}

/* ---- -1 from every kind of callback: RILL_ESTAGE, naming the callback ---------- */

static int minus_one_produce(rill_stage *st, void *state) {
    (void)st, (void)state;
    return -1;
}
static int minus_one_close(rill_stage *st, void *state) {
    (void)st, (void)state;
    return -1;
}
static int minus_one_barrier(rill_stage *st, void *state, uint64_t id) {
    (void)st, (void)state, (void)id;
    return -1;
}
static int one_barrier_produce(rill_stage *st, void *state) {
    int *n = state;
    if ((*n)++)
        return RILL_EDONE;
    return rill_emit_barrier(st, 1);
}
static int clone_null(const void *state, void **out) {
    (void)state;
    *out = NULL;
    return 0;
}
static int clone_minus_one(const void *state, void **out) {
    (void)state, (void)out;
    return -1;
}
static int minus_one_merge(void *into, const void *from) {
    (void)into, (void)from;
    return -1;
}

/* Run src -> sink (sink threaded when threaded) and check that the run
 * fails with RILL_ESTAGE naming stage `who` and callback `cb`. */
static int fails_naming(const rill_stage_ops *src_ops, void *src_state,
                        const rill_stage_ops *sink_ops, const rill_stage_opts *sink_opts,
                        const char *who, const char *cb) {
    rill_pipeline *p;
    rill_stage *src, *sink;
    int ok = rill_pipeline_new("t", &p) == 0 &&
             rill_stage_add(p, "src", src_ops, src_state, NULL, &src) == 0 &&
             rill_stage_add(p, "sink", sink_ops, NULL, sink_opts, &sink) == 0 &&
             rill_connect(src, sink) == 0 && rill_pipeline_run(p) == RILL_ESTAGE;
    char want[64];
    snprintf(want, sizeof want, "its %s callback returned -1", cb);
    const char *msg = rill_pipeline_errmsg(p);
    ok = ok && strstr(msg, want) && !strstr(msg, "not permitted") &&
         strcmp(rill_pipeline_errstage(p), who) == 0;
    if (!ok)
        fprintf(stderr, "want %s's %s: got '%s'\n", who, cb, msg);
    rill_pipeline_free(p);
    return ok;
}

RILL_TEST(setup_errors, minus_one_from_produce_close_barrier_and_merge_names_the_callback) {
    static const rill_stage_ops bad_src = {.produce = minus_one_produce};
    static const rill_stage_ops barrier_src = {.produce = one_barrier_produce};
    static const rill_stage_ops sink = {.send = noop_send};
    static const rill_stage_ops bad_close = {.send = noop_send, .close = minus_one_close};
    static const rill_stage_ops bad_barrier = {.send = noop_send, .barrier = minus_one_barrier};
    static const rill_stage_ops bad_merge = {.send = noop_send, .clone = clone_null,
                                             .merge = minus_one_merge};
    rill_stage_opts th = {.flags = RILL_STAGE_THREADED}, two = {.replicas = 2};
    int n = 0;
    for (int threaded = 0; threaded < 2; threaded++) {
        const rill_stage_opts *o = threaded ? &th : NULL;
        CHECK(fails_naming(&bad_src, NULL, &sink, o, "src", "produce"));
        CHECK(fails_naming(&bad_src, NULL, &bad_close, o, "src", "produce"));
        n = 0;
        CHECK(fails_naming(&barrier_src, &n, &bad_close, o, "sink", "close"));
        n = 0;
        CHECK(fails_naming(&barrier_src, &n, &bad_barrier, o, "sink", "barrier"));
    }
    n = 0;
    CHECK(fails_naming(&barrier_src, &n, &bad_merge, &two, "sink", "merge"));
    /* clone runs inside rill_stage_add: a setup error, also not EPERM */
    static const rill_stage_ops bad_clone = {.send = noop_send, .clone = clone_minus_one};
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new("t", &p));
    CHECK_EQ(rill_stage_add(p, "rep", &bad_clone, NULL, &two, NULL), RILL_ESTAGE);
    CHECK_MSG(p, "'rep'", "clone failed for replica 1");
    CHECK(strstr(rill_pipeline_error(p, RILL_ESTAGE), "clone") != NULL);
    rill_pipeline_free(p);
}

/* The built-in stages' own checks name the function, the stage and the
 * argument at fault, and rill_pipeline_error gives that message for the
 * code the call returned. */
#define CHECK_ADD_MSG(p, call, ...)                                                   \
    do {                                                                              \
        int rc_ = (call);                                                             \
        CHECK_EQ(rc_, RILL_EINVAL);                                                   \
        CHECK_MSG(p, __VA_ARGS__);                                                    \
        CHECK_STREQ(rill_pipeline_error(p, rc_), rill_pipeline_errmsg(p));            \
    } while (0)

RILL_TEST(setup_errors, line_sources_name_the_function_and_the_option) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new("t", &p));
    CHECK_ADD_MSG(p, rill_lines_fd_add(p, "in", -1, NULL, NULL, NULL), "rill_lines_fd_add 'in'",
                  "fd -1");
    rill_lines_opts flags = {.flags = 0x4000};
    CHECK_ADD_MSG(p, rill_lines_fd_add(p, "in", 0, &flags, NULL, NULL), "rill_lines_fd_add 'in'",
                  "unknown flags 0x4000 in lopts");
    rill_lines_opts huge = {.chunk = (size_t)1 << 41};
    char want[64];
    snprintf(want, sizeof want, "chunk %zu", huge.chunk);
    CHECK_ADD_MSG(p, rill_lines_file_add(p, "file", "/dev/null", &huge, NULL, NULL),
                  "rill_lines_file_add 'file'", want, "too large");
    rill_lines_opts close_fd = {.flags = RILL_LINES_CLOSE_FD}; /* a file's flag, not TCP's */
    snprintf(want, sizeof want, "unknown flags 0x%x", (unsigned)RILL_LINES_CLOSE_FD);
    CHECK_ADD_MSG(p, rill_tcp_lines_add(p, "tcp", NULL, &close_fd, NULL, NULL),
                  "rill_tcp_lines_add 'tcp'", want);
    rill_pipeline_free(p);
}

RILL_TEST(setup_errors, simple_stages_name_the_function_and_the_argument) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new("t", &p));
    CHECK_ADD_MSG(p, rill_map_add(p, "up", NULL, NULL, NULL, NULL), "rill_map_add 'up'",
                  "fn is NULL");
    CHECK_ADD_MSG(p, rill_print_add(p, "out", -2, NULL, NULL), "rill_print_add 'out'", "fd -2");
    CHECK_ADD_MSG(p, rill_selector_add(p, "sel", NULL, NULL, NULL), "rill_selector_add 'sel'",
                  "spec is NULL");
    CHECK_ADD_MSG(p, rill_split_add(p, "words", ' ', 0x80000000u, NULL, NULL),
                  "rill_split_add 'words'", "unknown flags 0x80000000");
    rill_pipeline_free(p);
}

/* A stage library's own setup error reads like a built-in one. */
RILL_TEST(setup_errors, a_stage_library_records_its_setup_error) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new("t", &p));
    CHECK_EQ(rill_pipeline_setup_error(p, -ENOENT, "my_stage_add '%s': no table %d", "m", 7),
             -ENOENT);
    char want[200];
    snprintf(want, sizeof want, "my_stage_add 'm': no table 7: %s", rill_strerror(-ENOENT));
    CHECK_STREQ(rill_pipeline_errmsg(p), want);
    CHECK_STREQ(rill_pipeline_error(p, -ENOENT), want);
    /* A code that is not an error is not passed on as success. */
    CHECK_EQ(rill_pipeline_setup_error(p, 0, "my_stage_add: odd"), RILL_EINVAL);
    CHECK_EQ(rill_pipeline_setup_error(NULL, -EIO, "no pipeline"), -EIO);
    rill_pipeline_free(p);
}
