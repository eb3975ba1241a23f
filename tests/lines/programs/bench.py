# allocation-heavy benchmark for record --lines: parse/aggregate records,
# a JSON round trip and an object-graph build; runs for about SECONDS
# (argv[1], default 3) and prints the rounds done.
import json
import sys
import time


class Node(object):
    __slots__ = ("key", "children", "payload")

    def __init__(self, key):
        self.key = key
        self.children = []
        self.payload = {"k": key, "v": [key] * 4}


def parse_aggregate(n):
    lines = ["%d,%s,%d.5" % (i, "name%d" % (i % 97), i % 1000) for i in range(n)]
    agg = {}
    for line in lines:
        i, name, v = line.split(",")
        agg[name] = agg.get(name, 0.0) + float(v)
    return agg


def json_round_trip(n):
    doc = [{"id": i, "tags": ["a", "b", str(i)], "score": i * 0.5} for i in range(n)]
    return len(json.loads(json.dumps(doc)))


def graph(n):
    root = Node(0)
    nodes = [root]
    for i in range(1, n):
        nd = Node(i)
        nodes[i // 3].children.append(nd)
        nodes.append(nd)
    return len(nodes)


seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
end = time.monotonic() + seconds
rounds = 0
kept = []
while time.monotonic() < end:
    kept.append(parse_aggregate(20000))
    json_round_trip(5000)
    graph(20000)
    rounds += 1
print(rounds, round(rounds / time.process_time(), 2))
