/* libFuzzer target for the hello protocol's request framer
 * (examples/hello_proto.h).
 *
 * Input: byte 0 picks the limit (bit 7 set: none; else 0..127 bytes), bytes
 * 1-2 seed the chunk sizes (1..64 bytes each), the rest is the stream. The
 * stream is fed in those chunks; after every chunk the framer's state must
 * be what an independent naive search for the first "\n\n" says of the
 * prefix fed so far, and feeding the whole stream at once must agree.
 */
#include <stdint.h>
#include <stdlib.h>

#include "hello_proto.h"

#define EXPECT(c)                                                              \
    do {                                                                       \
        if (!(c))                                                              \
            abort();                                                           \
    } while (0)

/* Where the first "\n\n" starts, or n if there is none. */
static size_t ref_first_blank(const uint8_t *d, size_t n) {
    for (size_t i = 0; i + 1 < n; i++)
        if (d[i] == '\n' && d[i + 1] == '\n')
            return i;
    return n;
}

/* The state after the first l bytes, given the first blank line at t. */
static int ref_state(size_t t, size_t n, size_t l, size_t max) {
    if (t < n && t + 2 <= l && t + 2 <= max)
        return HELLO_COMPLETE;
    return l >= max ? HELLO_TOO_LARGE : HELLO_NEED_MORE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3)
        return 0;
    size_t max = data[0] & 0x80 ? SIZE_MAX / 2 : data[0];
    uint32_t rng = (uint32_t)data[1] << 8 | data[2] | 1u;
    const uint8_t *d = data + 3;
    size_t n = size - 3, t = ref_first_blank(d, n);

    hello_framer f, whole;
    hello_framer_init(&f, max);
    size_t fed = 0;
    while (fed < n) {
        rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5; /* xorshift32 */
        size_t k = 1 + rng % 64;
        if (k > n - fed)
            k = n - fed;
        int st = hello_framer_feed(&f, d + fed, k);
        fed += k;
        EXPECT(st == f.state);
        EXPECT(st == ref_state(t, n, fed, max));
        if (st == HELLO_COMPLETE)
            EXPECT(f.req_len == t && f.seen == t + 2);
        else
            EXPECT(f.seen == (fed < max ? fed : max));
    }
    hello_framer_init(&whole, max);
    EXPECT(hello_framer_feed(&whole, d, n) == f.state || n == 0);
    EXPECT(n == 0 || whole.req_len == f.req_len);
    /* Once decided, more bytes change nothing. */
    if (f.state != HELLO_NEED_MORE) {
        hello_framer before = f;
        EXPECT(hello_framer_feed(&f, "\n\n", 2) == before.state);
        EXPECT(f.req_len == before.req_len && f.seen == before.seen);
    }
    return 0;
}
