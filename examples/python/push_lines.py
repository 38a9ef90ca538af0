# Python equivalent of examples/push_lines.c: main pushes lines into a
# threaded entry (the seed's flow.send(line), with a thread behind it).
import sys, threading, queue
from collections import Counter

def words(q, counts):
    while (line := q.get()) is not None:
        counts.update(line.split())

q, counts = queue.Queue(4096), Counter()
t = threading.Thread(target=words, args=(q, counts))
t.start()
with open(sys.argv[1], errors="surrogateescape") if len(sys.argv) > 1 else sys.stdin as f:
    for line in f:
        q.put(line)
q.put(None)
t.join()
for word, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]:
    print(n, word)
