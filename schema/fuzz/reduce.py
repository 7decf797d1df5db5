#!/usr/bin/env python3
"""Keeps at most N inputs of a corpus, chosen greedily by edge coverage.

afl-cmin keeps one input per (edge, hit-count bucket), which leaves
thousands; this keeps the inputs that together reach the most edges
(hit counts ignored), smallest first among equals, up to N.

    reduce.py SHOWMAP_DIR CORPUS_DIR OUT_DIR N
SHOWMAP_DIR holds `afl-showmap -i CORPUS_DIR -o SHOWMAP_DIR` traces.
"""
import os, shutil, sys

maps, corpus, out, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
edges = {}
for name in os.listdir(maps):
    with open(os.path.join(maps, name)) as f:
        edges[name] = {line.split(":")[0] for line in f if line.strip()}
size = {n: os.path.getsize(os.path.join(corpus, n)) for n in edges}
left = set().union(*edges.values()) if edges else set()
total = len(left)
chosen = []
while left and len(chosen) < limit:
    best = max(edges, key=lambda n: (len(edges[n] & left), -size[n]))
    gain = edges[best] & left
    if not gain:
        break
    chosen.append(best)
    left -= gain
os.makedirs(out, exist_ok=True)
for i, n in enumerate(chosen):
    shutil.copy(os.path.join(corpus, n), os.path.join(out, "min-%03d" % i))
print("%d inputs reach %d of %d edges" % (len(chosen), total - len(left), total))
