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
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bson import ObjectId
from pymongo import MongoClient, uri_parser

from bench.console import say
from bench.project import ROOT, RenderedProject
from bench.sampling import Attribution, live_connections, peak_rss_mb
from bench.settings import Settings
from bench.stats import percentile

PATTERNS = ("handler", "counter_example", "floor")
BENCH_HANDLERS = {
    "noop": "bench.noop_handler.handler",
    "counter_example": "bench.counter_example_handler.handler",
    "floor": "bench.floor_handler.handler",
}
INVOKE_TIMEOUT_MS = 15_000


def _events(project: RenderedProject):
    events = project.path / "events"
    get = json.loads((events / "get-item.json").read_text(encoding="utf-8"))
    post = json.loads((events / "post-item.json").read_text(encoding="utf-8"))
    return get, post


def _get_event(template, item_id):
    event = json.loads(json.dumps(template))
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/items/{item_id}"
    event["pathParameters"] = {"id": item_id}
    return event


def _post_event(template, body):
    event = json.loads(json.dumps(template))
    event["body"] = json.dumps(body)
    return event


def _merge_uri_options(server_uri, deployed_uri):
    """The local server's URI plus the options template.yaml's URI sets that it lacks."""
    have = uri_parser.split_options(server_uri.partition("?")[2], validate=False) if "?" in server_uri else {}
    have_lower = {name.lower() for name in have}
    extra = []
    for pair in deployed_uri.partition("?")[2].split("&"):
        name, _, value = pair.partition("=")
        if name and name.lower() not in have_lower and name.lower() not in ("authsource", "authmechanism"):
            extra.append(f"{name}={value}")
    if not extra:
        return server_uri
    separator = "&" if "?" in server_uri else "/?"
    return server_uri + separator + "&".join(extra)


@dataclass
class Environment:
    """One execution environment: a Runtime API and the awslambdaric process it feeds."""

    pattern: str
    api: object
    process: object
    invocations: int = 0
    errors: int = 0
    error_samples: list = field(default_factory=list)
    get_ms: list = field(default_factory=list)
    post_ms: list = field(default_factory=list)
    opened: int = 0
    opened_at: dict = field(default_factory=dict)
    secret_reads: int = 0
    secret_reads_at: dict = field(default_factory=dict)
    rss_at: dict = field(default_factory=dict)
    conn_series: list = field(default_factory=list)
    rss_series: list = field(default_factory=list)
    cold_start_ms: float | None = None
    frozen: bool = False

    @property
    def pid(self):
        return self.process.pid

    def freeze(self):
        if not self.frozen:
            self.process.freeze()
            self.frozen = True

    def thaw(self):
        if self.frozen:
            self.process.thaw()
            self.frozen = False


