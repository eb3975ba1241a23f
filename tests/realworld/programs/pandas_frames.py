"""numpy + pandas: the snapshot's getsizeof figures equal sys.getsizeof
where known (a DataFrame's Python-level __sizeof__ is never called), a
DataFrame retains its column buffers (native nodes) and its object column's
strings, a view keeps its base, and nothing live is reported as garbage."""
import numpy as np
import pandas as pd
import rwcheck as R

n = 300_000
df = pd.DataFrame({"a": np.arange(n, dtype=np.int64), "b": np.random.rand(n),
                   "c": pd.Categorical(np.random.choice(["x", "y", "z"], n)),
                   "d": np.array([str(i) for i in range(n)], dtype=object)})
grouped = df.groupby("c", observed=True)["b"].mean()
ts = pd.Series(np.arange(1000), index=pd.date_range("2020", periods=1000, freq="h"))
arr = np.zeros((500, 1000))
view = arr[10:20]
r, s = R.sizes(R.path("sizes.hsnap"))
s = None
R.heapsnap.dump(R.path("pd.hsnap"))  # without the references sizes() held
s = R.hsnap.read(R.path("pd.hsnap"))
buf = df["b"].values  # the float column's buffer (base array owned by the block)
base = buf.base if buf.base is not None else buf
j = R.cli_json("retained", R.path("pd.hsnap"), "--by", "type", "--top", "0")
row = [t for t in j.get("types", []) if t["name"] == "pandas.core.frame.DataFrame"]
ret = row[0]["retained"] - row[0]["bytes"] if row else 0  # beyond its own block
R.check(ret >= 3 * n * 8 + n * 48, "the DataFrame retains its column buffers and strings: retained %d" % ret)
R.check(any(e.target == id(arr) for e in s.nodes[id(view)].edges), "the view references its base")
j = R.cli_json("garbage", R.path("pd.hsnap"))
R.check(j.get("total", {}).get("count", -1) < 50, "little garbage: %r" % j.get("total"))
R.done()
