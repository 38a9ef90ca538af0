#!/usr/bin/env python3
"""What a Python generator costs: the Python side of bench/coro.c.

Usage: coro_baseline.py [N]   (N resumes per measurement, default 10M)

Prints the same "<impl> <metric> <value>" lines as bench_coro, with the same
generators (a counter, an accumulator fed by send, a chain of 100 relays
doing `yield from`), so bench/coro_compare.sh can divide one by the other:
  next_ns      one next(g) of a counter generator, loop included
  send_ns      one g.send(x) to an accumulator
  level_ns     extra cost per resume for each level of yield from
  create_ns    create + first next() + close() of a fresh generator
  gen_bytes    sys.getsizeof of a suspended generator (3.11+: holds its frame)
  frame_bytes  sys.getsizeof of its gi_frame object (made on demand)
  state_bytes  tracemalloc bytes per suspended generator, 100k of them
Each timing is the best of REPS runs: other processes on a shared machine
only ever add time.
"""
import sys
import time
import tracemalloc

REPS = 5
DEPTH = 100


def report(metric, value, note):
    print(f"{'python':<7} {metric:<12} {value:12.2f}   # {note}", flush=True)


def counter(n):
    i = 0
    while i < n:
        yield i
        i += 1


def acc():
    total = 0
    while True:
        total += yield total


def relay(sub):
    return (yield from sub)


def drain(n, depth):
    g = counter(n)
    for _ in range(depth):
        g = relay(g)
    nxt = next
    s = 0
    t0 = time.perf_counter()
    for _ in range(n):
        s += nxt(g)
    t = time.perf_counter() - t0
    assert s == n * (n - 1) // 2
    return t


def send_run(n):
    g = acc()
    next(g)
    snd = g.send
    odd = 0
    t0 = time.perf_counter()
    for i in range(n):
        odd += snd(i & 7) & 1
    t = time.perf_counter() - t0
    assert snd(0) == (n // 8) * 28 + (n % 8) * (n % 8 - 1) // 2
    return t


def create_run(k):
    nxt = next
    s = 0
    t0 = time.perf_counter()
    for _ in range(k):
        g = counter(2)
        s += nxt(g)
        g.close()
    t = time.perf_counter() - t0
    assert s == 0
    return t


def memory(count=100_000):
    keep = [None] * count  # the list itself is allocated before measuring
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(count):
        g = counter(10)
        next(g)  # suspended at its first yield, like a running rill generator
        keep[i] = g
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / count, keep[0]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    if n < 1000:
        sys.exit("usage: coro_baseline.py [N >= 1000]")
    r = n // REPS
    report("next_ns", min(drain(r, 0) for _ in range(REPS)) * 1e9 / r, "next() of a counter")
    report("send_ns", min(send_run(r) for _ in range(REPS)) * 1e9 / r,
           "g.send() to an accumulator")
    m = max(r // DEPTH, 1000)
    flat = min(drain(m, 0) for _ in range(REPS))
    deep = min(drain(m, DEPTH) for _ in range(REPS))
    report("level_ns", (deep - flat) * 1e9 / m / DEPTH,
           f"per resume per level of yield from (depth {DEPTH})")
    k = max(r // 10, 1000)
    report("create_ns", min(create_run(k) for _ in range(REPS)) * 1e9 / k,
           "create + first next() + close()")
    per_gen, g = memory()
    report("gen_bytes", sys.getsizeof(g), "sys.getsizeof(generator)")
    frame = g.gi_frame
    if frame is not None:
        report("frame_bytes", sys.getsizeof(frame), "sys.getsizeof(generator.gi_frame)")
    report("state_bytes", per_gen, "tracemalloc per suspended generator (100k)")


if __name__ == "__main__":
    main()
