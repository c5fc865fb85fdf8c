"""The measurements: each pattern in its own awslambdaric process, driven side by side.

Per auth mode, one MongoDB wire server (or MONGODB_TEST_URI) and, for scram, one Secrets
Manager serve three execution environments started from the rendered project's own test
support:

    handler          the rendered handler (<package>.app.handler)
    counter_example  bench/counter_example_handler.py: same routes, new client per call
    floor            bench/floor_handler.py: one global client, the same read, nothing else

plus `direct`, the same read and write done with pymongo in this process, for reference.

A round starts a fresh environment of each pattern (that is the cold start), then runs
their warm invocations in short alternating blocks: only the environment whose block it is
runs, the others are frozen with SIGSTOP as Lambda freezes idle environments. So whatever
the server sees opened, and whatever Secrets Manager serves, during a block belongs to
that environment, and machine noise is spread over every pattern alike. The order of the
patterns rotates from round to round.
"""

import json
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

from bson import ObjectId
from pymongo import uri_parser

from bench.environment import Driver
from bench.project import RenderedProject
from bench.sampling import live_connections, peak_rss_mb
from bench.settings import Settings
from bench.stats import percentile
from bench.testbed import Testbed

PATTERNS = ("handler", "counter_example", "floor")


class ModeBench:
    """Everything measured for one rendered project (one auth mode)."""

    def __init__(self, project: RenderedProject, settings: Settings, work: Path):
        self.project = project
        self.settings = settings
        self.testbed = Testbed(project, settings.seed_documents, work)
        self.driver = Driver(self.testbed)

    def close(self):
        self.testbed.close()

    # --- one round --------------------------------------------------------------------

    def direct_block(self, samples, count, start):
        for i in range(start, start + count):
            if i % 2 == 0:
                began = time.perf_counter()
                self.testbed.items.find_one({"_id": ObjectId(self.testbed.ids[i % len(self.testbed.ids)])})
                samples["get_ms"].append(round((time.perf_counter() - began) * 1000, 4))
            else:
                document = self.testbed.document(pattern="direct", n=i)
                began = time.perf_counter()
                self.testbed.items.insert_one(document)
                samples["post_ms"].append(round((time.perf_counter() - began) * 1000, 4))

    def round(self, index):
        s = self.settings
        order = list(PATTERNS[index % 3 :] + PATTERNS[: index % 3])
        self.testbed.reset_collection()
        # Cold starts and imports are single, noisy samples: take several, interleaved.
        imports = {pattern: [] for pattern in order}
        colds = {pattern: [] for pattern in order}
        for _ in range(s.cold_starts - 1):
            for pattern in order:
                imports[pattern].append(self.driver.import_time_ms(pattern))
                extra = self.driver.spawn(pattern)
                colds[pattern].append(extra.cold_start_ms)
                extra.stop()
        for pattern in order:
            imports[pattern].append(self.driver.import_time_ms(pattern))
        time.sleep(0.3)  # the probes' own connections close before counting starts
        environments = {}
        for pattern in order:
            environments[pattern] = self.driver.spawn(pattern)
            colds[pattern].append(environments[pattern].cold_start_ms)
            environments[pattern].freeze()
        # The runtime path alone, for reference: what every pattern pays before its own work.
        environments["noop"] = self.driver.spawn("noop")
        environments["noop"].freeze()
        imports["noop"], colds["noop"] = [None], [environments["noop"].cold_start_ms]
        direct = {"get_ms": [], "post_ms": []}
        quota = {
            "handler": s.handler_invocations - 1,
            "floor": s.handler_invocations - 1,
            "counter_example": s.counter_invocations - 1,
            "noop": s.counter_invocations - 1,
        }
        for block in range(s.blocks):
            for pattern in [*order, "noop"]:
                share = quota[pattern] // s.blocks + (1 if block < quota[pattern] % s.blocks else 0)
                self.driver.run_block(environments[pattern], share)
            per_block = s.direct_invocations // s.blocks
            self.direct_block(direct, per_block, block * per_block)
        figures = {}
        for pattern, environment in environments.items():
            environment.thaw()
            time.sleep(0.05)
            figures[pattern] = self._figures(environment, imports[pattern], colds[pattern])
            environment.stop()
        figures["direct"] = {
            **direct,
            "get_p50_ms": percentile(direct["get_ms"], 50),
            "get_p95_ms": percentile(direct["get_ms"], 95),
            "post_p50_ms": percentile(direct["post_ms"], 50),
            "post_p95_ms": percentile(direct["post_ms"], 95),
        }
        return {"round": index + 1, "order": order, "patterns": figures}

    def _figures(self, environment, import_samples, cold_samples):
        n = environment.invocations
        if n >= 1000:
            per_1000 = environment.opened_at.get(1000, environment.opened)
            reads_1000 = environment.secret_reads_at.get(1000, environment.secret_reads)
        else:
            per_1000 = environment.opened * 1000 / n
            reads_1000 = None  # reads do not scale with calls (cached): see secret_reads instead
        rss_100, rss_1000 = environment.rss_at.get(100), environment.rss_at.get(1000)
        growth = (rss_1000 - rss_100) / rss_100 * 100 if rss_100 and rss_1000 else None
        opened_after_first = environment.opened - (environment.conn_series[0][1] if environment.conn_series else 0)
        return {
            "invocations": n,
            "errors": environment.errors,
            "error_samples": environment.error_samples,
            "get_ms": environment.get_ms,
            "post_ms": environment.post_ms,
            "get_p50_ms": percentile(environment.get_ms, 50),
            "get_p95_ms": percentile(environment.get_ms, 95),
            "post_p50_ms": percentile(environment.post_ms, 50),
            "post_p95_ms": percentile(environment.post_ms, 95),
            "cold_start_ms": statistics.median(cold_samples),
            "cold_start_samples_ms": cold_samples,
            "import_ms": statistics.median(kept) if (kept := [v for v in import_samples if v is not None]) else None,
            "import_samples_ms": import_samples,
            "conns_opened": environment.opened,
            "conns_opened_warm": opened_after_first,
            "conns_opened_per_1000": per_1000,
            "conns_opened_per_invocation": environment.opened / n,
            "conns_live_end": live_connections(environment.pid, self.testbed.port) if self.testbed.port else None,
            "rss_100_mb": rss_100,
            "rss_1000_mb": rss_1000,
            "rss_growth_pct": growth,
            "rss_peak_mb": peak_rss_mb(environment),
            "secret_reads": environment.secret_reads if self.testbed.scram else None,
            "secret_reads_per_1000": reads_1000 if self.testbed.scram else None,
            "conn_series": environment.conn_series,
            "rss_series": environment.rss_series,
        }

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
