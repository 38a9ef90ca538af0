// rill.h used from C++ directly: the extern "C" guards must give C linkage
// (a missing guard is a link error here), and the header macros must be
// valid C++.
#include "rill.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace {

TEST(CxxHeader, VersionMatchesHeader) {
    EXPECT_EQ(rill_version(), static_cast<unsigned>(RILL_VERSION_HEX));
    EXPECT_STREQ(rill_version_string(), RILL_VERSION_STRING);
}

TEST(CxxHeader, ErrorsHaveNamesAndText) {
    EXPECT_STREQ(rill_errname(RILL_ECYCLE), "RILL_ECYCLE");
    EXPECT_STREQ(rill_errname(-ENOENT), "ENOENT");
    EXPECT_STREQ(rill_strerror(0), "success");
    EXPECT_STRNE(rill_strerror(RILL_EDONE), "unknown error");
    EXPECT_STREQ(rill_strerror(RILL_EMAX_), "unknown error");
}

// A generator written in C++ with the C macros: 1, 2, 3, then return &total.
struct Counter {
    rill_gen gen;
    int i;
    int total;
};

int counter_body(rill_gen *g) {
    Counter *c = RILL_CONTAINER_OF(g, Counter, gen);
    RILL_GEN_BEGIN(g);
    for (c->i = 1; c->i <= 3; c->i++) {
        RILL_YIELD(g, &c->i);
        if (RILL_SENT(g))
            c->total += *static_cast<int *>(RILL_SENT(g));
    }
    RILL_RETURN(g, &c->total);
    RILL_GEN_END(g);
}

TEST(CxxHeader, GeneratorNextSendDone) {
    Counter c{};
    rill_gen_init(&c.gen, counter_body, nullptr);
    EXPECT_EQ(rill_gen_status_of(&c.gen), RILL_GEN_CREATED);
    void *v = nullptr;
    std::vector<int> seen;
    int ten = 10;
    ASSERT_EQ(rill_gen_next(&c.gen, &v), 0);
    seen.push_back(*static_cast<int *>(v));
    while (rill_gen_send(&c.gen, &ten, &v) == 0)
        seen.push_back(*static_cast<int *>(v));
    EXPECT_EQ(seen, (std::vector<int>{1, 2, 3}));
    EXPECT_EQ(rill_gen_status_of(&c.gen), RILL_GEN_DONE);
    ASSERT_EQ(v, &c.total);  // the body's return value comes with RILL_EDONE
    EXPECT_EQ(c.total, 30);
    EXPECT_EQ(rill_gen_next(&c.gen, &v), RILL_EDONE);
    EXPECT_EQ(v, nullptr);
}

// A stage written in C++: appends every item to a std::string, comma-separated.
int join_send(rill_stage *, void *state, const rill_item *item) {
    std::string *s = static_cast<std::string *>(state);
    if (!s->empty())
        s->push_back(',');
    s->append(static_cast<const char *>(item->data), item->len);
    return 0;
}

TEST(CxxHeader, PipelinePushIntoCxxStageAndCount) {
    rill_pipeline *p = nullptr;
    ASSERT_EQ(rill_pipeline_new("cxx", &p), 0);
    std::string joined;
    rill_stage_ops join_ops{};
    join_ops.send = join_send;
    rill_stage *bcast = nullptr, *join = nullptr, *count = nullptr;
    ASSERT_EQ(rill_broadcast_add(p, "bcast", nullptr, &bcast), 0);
    ASSERT_EQ(rill_stage_add(p, "join", &join_ops, &joined, nullptr, &join), 0);
    ASSERT_EQ(rill_count_add(p, "count", nullptr, nullptr, nullptr, &count), 0);
    ASSERT_EQ(rill_connect(bcast, join), 0);
    ASSERT_EQ(rill_connect(bcast, count), 0);
    EXPECT_EQ(rill_connect(count, bcast), RILL_ECYCLE);

    for (const char *w : {"a", "bb", "a", "ccc", "a"}) {
        rill_item it = rill_item_cstr(w);
        ASSERT_EQ(rill_pipeline_push(p, bcast, &it), 0) << rill_pipeline_errmsg(p);
    }
    ASSERT_EQ(rill_pipeline_close(p), 0);
    EXPECT_EQ(joined, "a,bb,a,ccc,a");
    uint64_t n = 0;
    ASSERT_EQ(rill_count_get(count, "a", 1, &n), 0);
    EXPECT_EQ(n, 3u);
    size_t keys = 0;
    uint64_t total = 0;
    ASSERT_EQ(rill_count_size(count, &keys, &total), 0);
    EXPECT_EQ(keys, 3u);
    EXPECT_EQ(total, 5u);
    rill_item late = rill_item_cstr("late");
    EXPECT_EQ(rill_pipeline_push(p, bcast, &late), RILL_ECLOSED);
    rill_pipeline_free(p);
}

TEST(CxxHeader, ItemCopyOwnsItsBytes) {
    char buf[] = "payload";
    rill_item it;
    ASSERT_EQ(rill_item_copy(buf, std::strlen(buf), &it), 0);
    buf[0] = 'X';
    EXPECT_TRUE(rill_item_eq(&it, "payload", 7));
    ASSERT_NE(it.owner, nullptr);
    EXPECT_EQ(rill_ref_count(it.owner), 1u);
    rill_item_release(&it);
}

// A scheduler task written in C++: the system-call builders and the one
// yield macro compile as C++ and the call is answered.
struct Sleeper {
    rill_gen gen;
    rill_syscall call;
    uint64_t tid;
    int slept;
};

int sleeper_body(rill_gen *g) {
    Sleeper *z = RILL_CONTAINER_OF(g, Sleeper, gen);
    RILL_GEN_BEGIN(g);
    RILL_SYSCALL(g, rill_sys_gettid(&z->call));
    z->tid = z->call.id;
    RILL_SYSCALL(g, rill_sys_sleep(&z->call, 1000));
    z->slept = z->call.result == 0;
    RILL_YIELD(g, nullptr);
    RILL_GEN_END(g);
}

TEST(CxxHeader, SchedulerTaskMakesSystemCalls) {
    rill_sched *s = nullptr;
    ASSERT_EQ(rill_sched_new(&s), 0);
    Sleeper z{};
    uint64_t id = 0;
    rill_gen_init(&z.gen, sleeper_body, nullptr);
    ASSERT_EQ(rill_sched_spawn(s, &z.gen, nullptr, &id), 0);
    EXPECT_EQ(rill_sched_run(s), 0);
    EXPECT_EQ(z.tid, id);
    EXPECT_EQ(z.slept, 1);
    rill_sched_free(s);
}

}  // namespace
