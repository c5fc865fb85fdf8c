"""Driving a pattern: one execution environment, started, invoked, frozen and thawed.

An execution environment is a Runtime API (the rendered tests' local one) and the
`python -m awslambdaric <handler>` process it feeds, started by the rendered tests'
launcher with the function's settings, as Lambda starts one. The `handler` pattern runs
the rendered <package>.app.handler; the others run this repository's BENCH_HANDLERS
(bench/rounds.py says what each pattern is), with the repository on PYTHONPATH.

Starting one serves its first invocation, a GET; the wall time from spawning the process
to that response is its cold start. Warm invocations come in blocks, and between its
blocks an environment is frozen with SIGSTOP, as Lambda freezes idle environments. Each
environment keeps its own counters: invocations, failures, latencies, and the connections
and secret reads the attribution charged to it. The handler module's import time is
measured apart, in a fresh interpreter with the same settings.
"""

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field

from bench.console import say
from bench.project import ROOT
from bench.sampling import Attribution

BENCH_HANDLERS = {
    "noop": "bench.noop_handler.handler",
    "counter_example": "bench.counter_example_handler.handler",
    "floor": "bench.floor_handler.handler",
    "no_logger_context": "bench.no_logger_context_handler.handler",
}
INVOKE_TIMEOUT_MS = 15_000
IMPORT_PROBE = (
    "import importlib, sys, time\n"
    "started = time.perf_counter()\n"
    "importlib.import_module(sys.argv[1])\n"
    "print((time.perf_counter() - started) * 1000)\n"
)


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
    credential_reads: int = 0
    credential_reads_at: dict = field(default_factory=dict)
    rss_at: dict = field(default_factory=dict)
    conn_series: list = field(default_factory=list)
    rss_series: list = field(default_factory=list)
    cold_start_ms: float | None = None
    frozen: bool = False
    timeout_ms: int = INVOKE_TIMEOUT_MS

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

    def invoke(self, event):
        return self.api.invoke(event, timeout_ms=self.timeout_ms)

    def succeeded(self, result, expected_status):
        """Whether the response has the expected status; a failure is counted, the first three kept."""
        payload = result.payload if isinstance(result.payload, dict) else {}
        if result.status != "success" or payload.get("statusCode") != expected_status:
            self.errors += 1
            if len(self.error_samples) < 3:
                self.error_samples.append({"status": result.status, "payload": str(result.payload)[:300]})
            return False
        return True

    def stop(self):
        self.thaw()
        self.api.stop()  # first: its pending long-poll answers, so no write to a dead socket
        self.process.stop()


class Driver:
    """Starts, invokes and stops the environments of every pattern against one test bed."""

    def __init__(self, testbed):
        self.testbed = testbed
        self.attribution = Attribution(testbed.mongo, testbed.local_auth)

    def lambda_env(self, pattern, memory_mb=None):
        """The process environment Lambda would give this pattern's function."""
        testbed, project = self.testbed, self.testbed.project
        extra = dict(testbed.function_env)
        handler = project.handler
        if pattern != "handler":
            handler = BENCH_HANDLERS[pattern]
            extra["PYTHONPATH"] = os.pathsep.join([str(project.src), str(ROOT)])
        if pattern == "floor":  # None (iam) leaves the variable unset
            extra |= {"BENCH_FLOOR_USERNAME": testbed.mongo.username, "BENCH_FLOOR_PASSWORD": testbed.mongo.password}
        return project.support["lambda_process"].lambda_environment(
            "127.0.0.1:0",  # replaced once the Runtime API has its port
            project.src,
            handler,
            extra,
            function_name=f"bench-{pattern}",
            memory_mb=memory_mb or testbed.memory_mb,
        )

    def spawn(self, pattern, memory_mb=None, python=None, extra_env=None, sampled=True, name=None, timeout_ms=None):
        """Start an environment and serve its first invocation; the wall time is its cold start.
        extra_env and sampled vary a pattern (the observability view); name labels it; timeout_ms
        bounds each invocation (an interpreter under callgrind needs longer)."""
        support = self.testbed.project.support
        api = support["runtime_api"].RuntimeAPI(sampled=sampled).start()
        env = self.lambda_env(pattern, memory_mb) | (extra_env or {})
        env["AWS_LAMBDA_RUNTIME_API"] = api.address
        log = self.testbed.logs / f"{pattern}-{uuid.uuid4().hex[:6]}.log"
        process = support["lambda_process"].LambdaProcess(env, log, python=python or sys.executable)
        environment = Environment(name or pattern, api, process, timeout_ms=timeout_ms or INVOKE_TIMEOUT_MS)
        counted = self.attribution.counters()
        started = time.monotonic()
        process.start()
        result = environment.invoke(self.testbed.get_event(0))
        environment.cold_start_ms = (time.monotonic() - started) * 1000
        environment.invocations = 1
        environment.succeeded(result, 200)
        self.attribution.charge_invocation(environment, counted)
        return environment

    def run_block(self, environment, count):
        """count warm invocations, alternating GET /items/{id} and POST /items, then freeze."""
        environment.thaw()
        counted = self.attribution.counters()
        for _ in range(count):
            n = environment.invocations
            if n % 2 == 0:
                event, expected, samples = self.testbed.get_event(n), 200, environment.get_ms
            else:
                event = self.testbed.post_event(pattern=environment.pattern, n=n)
                expected, samples = 201, environment.post_ms
            result = environment.invoke(event)
            environment.invocations += 1
            if environment.succeeded(result, expected):
                samples.append(round(result.elapsed_ms, 4))
            counted = self.attribution.charge_invocation(environment, counted)
        time.sleep(0.02)  # let a close or a late connect land inside this environment's window
        self.attribution.charge(environment, counted)
        environment.freeze()

    def import_time_ms(self, pattern):
        """The handler module's import time, in a fresh interpreter with the function's settings."""
        env = self.lambda_env(pattern)
        module = env["_HANDLER"].rpartition(".")[0]
        completed = subprocess.run(
            [sys.executable, "-c", IMPORT_PROBE, module],
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
