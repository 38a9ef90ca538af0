/* librill_redis in process against a real redis-server: the address parser,
 * argument checks, and a pipeline publish -> (source -> sink) whose
 * committed counts and statistics match what the test put in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_server.h"
#include "rill.h"
#include "rill/redis.h"
#include "rill_test.h"

RILL_TEST(redis_api, parse_addr_accepts_host_port_only) {
    rill_redis_conf conf;
    char host[64];
    CHECK_OK(rill_redis_parse_addr("127.0.0.1:6379", &conf, host, sizeof host));
    CHECK_STREQ(conf.host, "127.0.0.1");
    CHECK_EQ(conf.port, 6379);
    CHECK_OK(rill_redis_parse_addr("[::1]:7000", &conf, host, sizeof host));
    CHECK_STREQ(conf.host, "::1");
    CHECK_EQ(conf.port, 7000);
    CHECK_OK(rill_redis_parse_addr("redis.example:1", &conf, host, sizeof host));
    const char *bad[] = {"", "host", "host:", ":1", "h:0", "h:65536", "h:1x", "h:-1", "[::1:1",
                         "a b:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (rill_redis_parse_addr(bad[i], &conf, host, sizeof host) != RILL_EINVAL)
            rill_test__failf(__FILE__, __LINE__, "'%s' accepted", bad[i]);
    char tiny[4];
    CHECK_EQ(rill_redis_parse_addr("localhost:1", &conf, tiny, sizeof tiny), RILL_EINVAL);
}

/* A connection setting that cannot work is refused before any connect, and
 * err names the call, the stage and the field (it was empty, or "bad Redis
 * address" with no call or field). No server is needed. */
RILL_TEST(redis_api, a_bad_conf_is_refused_naming_the_field) {
    rill_pipeline *p = NULL;
    CHECK_OK(rill_pipeline_new("conf", &p));
    char err[256], longhost[300];
    memset(longhost, 'h', sizeof longhost - 1);
    longhost[sizeof longhost - 1] = '\0';
    const struct {
        rill_redis_conf conf;
        bool null;
        const char *field;
    } cases[] = {
        {{.host = "127.0.0.1", .port = 1}, true, "conf is NULL"},
        {{.host = NULL, .port = 1}, false, "conf->host is NULL"},
        {{.host = longhost, .port = 1}, false, "conf->host is longer"},
        {{.host = "127.0.0.1", .port = 0}, false, "conf->port is 0"},
    };
    rill_redis_source_opts o = {.stream = "s", .consumer = "c"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const rill_redis_conf *c = cases[i].null ? NULL : &cases[i].conf;
        rill_stage *st = NULL;
        err[0] = '\0';
        CHECK_EQ(rill_redis_publish_add(p, "pub", c, "s", NULL, NULL, &st, err, sizeof err),
                 RILL_EINVAL);
        if (!strstr(err, "rill_redis_publish_add 'pub'") || !strstr(err, cases[i].field))
            rill_test__failf(__FILE__, __LINE__, "publish, case %zu: '%s'", i, err);
        err[0] = '\0';
        CHECK_EQ(rill_redis_source_add(p, "src", c, &o, NULL, &st, err, sizeof err),
                 RILL_EINVAL);
        if (!strstr(err, "rill_redis_source_add 'src'") || !strstr(err, cases[i].field))
            rill_test__failf(__FILE__, __LINE__, "source, case %zu: '%s'", i, err);
        CHECK(st == NULL);
    }
    rill_pipeline_free(p);
}

static int sum_counts(void *arg, const char *key, size_t len, uint64_t count) {
    (void)key, (void)len;
    *(uint64_t *)arg += count;
    return 0;
}

/* Publish n entries "k<i mod 7>" to stream through the publish sink, adding
 * each to want[i mod 7]. 0, or the first failing call's code. */
