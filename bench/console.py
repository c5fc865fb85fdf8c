"""The line a run prints per stage, time-stamped, so a long run shows where it is."""

import time


def say(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)
