# Python equivalent of examples/wordfreq.c, in the seed's coroutine style.
import sys
from collections import Counter
from coroutine import coroutine

@coroutine
def split(target):
    while True:
        for word in (yield).split():
            target.send(word)

@coroutine
def count(counts):
    while True:
        counts[(yield)] += 1

path = sys.argv[1] if len(sys.argv) > 1 else "data/apache_logs"
counts = Counter()
flow = split(count(counts))
with open(path, errors="surrogateescape") as f:
    for line in f:
        flow.send(line)
for word, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]:
    print(n, word)
print("words", sum(counts.values()), "distinct", len(counts))
