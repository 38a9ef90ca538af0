# Python equivalent of examples/key_avg.c: two worker threads behind a
# selector that hashes the status, each summing the statuses it is given.
import sys, threading, queue
from collections import defaultdict
from coroutine import coroutine

def worker(q, n, total):
    while (line := q.get()) is not None:
        f = line.split(" ")
        if len(f) > 9 and f[9].strip() != "-":
            n[int(f[8])] += 1
            total[int(f[8])] += int(f[9])

@coroutine
def selector(queues):
    while True:
        line = yield
        f = line.split(" ")
        queues[hash(f[8] if len(f) > 8 else line) % len(queues)].put(line)

path = sys.argv[1] if len(sys.argv) > 1 else "data/apache_logs"
queues = [queue.Queue(4096) for _ in range(2)]
n, total = defaultdict(int), defaultdict(int)
threads = [threading.Thread(target=worker, args=(q, n, total)) for q in queues]
for t in threads:
    t.start()
flow = selector(queues)
with open(path, errors="surrogateescape") as f:
    for line in f:
        flow.send(line.rstrip("\n"))
for q in queues:
    q.put(None)
for t in threads:
    t.join()
for code in sorted(n):
    print(f"{code} n={n[code]} mean={total[code] / n[code]:.2f}")
