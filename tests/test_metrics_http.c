/* examples/metrics_http.h's request handling, without a socket: where a
 * request ends, and the status each request head gets. */
#include <string.h>

#include "../examples/metrics_http.h"
#include "rill_test.h"

static int status_of(const char *req, bool *head) {
    size_t end = metrics_http_request_end(req, strlen(req));
    if (!end)
        return -1;
    *head = false;
    return metrics_http_status(req, end, head);
}

RILL_TEST(metrics_http, request_end) {
    CHECK_EQ(metrics_http_request_end("GET / HTTP/1.1\r\nHost: x\r\n", 25), 0);
    CHECK_EQ(metrics_http_request_end("GET / HTTP/1.1\r\n\r\nrest", 22), 18);
    CHECK_EQ(metrics_http_request_end("GET / HTTP/1.0\n\nrest", 20), 16);
    CHECK_EQ(metrics_http_request_end("", 0), 0);
}

RILL_TEST(metrics_http, statuses) {
    static const struct {
        const char *req;
        int status;
        bool head;
    } cases[] = {
        {"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 200, false},
        {"GET /metrics?x=1&y HTTP/1.1\r\nhOsT: a\r\nAccept: */*\r\n\r\n", 200, false},
        {"HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 200, true},
        {"GET /metrics HTTP/1.0\r\n\r\n", 200, false},
        {"GET /metrics HTTP/1.0\n\n", 200, false},
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 404, false},
        {"GET /metricsx HTTP/1.1\r\nHost: a\r\n\r\n", 404, false},
        {"GET /metrics/ HTTP/1.1\r\nHost: a\r\n\r\n", 404, false},
        {"POST /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 405, false},
        {"GET /metrics HTTP/1.1\r\n\r\n", 400, false},              /* no Host */
        {"GET /metrics\r\n\r\n", 400, false},                       /* no version */
        {"GET  /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 400, false},  /* two spaces */
        {"GET /metrics HTTP/2.0\r\nHost: a\r\n\r\n", 400, false},
        {"GET metrics HTTP/1.1\r\nHost: a\r\n\r\n", 400, false},    /* not origin-form */
        {"G@T /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 400, false},
        {"GET /metrics HTTP/1.1\r\nHost a\r\n\r\n", 400, false},    /* no colon */
        {"GET /metrics HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400, false},
        {"GET /metrics HTTP/1.1\r\n: a\r\n\r\n", 400, false},
        {"GET /met\x01rics HTTP/1.1\r\nHost: a\r\n\r\n", 400, false},
        {"\r\n\r\n", 400, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool head = false;
        int st = status_of(cases[i].req, &head);
        if (st != cases[i].status || head != cases[i].head)
            rill_test__failf(__FILE__, __LINE__, "case %zu: status %d head %d, want %d %d", i,
                             st, head, cases[i].status, cases[i].head);
    }
}
