# Python equivalent of examples/gen_status.c: a stage fed with send that
# hands its report to a sub-generator with yield from.
import sys
from collections import Counter

def report(counts):
    for code in sorted(counts):
        yield f"{code} {counts[code]}"

def counter(out):
    counts, bad = Counter(), 0
    while (line := (yield)) is not None:
        f = line.split(" ")
        if len(f) > 8 and f[8].isdigit() and int(f[8]) < 1000:
            counts[int(f[8])] += 1
        else:
            bad += 1
    yield from report(counts)
    out.append(bad)

bad = []
stage = counter(bad)
next(stage)
with open(sys.argv[1] if len(sys.argv) > 1 else "data/apache_logs", errors="surrogateescape") as f:
    for line in f:
        stage.send(line.rstrip("\n"))
for text in [stage.send(None)] + list(stage):
    print(text)
print("unparsed", bad[0])
