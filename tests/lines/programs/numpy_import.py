# `import numpy` under record --lines --native: what the import leaves live
# against what it adds to RSS (written to $HS_TEST_OUT: RSS before, after)
import os
import time


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


time.sleep(0.3)
r0 = rss()
import numpy  # noqa: E402,F401  LINE_IMPORT
r1 = rss()
with open(os.environ["HS_TEST_OUT"], "w") as f:
    f.write("%d %d\n" % (r0, r1))
time.sleep(1.2)
