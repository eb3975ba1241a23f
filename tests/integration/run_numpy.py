"""Integration test: buffers owned by numpy arrays are counted once.

A 10 MiB float64 array and a strided view of it: the buffer is one node of
its own (`<native> numpy data`, format 1.1) that the array owns through a
`data` edge, exactly the array's nbytes; the array's and the view's nodes
are their small object blocks; what sys.getsizeof reports of each (the
array's includes the buffer) is kept in REPORTED; the view references its
base. Skipped (exit 77, the
reason printed) where this interpreter cannot import numpy.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hstest as T  # noqa: E402
import hsnap  # noqa: E402

MB10 = 10 * 1024 * 1024


def main():
    args = T.parser(__doc__).parse_args()
    work = T.setup(args, "numpy")
    p = T.run([sys.executable, "-c", "import numpy"])
    if p.returncode != 0:
        T.skip("numpy is not importable in %s (%s); Debian's /usr/bin/python3 has it (python3-numpy)"
               % (sys.executable, (p.stderr.strip().splitlines() or ["?"])[-1]))
    T.require_hook(args.build)
    p = T.run_fixture(args.build, [T.fixture("numpy_views.py"), work], timeout=120)
    if p.returncode == T.SKIP:
        T.skip(p.stdout.strip())
    if not T.check(p.returncode == 0, "numpy_views.py dumps", p.stdout[-1000:] + p.stderr[-3000:]):
        T.finish()
    res = json.load(open(os.path.join(work, "result.json")))
    print("numpy %s: array getsizeof %d, view getsizeof %d" % (res["numpy"], res["array"]["getsizeof"],
                                                               res["view"]["getsizeof"]))
    s = hsnap.read(res["snapshot"])
    arr = s.nodes.get(res["array"]["id"])
    view = s.nodes.get(res["view"]["id"])
    if T.check(arr is not None and view is not None, "the array and the view are nodes"):
        T.equal(s.type_name(arr), "numpy.ndarray", "array type name")
        T.check(arr.size < 4096, "the array's node is its object block", "size %d" % arr.size)
        T.equal(s.getsizeof(arr), res["array"]["getsizeof"], "the array: REPORTED is sys.getsizeof")
        data = [s.nodes.get(e.target) for e in arr.edges if s.label_text(e) == "data"]
        if T.check(len(data) == 1 and data[0] is not None, "the array has one `data` edge to a node"):
            T.equal((s.type_name(data[0]), data[0].size, bool(s.is_native(data[0]))),
                    ("<native> numpy data", MB10, True), "its buffer: a native node of nbytes bytes")
        T.check(view.size < 4096, "the view's size does not include the buffer it borrows", "size %d" % view.size)
        T.equal(s.getsizeof(view), res["view"]["getsizeof"], "the view: REPORTED is sys.getsizeof")
        # ndarray has no tp_traverse: the hook adds the view -> base edge itself,
        # so that a base kept alive by a view is retained by it, not "held from C"
        T.check(any(e.target == res["view"]["base"] and e.kind == 0 for e in view.edges),
                "the view has a strong edge to its base array",
                "view edges: %r" % [(s.type_name(s.nodes[e.target]) if e.target in s.nodes else "?", s.label_text(e))
                                    for e in view.edges])
        big = [n for n in s.nodes.values() if n.size >= MB10]
        T.equal(len(big), 1, "the 10 MiB buffer is counted once in the snapshot")
    summ = T.cli_json(args.cli, ["summary", "--top", "0", res["snapshot"]])
    if summ is not None:
        T.validate(summ, "summary.schema.json", "summary --json")
        row = T.rows_by_name(summ).get("numpy.ndarray") or {}
        nrow = T.rows_by_name(summ).get("<native> numpy data") or {}
        T.check((row.get("bytes") or 0) < 1024 * 1024 and MB10 <= (nrow.get("bytes") or 0) < MB10 + 1024 * 1024,
                "summary: the buffer is counted once, as <native> numpy data", "rows %r %r" % (row, nrow))
    T.finish()


if __name__ == "__main__":
    main()
