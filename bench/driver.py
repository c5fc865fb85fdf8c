"""The load scenario and the memory-size view of one auth mode (the rounds are bench/rounds.py)."""

import json
import sys
import threading
import time
import uuid
from pathlib import Path

from bson import ObjectId
from pymongo import uri_parser

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

    # --- several environments at once ---------------------------------------------------

    def load(self):
        """N environments writing in parallel: every acknowledged write stored, none failed,
        and the server's connection count bounded by environments x (1 + maxPoolSize)."""
        s = self.settings
        run_id = uuid.uuid4().hex
        self.testbed.reset_collection()
        baseline = self.testbed.mongo.connections_live
        opened_before = self.testbed.mongo.connections_opened
        environments = []
        threads = []
        outcomes = [[] for _ in range(s.load_environments)]
        peak = {"live": 0}
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak["live"] = max(peak["live"], self.testbed.mongo.connections_live - baseline)
                time.sleep(0.002)

        def drive(k, environment):
            for i in range(s.load_writes):
                result = environment.invoke(self.testbed.post_event(load_run=run_id, env=k, seq=i))
                payload = result.payload if isinstance(result.payload, dict) else {}
                acked_id = None
                if result.status == "success" and payload.get("statusCode") == 201:
                    acked_id = json.loads(payload["body"])["id"]
                outcomes[k].append({"status": result.status, "code": payload.get("statusCode"), "id": acked_id})

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        spawners = [
            threading.Thread(target=lambda: environments.append(self.driver.spawn("handler")))
            for _ in range(s.load_environments)
        ]
        for thread in spawners:
            thread.start()
        for thread in spawners:
            thread.join()
        for k, environment in enumerate(environments):
            thread = threading.Thread(target=drive, args=(k, environment))
            threads.append(thread)
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        time.sleep(0.05)
        done.set()
        sampler.join()
        live_end = self.testbed.mongo.connections_live - baseline
        pool_sizes = [self._max_pool_size(environment) for environment in environments]
        for environment in environments:
            environment.stop()
        flat = [outcome for per_env in outcomes for outcome in per_env]
        acked = [ObjectId(outcome["id"]) for outcome in flat if outcome["id"]]
        stored_acked = self.testbed.items.count_documents({"_id": {"$in": acked}}) if acked else 0
        stored_run = self.testbed.items.count_documents({"load_run": run_id})
        max_pool = max(pool_sizes) if pool_sizes else None
        bound = s.load_environments * (1 + max_pool) if max_pool is not None else None
        return {
            "environments": s.load_environments,
            "writes_per_environment": s.load_writes,
            "invocations": len(flat) + len(environments),
            "failed_invocations": sum(1 for outcome in flat if not outcome["id"]) + sum(e.errors for e in environments),
            "acknowledged_writes": len(acked),
            "acknowledged_writes_stored": stored_acked,
            "documents_stored_for_run": stored_run,
            "all_acknowledged_stored": stored_acked == len(acked),
            "max_pool_size": max_pool,
            "connection_bound": bound,
            "peak_live_connections": peak["live"],
            "live_connections_end": live_end,
            "connections_opened": self.testbed.mongo.connections_opened - opened_before,
            "within_bound": bound is not None and peak["live"] <= bound,
            "elapsed_s": elapsed,
            "writes_per_second": len(acked) / elapsed if elapsed else None,
        }

    def _max_pool_size(self, environment):
        """maxPoolSize the environment's client runs with: the URI's, else the one it logged."""
        options = uri_parser.split_options(self.testbed.uri.partition("?")[2], validate=False)
        for name, value in options.items():
            if name.lower() == "maxpoolsize":
                return int(value)
        for record in environment.process.log_records():
            client_options = record.get("client_options") or {}
            if "maxPoolSize" in client_options:
                return int(client_options["maxPoolSize"])
        return 100  # pymongo's default

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
