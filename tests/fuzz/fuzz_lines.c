/* libFuzzer target for the line source.
 *
 * Input: byte 0 picks the flags (bit 0 TRUNCATE, bit 1 STRIP_CR) and the
 * chunk size (bits 2-7: 1..64 bytes), byte 1 the line limit (1..128), the
 * rest is the file. The file is read from a memfd (made once, refilled per
 * run) by a line source feeding a collect stage; the collected lines, the
 * error and the counters must match an independent byte-by-byte split.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "line_split.h"
#include "rill.h"

#define EXPECT(c)                                                              \
    do {                                                                       \
        if (!(c))                                                              \
            abort();                                                           \
    } while (0)

static int memfd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2)
        return 0;
    rill_lines_opts lo = {.flags = data[0] & 3u,
                          .chunk = 1 + (data[0] >> 2),
                          .max_line = 1 + data[1] % 128};
    const uint8_t *d = data + 2;
    size_t n = size - 2;
    if (memfd < 0)
        memfd = memfd_create("fuzz_lines", MFD_CLOEXEC);
    EXPECT(memfd >= 0);
    EXPECT(ftruncate(memfd, 0) == 0);
    EXPECT(n == 0 || pwrite(memfd, d, n, 0) == (ssize_t)n);
    EXPECT(lseek(memfd, 0, SEEK_SET) == 0);

    rill_pipeline *p;
    rill_stage *src, *col;
    EXPECT(rill_pipeline_new("fuzz", &p) == 0);
    EXPECT(rill_lines_fd_add(p, "src", memfd, &lo, NULL, &src) == 0);
    EXPECT(rill_collect_add(p, "col", NULL, &col) == 0);
    EXPECT(rill_connect(src, col) == 0);
    int rc = rill_pipeline_run(p);

    span *exp = malloc((n + 1) * sizeof *exp);
    EXPECT(exp);
    uint64_t ntrunc;
    bool toolong;
    size_t k = ref_split(d, n, lo.flags, lo.max_line, exp, &ntrunc, &toolong);
    const rill_item *it;
    size_t got;
    struct rill_lines_stats st;
    EXPECT(rill_collect_items(col, &it, &got) == 0);
    EXPECT(rill_lines_stats(src, &st) == 0);
    EXPECT(rc == (toolong ? RILL_ETOOLONG : 0));
    EXPECT(got == k && st.lines == k && st.truncated == ntrunc);
    EXPECT(toolong ? st.bytes <= n : st.bytes == n);
    for (size_t i = 0; i < k; i++) {
        EXPECT(it[i].owner != NULL);
        EXPECT(rill_item_eq(&it[i], d + exp[i].off, exp[i].len));
    }
    free(exp);
    rill_pipeline_free(p);
    return 0;
}