static int publish_keys(const rill_redis_conf *conf, const char *stream, int n,
                        uint64_t want[7]) {
    static char keys[7][4];
    char err[256];
    rill_pipeline *p = NULL;
    rill_stage *pub = NULL;
    int rc = rill_pipeline_new("pub", &p);
    if (!rc)
        rc = rill_redis_publish_add(p, "pub", conf, stream, NULL, NULL, &pub, err, sizeof err);
    for (int i = 0; i < n && !rc; i++) {
        snprintf(keys[i % 7], sizeof keys[i % 7], "k%d", i % 7);
        rill_item it = rill_item_cstr(keys[i % 7]);
        rc = rill_pipeline_push(p, pub, &it);
        want[i % 7]++;
    }
    if (!rc)
        rc = rill_pipeline_close(p);
    uint64_t published = 0;
    if (!rc)
        rc = rill_redis_published(pub, &published);
    if (!rc && published != (uint64_t)n)
        rc = RILL_ESTAGE;
    rill_pipeline_free(p);
    return rc;
}

RILL_TEST(redis_api, source_and_sink_commit_every_entry_once) {
    redis_server rs;
    if (redis_server_start(&rs, false))
        return;
    rill_redis_conf conf = {.host = "127.0.0.1", .port = rs.port};
    char err[256];
    enum { N = 2345 };
    rill_pipeline *q = NULL; /* a publish sink refuses an empty stream, saying so */
    rill_stage *pub = NULL;
    CHECK_OK(rill_pipeline_new("pub", &q));
    CHECK_EQ(rill_redis_publish_add(q, "nos", &conf, "", NULL, NULL, &pub, err, sizeof err),
             RILL_EINVAL);
    CHECK(strstr(err, "rill_redis_publish_add 'nos'") && strstr(err, "stream is NULL or empty"));
    rill_pipeline_free(q);
    uint64_t want[7] = {0};
    CHECK_OK(publish_keys(&conf, "s", N, want));

    /* Consume: a source with small batches, a sink counting whole items. */
    rill_pipeline *p = NULL;
    rill_stage *src = NULL, *sink = NULL, *other = NULL;
    CHECK_OK(rill_pipeline_new("work", &p));
    rill_redis_source_opts o = {.stream = "s", .consumer = "c", .count = 100,
                                .idle_exit_ms = 100};
    rill_redis_source_opts nocons = {.stream = "s"};
    CHECK_EQ(rill_redis_source_add(p, "x", &conf, &nocons, NULL, NULL, err, sizeof err),
             RILL_EINVAL);
    CHECK(strstr(err, "rill_redis_source_add 'x'") && strstr(err, "opts->consumer"));
    CHECK_OK(rill_redis_source_add(p, "source", &conf, &o, NULL, &src, err, sizeof err));
    CHECK_OK(rill_broadcast_add(p, "other", NULL, &other));
    CHECK_EQ(rill_redis_sink_add(p, "bad", other, NULL, NULL, NULL, NULL), RILL_EINVAL);
    CHECK(strstr(rill_pipeline_error(p, RILL_EINVAL), "rill_redis_sink_add 'bad'"));
    CHECK(strstr(rill_pipeline_errmsg(p), "source 'other' is not a Redis source"));
    CHECK_OK(rill_redis_sink_add(p, "sink", src, NULL, NULL, NULL, &sink));
    CHECK_EQ(rill_redis_sink_add(p, "sink2", src, NULL, NULL, NULL, NULL), RILL_EEXIST);
    CHECK(strstr(rill_pipeline_error(p, RILL_EEXIST), "rill_redis_sink_add 'sink2'"));
    CHECK(strstr(rill_pipeline_errmsg(p), "source 'source' has a sink already"));
    CHECK_OK(rill_connect(src, sink));
    CHECK_OK(rill_connect(src, other));
    CHECK_OK(rill_pipeline_run(p));
    rill_redis_stats st;
    CHECK_OK(rill_redis_source_stats(src, &st));
    CHECK_EQ(st.read, N);
    CHECK_EQ(st.commits, (N + 99) / 100);
    CHECK_EQ(st.refused + st.dead + st.claimed + st.own_pending, 0);
    CHECK_EQ(rill_redis_source_stats(other, &st), RILL_EINVAL);
    rill_pipeline_free(p);

    uint64_t total = 0;
    CHECK_OK(rill_redis_counts_read(&conf, "s", sum_counts, &total, err, sizeof err));
    CHECK_EQ(total, N);
    redisContext *c = redis_connect(&rs);
    CHECK(c != NULL);
    for (int k = 0; k < 7; k++) {
        redisReply *r = redisCommand(c, "HGET s:counts k%d", k);
        CHECK(r && r->type == REDIS_REPLY_STRING);
        CHECK_EQ(strtoull(r->str, NULL, 10), want[k]);
        freeReplyObject(r);
    }
    redisFree(c);
    redis_server_stop(&rs);
}

