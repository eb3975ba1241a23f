# heapsnap lines fixture: known lines. Do not move lines without updating
# tests/lines/run_lines.py (it names lines by their marker comments).
import time


def build():
    return [bytearray(1000) for _ in range(10000)]  # LINE_TABLE


def peak():
    tmp = bytearray(64 * 1024 * 1024)  # LINE_PEAK
    del tmp


def churn():
    for _ in range(4000):
        x = bytearray(10000)  # LINE_CHURN
        del x


keep = build()
peak()
churn()
time.sleep(1.3)