class ModeBench:
    """Everything measured for one rendered project (one auth mode)."""

    def __init__(self, project: RenderedProject, settings: Settings, work: Path):
        self.project = project
        self.settings = settings
        self.work = work
        self.support = project.support
        self.scram = project.auth_mode == "scram"
        self.mongo = self.support["mongo"].start_mongo(scram=self.scram)
        self.port = uri_parser.parse_uri(self.mongo.uri)["nodelist"][0][1] if self.mongo.embedded else None
        deployed = project.function_environment()
        self.uri = _merge_uri_options(self.mongo.uri, deployed.get("MONGODB_URI", ""))
        self.database = project.answers["database_name"]
        self.secrets = None
        self.extra = {
            "MONGODB_URI": self.uri,
            "MONGODB_DATABASE": self.database,
            "POWERTOOLS_SERVICE_NAME": deployed.get("POWERTOOLS_SERVICE_NAME", project.answers["project_slug"]),
            "LOG_LEVEL": deployed.get("LOG_LEVEL", "INFO"),
            "BENCH_APP_PACKAGE": project.package,
        }
        if self.scram:
            self.secrets = self.support["secretsmanager"].LocalSecretsManager()
            self.secrets.start()
            arn = self.secrets.create_secret(
                "bench-database-user", {"username": self.mongo.username, "password": self.mongo.password}
            )
            self.extra |= {"MONGODB_SECRET_ARN": arn, "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.secrets.endpoint_url}
        self.attribution = Attribution(self.mongo, self.secrets)
        self.memory_mb = int(project.answers.get("memory_size", 1024))
        self.direct = MongoClient(self.uri, username=self.mongo.username, password=self.mongo.password)
        self.items = self.direct[self.database]["items"]
        self.get_template, self.post_template = _events(project)
        self.post_body = json.loads(self.post_template["body"])
        self.ids = []
        self.reset_collection()
        self.logs = work / "logs" / project.auth_mode  # each runtime process's output, kept for a look
        shutil.rmtree(self.logs, ignore_errors=True)
        self.logs.mkdir(parents=True)

    def reset_collection(self):
        """A fresh `items` with the seed documents. The embedded server's inserts slow down as
        a collection grows, so every round (and the load run) starts from the same size."""
        self.items.drop()
        seeded = self.items.insert_many([dict(self.post_body, seq=i) for i in range(self.settings.seed_documents)])
        self.ids = [str(item_id) for item_id in seeded.inserted_ids]

    def close(self):
        self.direct.close()
        if self.secrets is not None:
            self.secrets.stop()
        self.mongo.close()

    # --- environments -----------------------------------------------------------------

    def _lambda_env(self, pattern, memory_mb=None):
        support = self.support["lambda_process"]
        extra = dict(self.extra)
        handler = self.project.handler
        if pattern != "handler":
            handler = BENCH_HANDLERS[pattern]
            extra["PYTHONPATH"] = os.pathsep.join([str(self.project.src), str(ROOT)])
            if pattern == "floor":
                extra |= {"BENCH_FLOOR_USERNAME": self.mongo.username, "BENCH_FLOOR_PASSWORD": self.mongo.password}
                extra = {name: value for name, value in extra.items() if value is not None}
        return support.lambda_environment(
            "127.0.0.1:0",  # replaced once the Runtime API has its port
            self.project.src,
            handler,
            extra,
            function_name=f"bench-{pattern}",
            memory_mb=memory_mb or self.memory_mb,
        )

    def spawn(self, pattern, memory_mb=None, python=None):
        """Start an environment and serve its first invocation; the wall time is its cold start."""
        api = self.support["runtime_api"].RuntimeAPI().start()
        env = self._lambda_env(pattern, memory_mb)
        env["AWS_LAMBDA_RUNTIME_API"] = api.address
        log = self.logs / f"{pattern}-{uuid.uuid4().hex[:6]}.log"
        launcher = self.support["lambda_process"].LambdaProcess
        process = launcher(env, log, python=python) if python else launcher(env, log)
        environment = Environment(pattern, api, process)
        counted = self.attribution.counters()
        started = time.monotonic()
        process.start()
        result = api.invoke(_get_event(self.get_template, self.ids[0]), timeout_ms=INVOKE_TIMEOUT_MS)
        environment.cold_start_ms = (time.monotonic() - started) * 1000
        environment.invocations = 1
        self._check(environment, result, 200)
        self.attribution.charge_invocation(environment, counted)
        return environment

    @staticmethod
    def _check(environment, result, expected_status):
        payload = result.payload if isinstance(result.payload, dict) else {}
        if result.status != "success" or payload.get("statusCode") != expected_status:
            environment.errors += 1
            if len(environment.error_samples) < 3:
                environment.error_samples.append({"status": result.status, "payload": str(result.payload)[:300]})
            return False
        return True

    def run_block(self, environment, count):
        """count warm invocations, alternating GET /items/{id} and POST /items."""
        environment.thaw()
        counted = self.attribution.counters()
        for _ in range(count):
            n = environment.invocations
            if n % 2 == 0:
                event = _get_event(self.get_template, self.ids[n % len(self.ids)])
                expected, samples = 200, environment.get_ms
            else:
                event = _post_event(self.post_template, dict(self.post_body, pattern=environment.pattern, n=n))
                expected, samples = 201, environment.post_ms
            result = environment.api.invoke(event, timeout_ms=INVOKE_TIMEOUT_MS)
            environment.invocations += 1
            if self._check(environment, result, expected):
                samples.append(round(result.elapsed_ms, 4))
            counted = self.attribution.charge_invocation(environment, counted)
        time.sleep(0.02)  # let a close or a late connect land inside this environment's window
        self.attribution.charge(environment, counted)
        environment.freeze()

    def stop(self, environment):
        environment.thaw()
        environment.api.stop()  # first: its pending long-poll answers, so no write to a dead socket
        environment.process.stop()

    # --- one round --------------------------------------------------------------------

    def import_time_ms(self, pattern):
        """The handler module's import time, in a fresh interpreter with the function's settings."""
        env = self._lambda_env(pattern)
        module = env["_HANDLER"].rpartition(".")[0]
        code = (
            "import importlib, sys, time\n"
            "started = time.perf_counter()\n"
            "importlib.import_module(sys.argv[1])\n"
            "print((time.perf_counter() - started) * 1000)\n"
        )
        completed = subprocess.run(
            [sys.executable, "-c", code, module],
            env=env,
            cwd=env["LAMBDA_TASK_ROOT"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if completed.returncode != 0:
            say(f"  import of {module} failed: {completed.stderr.strip().splitlines()[-1:]}")
            return None
        return float(completed.stdout.strip().splitlines()[-1])

    def direct_block(self, samples, count, start):
        for i in range(start, start + count):
            if i % 2 == 0:
                began = time.perf_counter()
                self.items.find_one({"_id": ObjectId(self.ids[i % len(self.ids)])})
                samples["get_ms"].append(round((time.perf_counter() - began) * 1000, 4))
            else:
                document = dict(self.post_body, pattern="direct", n=i)
                began = time.perf_counter()
                self.items.insert_one(document)
                samples["post_ms"].append(round((time.perf_counter() - began) * 1000, 4))

    def round(self, index):
        s = self.settings
        order = list(PATTERNS[index % 3 :] + PATTERNS[: index % 3])
        self.reset_collection()
        # Cold starts and imports are single, noisy samples: take several, interleaved.
        imports = {pattern: [] for pattern in order}
        colds = {pattern: [] for pattern in order}
        for _ in range(s.cold_starts - 1):
            for pattern in order:
                imports[pattern].append(self.import_time_ms(pattern))
                extra = self.spawn(pattern)
                colds[pattern].append(extra.cold_start_ms)
                self.stop(extra)
        for pattern in order:
            imports[pattern].append(self.import_time_ms(pattern))
        time.sleep(0.3)  # the probes' own connections close before counting starts
        environments = {}
        for pattern in order:
            environments[pattern] = self.spawn(pattern)
            colds[pattern].append(environments[pattern].cold_start_ms)
            environments[pattern].freeze()
        # The runtime path alone, for reference: what every pattern pays before its own work.
        environments["noop"] = self.spawn("noop")
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
                self.run_block(environments[pattern], share)
            per_block = s.direct_invocations // s.blocks
            self.direct_block(direct, per_block, block * per_block)
        figures = {}
        for pattern, environment in environments.items():
            environment.thaw()
            time.sleep(0.05)
            figures[pattern] = self._figures(environment, imports[pattern], colds[pattern])
            self.stop(environment)
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
            "conns_live_end": live_connections(environment.pid, self.port) if self.port else None,
            "rss_100_mb": rss_100,
            "rss_1000_mb": rss_1000,
            "rss_growth_pct": growth,
            "rss_peak_mb": peak_rss_mb(environment),
            "secret_reads": environment.secret_reads if self.scram else None,
            "secret_reads_per_1000": reads_1000 if self.scram else None,
            "conn_series": environment.conn_series,
            "rss_series": environment.rss_series,
        }

    # --- several environments at once ---------------------------------------------------

    def load(self):
        """N environments writing in parallel: every acknowledged write stored, none failed,
        and the server's connection count bounded by environments x (1 + maxPoolSize)."""
        s = self.settings
        run_id = uuid.uuid4().hex
        self.reset_collection()
        baseline = self.mongo.connections_live
        opened_before = self.mongo.connections_opened
        environments = []
        threads = []
        outcomes = [[] for _ in range(s.load_environments)]
        peak = {"live": 0}
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak["live"] = max(peak["live"], self.mongo.connections_live - baseline)
                time.sleep(0.002)

        def drive(k, environment):
            for i in range(s.load_writes):
                body = dict(self.post_body, load_run=run_id, env=k, seq=i)
                result = environment.api.invoke(_post_event(self.post_template, body), timeout_ms=INVOKE_TIMEOUT_MS)
                payload = result.payload if isinstance(result.payload, dict) else {}
                acked_id = None
                if result.status == "success" and payload.get("statusCode") == 201:
                    acked_id = json.loads(payload["body"])["id"]
                outcomes[k].append({"status": result.status, "code": payload.get("statusCode"), "id": acked_id})

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        spawners = [
            threading.Thread(target=lambda: environments.append(self.spawn("handler")))
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
        live_end = self.mongo.connections_live - baseline
        pool_sizes = [self._max_pool_size(environment) for environment in environments]
        for environment in environments:
            self.stop(environment)
        flat = [outcome for per_env in outcomes for outcome in per_env]
        acked = [ObjectId(outcome["id"]) for outcome in flat if outcome["id"]]
        stored_acked = self.items.count_documents({"_id": {"$in": acked}}) if acked else 0
        stored_run = self.items.count_documents({"load_run": run_id})
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
            "connections_opened": self.mongo.connections_opened - opened_before,
            "within_bound": bound is not None and peak["live"] <= bound,
            "elapsed_s": elapsed,
            "writes_per_second": len(acked) / elapsed if elapsed else None,
        }

    def _max_pool_size(self, environment):
        """maxPoolSize the environment's client runs with: the URI's, else the one it logged."""
        options = uri_parser.split_options(self.uri.partition("?")[2], validate=False)
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
            wrapper = self.logs / f"python-in-cgroup-{memory_mb}.sh"
            wrapper.write_text(f'#!/bin/sh\necho $$ > "{group}/cgroup.procs"\nexec "{sys.executable}" "$@"\n')
            wrapper.chmod(0o755)
            environment = self.spawn("handler", memory_mb=memory_mb, python=str(wrapper))
            environment.pattern = f"handler@{memory_mb}MB"
            for i in range(10):  # warm: the pool's connection and the caches are up
                environment.api.invoke(
                    _get_event(self.get_template, self.ids[i % len(self.ids)]), timeout_ms=INVOKE_TIMEOUT_MS
                )
            throttled_before, periods_before = quota.throttled(group)
            samples = []
            for i in range(s.memory_invocations):
                event = _get_event(self.get_template, self.ids[i % len(self.ids)])
                result = environment.api.invoke(event, timeout_ms=INVOKE_TIMEOUT_MS)
                if self._check(environment, result, 200):
                    samples.append(result.elapsed_ms)
            throttled, periods = quota.throttled(group)
            errors += environment.errors
            self.stop(environment)
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
