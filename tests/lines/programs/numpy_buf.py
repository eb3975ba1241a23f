# a numpy buffer allocated by numpy's C code (malloc): seen under --native
import time
import numpy as np


def load_matrix():
    return np.ones((4096, 1024))  # LINE_NUMPY  (32 MiB)


m = load_matrix()
time.sleep(1.2)
