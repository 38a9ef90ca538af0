/* ip_stats' stop signals: SIGINT and SIGTERM stop a long run (a TCP server
 * with --listen, Redis workers with --worker). One pair of helpers so that
 * every mode installs and retires its handler the same way. */
#ifndef IPSTATS_SIGNALS_H
#define IPSTATS_SIGNALS_H

#include <signal.h>
#include <stdio.h>
#include <string.h>

/* handler runs for SIGINT and SIGTERM from now on, in any thread that does
 * not block them; it must be async-signal-safe. 0, or -1 after printing why
 * on stderr. */
static inline int ipstats_catch_stop_signals(void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL)) {
        perror("ip_stats: sigaction");
        return -1;
    }
    return 0;
}

/* The run is over: block the stop signals in the calling thread, so the
 * handler never runs once what it touches is freed (every other thread has
 * ended by then); a late signal stays pending and is dropped at exit. */
static inline void ipstats_stop_signals_over(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

#endif
