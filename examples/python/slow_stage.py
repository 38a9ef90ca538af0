# Python equivalent of examples/slow_stage.c: a slow counting stage in a
# thread behind a bounded queue, and how long each side waited.
import sys, threading, queue, time
from collections import Counter

def slow_count(q, counts, delay, busy):
    while (line := q.get()) is not None:
        start = time.perf_counter()
        counts[line.split(" ", 1)[0]] += 1
        while time.perf_counter() - start < delay:
            pass
        busy[0] += time.perf_counter() - start

path = sys.argv[1] if len(sys.argv) > 1 else "data/apache_logs"
delay = (int(sys.argv[2]) if len(sys.argv) > 2 else 20) / 1e6
q, counts, busy, blocked = queue.Queue(1024), Counter(), [0.0], 0.0
t = threading.Thread(target=slow_count, args=(q, counts, delay, busy))
t.start()
begin = time.perf_counter()
with open(path, errors="surrogateescape") as f:
    for line in f:
        start = time.perf_counter()
        q.put(line.rstrip("\n"))
        blocked += time.perf_counter() - start
q.put(None)
t.join()
elapsed = time.perf_counter() - begin
print(f"producer blocked {blocked * 1e3:.1f} ms, consumer busy {100 * busy[0] / elapsed:.0f}%", file=sys.stderr)
for ip, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]:
    print(n, ip)
