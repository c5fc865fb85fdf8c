"""The memory-size view of one auth mode (the rounds are bench/rounds.py, the load bench/load.py)."""

import sys
from pathlib import Path

from bench.environment import Driver
from bench.project import RenderedProject
from bench.settings import Settings
from bench.stats import percentile
from bench.testbed import Testbed


class ModeBench:
    """Everything measured for one rendered project (one auth mode)."""

    def __init__(self, project: RenderedProject, settings: Settings, work: Path):
        self.project = project
        self.settings = settings
        self.testbed = Testbed(project, settings.seed_documents, work)
        self.driver = Driver(self.testbed)

    def close(self):
        self.testbed.close()

    # --- CPU share per memory size ------------------------------------------------------

    def memory_sizes(self, quota, round_index):
        """Cold start and warm GET latency of the handler with the CPU share of each size.

        Each size gets a fresh environment started inside its own CPU-limited cgroup (the
        launcher's interpreter is a two-line shell wrapper that joins the cgroup and then
        execs Python), so the cold start pays for its imports at that share too.
        """
        s = self.settings
        sizes = list(s.memory_sizes)
        shift = round_index % len(sizes)
        sizes = sizes[shift:] + sizes[:shift]
        results = {}
        errors = 0
        for memory_mb in sizes:
            group = quota.create(memory_mb)
            wrapper = self.testbed.logs / f"python-in-cgroup-{memory_mb}.sh"
            wrapper.write_text(f'#!/bin/sh\necho $$ > "{group}/cgroup.procs"\nexec "{sys.executable}" "$@"\n')
            wrapper.chmod(0o755)
            environment = self.driver.spawn("handler", memory_mb=memory_mb, python=str(wrapper))
            environment.pattern = f"handler@{memory_mb}MB"
            for i in range(10):  # warm: the pool's connection and the caches are up
                environment.invoke(self.testbed.get_event(i))
            throttled_before, periods_before = quota.throttled(group)
            samples = []
            for i in range(s.memory_invocations):
                result = environment.invoke(self.testbed.get_event(i))
                if environment.succeeded(result, 200):
                    samples.append(result.elapsed_ms)
            throttled, periods = quota.throttled(group)
            errors += environment.errors
            environment.stop()
            quota.remove(group)
            results[memory_mb] = {
                "cold_start_ms": environment.cold_start_ms,
                "get_p50_ms": percentile(samples, 50),
                "get_p95_ms": percentile(samples, 95),
                "throttled_periods": throttled - throttled_before,
                "periods": periods - periods_before,
                "samples": len(samples),
            }
        return results, errors
