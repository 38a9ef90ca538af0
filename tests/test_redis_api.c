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

static int sum_counts(void *arg, const char *key, size_t len, uint64_t count) {
    (void)key, (void)len;
    *(uint64_t *)arg += count;
    return 0;
}

RILL_TEST(redis_api, source_and_sink_commit_every_entry_once) {
    redis_server rs;
    if (redis_server_start(&rs, false))
        return;
    rill_redis_conf conf = {.host = "127.0.0.1", .port = rs.port};
    char err[256];
    /* Publish n keys "k<i mod 7>" through the publish sink. */
    enum { N = 2345 };
    static char keys[7][4];
    rill_pipeline *p = NULL;
    rill_stage *pub = NULL;
    CHECK_OK(rill_pipeline_new("pub", &p));
    CHECK_EQ(rill_redis_publish_add(p, "nos", &conf, "", NULL, NULL, &pub, err, sizeof err),
             RILL_EINVAL);
    CHECK(strstr(err, "rill_redis_publish_add 'nos'") && strstr(err, "stream is NULL or empty"));
    CHECK_OK(rill_redis_publish_add(p, "pub", &conf, "s", NULL, NULL, &pub, err, sizeof err));
    uint64_t want[7] = {0};
    for (int i = 0; i < N; i++) {
        snprintf(keys[i % 7], sizeof keys[i % 7], "k%d", i % 7);
        rill_item it = rill_item_cstr(keys[i % 7]);
        CHECK_OK(rill_pipeline_push(p, pub, &it));
        want[i % 7]++;
    }
    CHECK_OK(rill_pipeline_close(p));
    uint64_t published = 0;
    CHECK_OK(rill_redis_published(pub, &published));
    CHECK_EQ(published, N);
    rill_pipeline_free(p);

    /* Consume: a source with small batches, a sink counting whole items. */
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
