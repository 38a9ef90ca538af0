/* Internal: a fast non-cryptographic 64-bit hash for keys (selector, count).
 *
 * Word-at-a-time multiply/xor-shift mixing with a final avalanche, so the low
 * bits (used to index power-of-two tables and for modulo) depend on every
 * input byte. Short keys such as IPv4 addresses (7..15 bytes) take two word
 * steps. Loads are memcpy, so any alignment is fine; the value depends on the
 * host's byte order, which is fine for in-process routing and tables. */
#ifndef RILL_STAGES_HASH_H
#define RILL_STAGES_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RILL__HK1 0x9e3779b97f4a7c15ull /* 2^64 / golden ratio, odd */
#define RILL__HK2 0xc2b2ae3d27d4eb4full
#define RILL__HK3 0xff51afd7ed558ccdull

static inline uint64_t rill__load64(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static inline uint64_t rill__load32(const unsigned char *p) {
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

/* One absorption step: xor the word in, spread it with an odd multiply, fold
 * the high half (where the multiply carries entropy) back to the low bits. */
static inline uint64_t rill__hstep(uint64_t h, uint64_t w) {
    h ^= w * RILL__HK2;
    h *= RILL__HK1;
    return h ^ (h >> 29);
}

static inline uint64_t rill__hash_bytes(const void *data, size_t len) {
    const unsigned char *p = data;
    /* The length is mixed in first, so the overlapping tail loads below
     * cannot make two keys of different length collide systematically. */
    uint64_t h = rill__hstep(0x243f6a8885a308d3ull, (uint64_t)len);
    size_t n = len;
    while (n > 8) {
        h = rill__hstep(h, rill__load64(p));
        p += 8;
        n -= 8;
    }
    uint64_t w;
    if (n >= 4) /* 4..8 bytes: two 32-bit loads, overlapping when n < 8 */
        w = rill__load32(p) | rill__load32(p + n - 4) << 32;
    else if (n > 0) /* 1..3 bytes: first, middle, last */
        w = (uint64_t)p[0] << 16 | (uint64_t)p[n / 2] << 8 | p[n - 1];
    else
        w = 0;
    h = rill__hstep(h, w);
    /* Final avalanche (the murmur3 64-bit finalizer constants). */
    h ^= h >> 33;
    h *= RILL__HK3;
    h ^= h >> 33;
    h *= RILL__HK2;
    h ^= h >> 33;
    return h;
}

#endif
