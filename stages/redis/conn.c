/* One Redis connection: blocking hiredis calls bounded by a timeout, AUTH,
 * reconnection with backoff, and the ledger the source and sink share.
 *
 * Blocking calls, not hiredis' async API on rill's scheduler: the source is
 * the only input of its pipeline and waits in XREADGROUP BLOCK for at most
 * block_ms, so a thread that blocks there has nothing else to do; the
 * timeout bounds every other wait. docs/redis.md has the longer answer. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redis_int.h"

void rill__sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

uint64_t rill__ms_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

RILL_API int rill_redis_parse_addr(const char *addr, rill_redis_conf *conf, char *host,
                                   size_t hostlen) {
    if (!addr || !conf || !host || !hostlen)
        return RILL_EINVAL;
    const char *colon = strrchr(addr, ':');
    const char *h = addr, *hend = colon;
    if (!colon)
        return RILL_EINVAL;
    if (addr[0] == '[') { /* [v6]:port */
        h = addr + 1;
        hend = colon > addr && colon[-1] == ']' ? colon - 1 : NULL;
        if (!hend)
            return RILL_EINVAL;
    }
    size_t hl = (size_t)(hend - h);
    if (hl == 0 || hl >= hostlen || memchr(h, ' ', hl))
        return RILL_EINVAL;
    const char *p = colon + 1;
    unsigned long port = 0;
    if (!*p)
        return RILL_EINVAL;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || (port = port * 10 + (unsigned long)(*p - '0')) > 65535)
            return RILL_EINVAL;
    }
    if (port == 0)
        return RILL_EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    conf->host = host;
    conf->port = (uint16_t)port;
    return 0;
}

const char *rill__rconf_bad(const rill_redis_conf *conf) {
    if (!conf)
        return "conf is NULL";
    if (!conf->host)
        return "conf->host is NULL";
    if (strlen(conf->host) >= sizeof ((rill__rconn *)0)->host)
        return "conf->host is longer than 255 bytes";
    if (!conf->port)
        return "conf->port is 0";
    return NULL;
}

int rill__rconn_init(rill__rconn *rc, const rill_redis_conf *conf) {
    memset(rc, 0, sizeof *rc);
    if (rill__rconf_bad(conf))
        return RILL_EINVAL;
    strcpy(rc->host, conf->host);
    rc->port = conf->port;
    rc->timeout_ms = conf->timeout_ms ? conf->timeout_ms : 2000;
    rc->reconnect_ms = conf->reconnect_ms ? conf->reconnect_ms : 30000;
    if (conf->password && !(rc->password = strdup(conf->password)))
        return RILL_ENOMEM;
    return 0;
}

void rill__rconn_close(rill__rconn *rc) {
    if (rc->c)
        redisFree(rc->c);
    rc->c = NULL;
}

void rill__rconn_fini(rill__rconn *rc) {
    rill__rconn_close(rc);
    if (rc->password) { /* do not leave it in freed memory */
        memset(rc->password, 0, strlen(rc->password));
        free(rc->password);
        rc->password = NULL;
    }
}

static void rill__rconn_drop(rill__rconn *rc, char *err, size_t errlen) {
    if (!rc->c)
        return;
    if (err)
        snprintf(err, errlen, "connection to %s:%u lost: %s", rc->host, (unsigned)rc->port,
                 rc->c->errstr[0] ? rc->c->errstr : "closed");
    redisFree(rc->c);
    rc->c = NULL;
}

int rill__rconn_open(rill__rconn *rc, char *err, size_t errlen) {
    struct timeval tv = {rc->timeout_ms / 1000, (long)(rc->timeout_ms % 1000) * 1000};
    if (rc->c)
        return 0;
    redisContext *c = redisConnectWithTimeout(rc->host, rc->port, tv);
    if (!c) {
        snprintf(err, errlen, "cannot connect to %s:%u: out of memory", rc->host,
                 (unsigned)rc->port);
        return RILL_ENOMEM;
    }
    if (c->err) {
        int code = c->err == REDIS_ERR_IO && errno ? -errno : -ECONNREFUSED;
        snprintf(err, errlen, "cannot connect to %s:%u: %s", rc->host, (unsigned)rc->port,
                 c->errstr);
        redisFree(c);
        return code;
    }
    redisSetTimeout(c, tv);
    redisEnableKeepAlive(c);
    rc->c = c;
    if (rc->password) {
        redisReply *r = rill__rcmdv(rc, err, errlen, 2, "AUTH", rc->password);
        if (!r)
            return -ECONNRESET;
        int bad = r->type == REDIS_REPLY_ERROR;
        if (bad) /* the server's words, never the password */
            snprintf(err, errlen, "%s:%u refused the password: %s", rc->host, (unsigned)rc->port,
                     r->str);
        freeReplyObject(r);
        if (bad) {
            rill__rconn_drop(rc, NULL, 0);
            return RILL_ESTAGE;
        }
    }
    return 0;
}

int rill__rconn_reopen(rill__rconn *rc, const atomic_bool *stop,
                       int (*setup)(void *arg, char *err, size_t errlen), void *arg, char *err,
                       size_t errlen) {
    uint64_t end = rill__ms_now() + rc->reconnect_ms;
    unsigned wait = 20;
    for (;;) {
        int code = rill__rconn_open(rc, err, errlen);
        if (code == 0 && setup) /* lost again during the setup: one more round */
            code = setup(arg, err, errlen);
        if (code == 0)
            return 0;
        if (code == RILL_ESTAGE || (stop && atomic_load(stop)) || rill__ms_now() >= end)
            return code;
        rill__rconn_close(rc);
        rill__sleep_ms(wait);
        wait = wait * 2 > 1000 ? 1000 : wait * 2;
    }
}