/* A commit that comes later than claim_idle_ms after its read (a slow,
 * threaded sink behind a deep queue) leaves this consumer's own entries idle
 * long enough for its XAUTOCLAIM to return them. They are in flight, not
 * abandoned: with max_deliveries 1 a second emission would dead-letter
 * good entries (above it, read them twice and have the second commit
 * refused; the totals stay exact). */
RILL_TEST(redis_api, slow_commit_never_claims_its_own_entries_in_flight) {
    redis_server rs;
    if (redis_server_start(&rs, false))
        return;
    rill_redis_conf conf = {.host = "127.0.0.1", .port = rs.port};
    char err[256];
    enum { N = 600 };
    uint64_t want[7] = {0};
    CHECK_OK(publish_keys(&conf, "slow", N, want));
    rill_pipeline *p = NULL;
    rill_stage *src = NULL, *sink = NULL;
    /* A short block keeps the source coming back to claim while the sink
     * works through its queue: with the default 200 ms, a fast machine read
     * every entry at once and then waited in XREADGROUP until the sink was
     * done, and nothing was ever idle at a claim. */
    rill_redis_source_opts o = {.stream = "slow", .consumer = "c", .count = 50,
                                .block_ms = 2, .claim_idle_ms = 5, .max_deliveries = 1,
                                .idle_exit_ms = 200};
    rill_stage_opts threaded = {.flags = RILL_STAGE_THREADED, .capacity = 4096};
    CHECK_OK(rill_pipeline_new("work", &p));
    CHECK_OK(rill_redis_source_add(p, "source", &conf, &o, NULL, &src, err, sizeof err));
    CHECK_OK(rill_redis_sink_add(p, "sink", src, NULL, NULL, &threaded, &sink));
    CHECK_OK(rill_stage_set_delay(sink, 100)); /* 5 ms a batch of 50: idle past 5 ms */
    CHECK_OK(rill_connect(src, sink));
    CHECK_OK(rill_pipeline_run(p));
    rill_redis_stats st;
    CHECK_OK(rill_redis_source_stats(src, &st));
    rill_pipeline_free(p);
    uint64_t total = 0;
    CHECK_OK(rill_redis_counts_read(&conf, "slow", sum_counts, &total, err, sizeof err));
    CHECK_EQ(total, N);
    CHECK_EQ(st.dead, 0);
    /* An entry whose commit lands between the claim and the look at the
     * ledger is emitted again; its second commit is refused and changes
     * nothing (the total above), and only a refusal explains a second read. */
    if (st.read != N)
        fprintf(stderr, "read %llu refused %llu claims %llu\n", (unsigned long long)st.read,
                (unsigned long long)st.refused, (unsigned long long)st.in_flight_claims);
    CHECK(st.read == N || st.refused > 0);
    CHECK(st.in_flight_claims > 0); /* the case arose */
    redisContext *c = redis_connect(&rs);
    CHECK(c != NULL);
    redisReply *r = redisCommand(c, "XPENDING slow rill");
    CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1);
    CHECK_EQ(r->element[0]->integer, 0); /* nothing left pending */
    freeReplyObject(r);
    for (int k = 0; k < 7; k++) {
        r = redisCommand(c, "HGET slow:counts k%d", k);
        CHECK(r && r->type == REDIS_REPLY_STRING);
        CHECK_EQ(strtoull(r->str, NULL, 10), want[k]);
        freeReplyObject(r);
    }
    redisFree(c);
    redis_server_stop(&rs);
}
