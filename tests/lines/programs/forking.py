# a fork while tracking: the child tracks on its own, as its own process
import os
import sys
import time

parent_table = [bytearray(1000) for _ in range(5000)]  # LINE_PARENT
pid = os.fork()
if pid == 0:
    child_table = [bytearray(4000) for _ in range(2000)]  # LINE_CHILD
    time.sleep(1.3)
    sys.exit(0)
print(pid, flush=True)
_, status = os.waitpid(pid, 0)
time.sleep(0.3)
sys.exit(os.WEXITSTATUS(status))