redisReply *rill__rcmd(rill__rconn *rc, int argc, const char **argv, const size_t *lens,
                       char *err, size_t errlen) {
    if (!rc->c) {
        snprintf(err, errlen, "not connected to %s:%u", rc->host, (unsigned)rc->port);
        return NULL;
    }
    /* A restarted server answers LOADING until its dataset is read back:
     * wait for it as for a reconnection. */
    uint64_t end = rill__ms_now() + rc->reconnect_ms;
    for (;;) {
        redisReply *r = redisCommandArgv(rc->c, argc, argv, lens);
        if (!r)
            rill__rconn_drop(rc, err, errlen);
        if (!r || r->type != REDIS_REPLY_ERROR || strncmp(r->str, "LOADING", 7) != 0 ||
            rill__ms_now() >= end)
            return r;
        freeReplyObject(r);
        rill__sleep_ms(20);
    }
}

redisReply *rill__rcmdv(rill__rconn *rc, char *err, size_t errlen, int argc, ...) {
    const char *argv[16];
    size_t lens[16];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc && i < 16; i++) {
        argv[i] = va_arg(ap, const char *);
        lens[i] = strlen(argv[i]);
    }
    va_end(ap);
    return rill__rcmd(rc, argc, argv, lens, err, errlen);
}

int rill__rcheck_type(rill__rconn *rc, const char *key, const char *want, char *err,
                      size_t errlen) {
    redisReply *r = rill__rcmdv(rc, err, errlen, 2, "TYPE", key);
    if (!r)
        return -ECONNRESET;
    int rc_ = 0;
    if (r->type != REDIS_REPLY_STATUS) {
        bool noauth = r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOAUTH", 6) == 0;
        snprintf(err, errlen, "TYPE %s: %s%s", key, r->type == REDIS_REPLY_ERROR ? r->str : "?",
                 noauth ? " (the server wants a password: RILL_REDIS_PASSWORD)" : "");
        rc_ = RILL_ESTAGE;
    } else if (strcmp(r->str, want) != 0 && strcmp(r->str, "none") != 0) {
        snprintf(err, errlen, "key '%s' holds a %s, not a %s", key, r->str, want);
        rc_ = RILL_ESTAGE;
    }
    freeReplyObject(r);
    return rc_;
}

/* ---- ledger --------------------------------------------------------------- */

int rill__ledger_init(rill__ledger *l) {
    memset(l, 0, sizeof *l);
    return -pthread_mutex_init(&l->mu, NULL);
}

void rill__batch_free(rill__batch *b) {
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        free(b->ids[i]);
    free(b->ids);
    free(b);
}

void rill__ledger_fini(rill__ledger *l) {
    for (rill__batch *b = l->head, *next; b; b = next) {
        next = b->next;
        rill__batch_free(b);
    }
    l->head = l->tail = NULL;
    pthread_mutex_destroy(&l->mu);
}

int rill__ledger_put(rill__ledger *l, uint64_t barrier, char **ids, size_t n) {
    rill__batch *b = calloc(1, sizeof *b);
    if (!b)
        return RILL_ENOMEM;
    b->barrier = barrier;
    b->ids = ids;
    b->n = n;
    pthread_mutex_lock(&l->mu);
    if (l->tail)
        l->tail->next = b;
    else
        l->head = b;
    l->tail = b;
    l->open++;
    pthread_mutex_unlock(&l->mu);
    return 0;
}

rill__batch *rill__ledger_take(rill__ledger *l, uint64_t barrier) {
    pthread_mutex_lock(&l->mu);
    rill__batch *prev = NULL, *b = l->head;
    while (b && b->barrier != barrier) {
        prev = b;
        b = b->next;
    }
    if (b) {
        if (prev)
            prev->next = b->next;
        else
            l->head = b->next;
        if (l->tail == b)
            l->tail = prev;
        b->next = NULL;
        l->committing = b;
    }
    pthread_mutex_unlock(&l->mu);
    return b;
}

void rill__ledger_done(rill__ledger *l, rill__batch *b) {
    pthread_mutex_lock(&l->mu);
    l->open--;
    if (l->committing == b)
        l->committing = NULL;
    pthread_mutex_unlock(&l->mu);
}

static bool rill__batch_has(const rill__batch *b, const char *id) {
    for (size_t i = 0; b && i < b->n; i++)
        if (strcmp(b->ids[i], id) == 0)
            return true;
    return false;
}

bool rill__ledger_holds(rill__ledger *l, const char *id) {
    pthread_mutex_lock(&l->mu);
    bool held = rill__batch_has(l->committing, id);
    for (const rill__batch *b = l->head; b && !held; b = b->next)
        held = rill__batch_has(b, id);
    pthread_mutex_unlock(&l->mu);
    return held;
}

size_t rill__ledger_open(rill__ledger *l) {
    pthread_mutex_lock(&l->mu);
    size_t n = l->open;
    pthread_mutex_unlock(&l->mu);
    return n;
}
