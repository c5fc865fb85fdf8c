"""The load scenario: several environments of the rendered handler writing in parallel.

Lambda scales out by starting more execution environments, each with its own client, so
the connections a server sees should follow the number of environments, not the request
rate. Here N environments of the rendered handler (4 in a full run) start at once and
each writes documents back to back. The scenario checks that every acknowledged write is
in the database, that no invocation failed, and that the server's live connection count,
sampled every 2 ms, never exceeded environments x (1 + maxPoolSize): one monitoring
connection plus the pool per environment, maxPoolSize from the deployed URI in
template.yaml.
"""

import json
import threading
import time
import uuid

from bson import ObjectId
from pymongo import uri_parser

from bench.console import say

PYMONGO_MAX_POOL_SIZE = 100


def run_load(driver, settings):
    """The scenario for the driver's auth mode, with its stage lines; its figures."""
    say(
        f"{driver.testbed.project.auth_mode} load: {settings.load_environments} environments x "
        f"{settings.load_writes} writes in parallel"
    )
    load = LoadScenario(driver, settings.load_environments, settings.load_writes).run()
    say(
        f"  {load['acknowledged_writes_stored']}/{load['acknowledged_writes']} acknowledged writes stored, "
        f"{load['failed_invocations']} failed, peak live connections {load['peak_live_connections']} "
        f"(bound {load['connection_bound']})"
    )
    return load


def _in_parallel(calls):
    threads = [threading.Thread(target=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class LoadScenario:
    """One run: `count` environments of the handler, `writes` POSTs each, all at once."""

    def __init__(self, driver, count, writes):
        self.driver = driver
        self.testbed = driver.testbed
        self.count = count
        self.writes = writes
        self.run_id = uuid.uuid4().hex
        self.acked = [[] for _ in range(count)]  # per environment: each write's acknowledged id, or None
        self.peak_live = 0
        self.baseline = 0
        self.done = threading.Event()

    def run(self):
        """N environments writing in parallel: every acknowledged write stored, none failed,
        and the server's connection count bounded by environments x (1 + maxPoolSize)."""
        mongo = self.testbed.mongo
        self.testbed.reset_collection()
        self.baseline, opened_before = mongo.connections_live, mongo.connections_opened
        sampler = threading.Thread(target=self._sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        environments = []
        _in_parallel([lambda: environments.append(self.driver.spawn("handler"))] * self.count)
        _in_parallel(
            [
                lambda k=k, environment=environment: self._drive(k, environment)
                for k, environment in enumerate(environments)
            ]
        )
        elapsed = time.monotonic() - started
        time.sleep(0.05)
        self.done.set()
        sampler.join()
        live_end = mongo.connections_live - self.baseline
        pool_sizes = [self._max_pool_size(environment) for environment in environments]
        for environment in environments:
            environment.stop()
        return self._figures(environments, pool_sizes, elapsed, live_end, opened_before)

    def _sample(self):
        while not self.done.is_set():
            self.peak_live = max(self.peak_live, self.testbed.mongo.connections_live - self.baseline)
            time.sleep(0.002)

    def _drive(self, k, environment):
        for i in range(self.writes):
            result = environment.invoke(self.testbed.post_event(load_run=self.run_id, env=k, seq=i))
            payload = result.payload if isinstance(result.payload, dict) else {}
            acked_id = None
            if result.status == "success" and payload.get("statusCode") == 201:
                acked_id = json.loads(payload["body"])["id"]
            self.acked[k].append(acked_id)

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
        return PYMONGO_MAX_POOL_SIZE

    def _figures(self, environments, pool_sizes, elapsed, live_end, opened_before):
        writes = [acked_id for per_environment in self.acked for acked_id in per_environment]
        acked = [ObjectId(acked_id) for acked_id in writes if acked_id]
        items = self.testbed.items
        stored_acked = items.count_documents({"_id": {"$in": acked}}) if acked else 0
        max_pool = max(pool_sizes) if pool_sizes else None
        bound = self.count * (1 + max_pool) if max_pool is not None else None
        return {
            "environments": self.count,
            "writes_per_environment": self.writes,
            "invocations": len(writes) + len(environments),
            "failed_invocations": writes.count(None) + sum(environment.errors for environment in environments),
            "acknowledged_writes": len(acked),
            "acknowledged_writes_stored": stored_acked,
            "documents_stored_for_run": items.count_documents({"load_run": self.run_id}),
            "all_acknowledged_stored": stored_acked == len(acked),
            "max_pool_size": max_pool,
            "connection_bound": bound,
            "peak_live_connections": self.peak_live,
            "live_connections_end": live_end,
            "connections_opened": self.testbed.mongo.connections_opened - opened_before,
            "within_bound": bound is not None and self.peak_live <= bound,
            "elapsed_s": elapsed,
            "writes_per_second": len(acked) / elapsed if elapsed else None,
        }
