/* librill_redis internals: one connection (conn.c), the ledger of batches
 * the source and the sink share (ledger.c), the source and sink states. */
#ifndef RILL_REDIS_INT_H
#define RILL_REDIS_INT_H

#include <hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "rill.h"
#include "rill/checkpoint.h"
#include "rill/redis.h"

#define RILL_API __attribute__((visibility("default")))

/* One connection. Commands fail fast (timeout_ms); a failed connection is
 * freed at once (c == NULL) and opened again by the caller's loop. */
typedef struct rill__rconn {
    redisContext *c;
    char host[256];
    uint16_t port;
    char *password;
    unsigned timeout_ms, reconnect_ms;
} rill__rconn;

/* What makes conf unusable, naming the field ("conf->port is 0"), or NULL:
 * the _add calls put it in their message (rill__rconn_init says EINVAL). */
const char *rill__rconf_bad(const rill_redis_conf *conf);
int rill__rconn_init(rill__rconn *rc, const rill_redis_conf *conf);
/* Close the connection, if open (rc stays usable: rill__rconn_open again). */
void rill__rconn_close(rill__rconn *rc);
/* Close, and wipe and free the password. */
void rill__rconn_fini(rill__rconn *rc);
/* Connect and AUTH. 0, or a negative code with the reason in err. */
int rill__rconn_open(rill__rconn *rc, char *err, size_t errlen);
/* Reconnect with backoff until reconnect_ms has passed or *stop is set,
 * running setup (if not NULL) on each new connection; a setup that loses
 * the connection again (-ECONNRESET) starts another round. 0, or the last
 * failure's code with its reason in err. */
int rill__rconn_reopen(rill__rconn *rc, const atomic_bool *stop,
                       int (*setup)(void *arg, char *err, size_t errlen), void *arg, char *err,
                       size_t errlen);
/* One command. NULL if the connection failed (then closed: rc->c == NULL,
 * the reason in err); an error reply is returned as a reply. */
redisReply *rill__rcmd(rill__rconn *rc, int argc, const char **argv, const size_t *lens,
                       char *err, size_t errlen);
/* The same, with NUL-terminated arguments. */
redisReply *rill__rcmdv(rill__rconn *rc, char *err, size_t errlen, int argc, ...);
/* TYPE key is one of the two names given (e.g. "stream", "none"): 0, or
 * RILL_ESTAGE with "KEY is a T, not a WANT" in err, or a connection error. */
int rill__rcheck_type(rill__rconn *rc, const char *key, const char *want, char *err,
                      size_t errlen);
void rill__sleep_ms(unsigned ms);
uint64_t rill__ms_now(void);

/* ---- the ledger: which entry IDs each barrier stands for ------------------ */
typedef struct rill__batch {
    struct rill__batch *next;
    uint64_t barrier;
    size_t n;
    char **ids; /* n NUL-terminated entry IDs */
} rill__batch;

typedef struct rill__ledger {
    pthread_mutex_t mu;
    rill__batch *head, *tail; /* in barrier order */
    rill__batch *committing;  /* taken, its commit not over (still in flight) */
    size_t open;              /* batches emitted and not yet committed */
    atomic_bool resync;       /* a commit was refused: read own pending again */
    /* counters (rill_redis_stats) */
    atomic_uint_fast64_t read, own_pending, claimed, dead, commits, refused, reconnects;
    atomic_uint_fast64_t in_flight_claims; /* own in-flight entries XAUTOCLAIM gave back */
} rill__ledger;

int rill__ledger_init(rill__ledger *l);
void rill__ledger_fini(rill__ledger *l);
/* Record a batch (takes ids and its strings). 0 or RILL_ENOMEM. */
int rill__ledger_put(rill__ledger *l, uint64_t barrier, char **ids, size_t n);
/* Take the batch of barrier (the caller frees it with rill__batch_free), or
 * NULL if there is none. A taken batch stays open until rill__ledger_done:
 * while its commit runs its entries are still pending, and the source must
 * not read them again from its pending list meanwhile. */
rill__batch *rill__ledger_take(rill__ledger *l, uint64_t barrier);
/* The commit of taken batch b is over (applied, refused or failed); the
 * caller frees b after this call, not before. */
void rill__ledger_done(rill__ledger *l, rill__batch *b);
/* Is entry id in a batch emitted and not yet committed? XAUTOCLAIM also
 * claims this consumer's own entries once they are idle long enough, which
 * a slow commit makes them: those are in flight, not abandoned. */
bool rill__ledger_holds(rill__ledger *l, const char *id);
/* Batches emitted whose commit is not over. */
size_t rill__ledger_open(rill__ledger *l);
void rill__batch_free(rill__batch *b);

/* ---- the source's state, which the sink reads --------------------------- */
typedef struct rill__rsource {
    rill__rconn conn;
    rill__ledger ledger;
    char *stream, *group, *consumer, *field, *dead_key, *counts_key;
    unsigned count, block_ms, claim_idle_ms, max_deliveries, idle_exit_ms;
    atomic_bool stop;
    bool pending_phase;      /* reading this consumer's own pending entries */
    char pending_after[48];  /* ...after this ID */
    char claim_cursor[48];   /* XAUTOCLAIM's cursor */
    uint64_t next_barrier;
    uint64_t last_entry_ms;  /* when an entry last arrived (idle exit) */
    uint64_t last_claim_ms;
    void *sink;              /* the sink's state (one sink per source) */
} rill__rsource;

extern const rill_stage_ops rill__rsource_ops;
void rill__rsource_free(void *state);
/* XGROUP CREATE ... 0 MKSTREAM; an existing group is fine. */
int rill__ensure_group(rill__rsource *s, char *err, size_t errlen);

/* The commit script (sink.c), loaded per connection. */
extern const char rill__commit_lua[];
extern const char rill__dead_lua[];

#endif
