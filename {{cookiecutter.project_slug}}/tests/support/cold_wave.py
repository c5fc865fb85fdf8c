"""A cold wave: many execution environments of the function start at once and each serves its
first request, against a replica set whose members limit new connections (replica_set.py with
limiter.py), as a scale-out of an M10/M20 function meets Atlas's connection rate limit.

    wave = run_wave(local_auth, environments=81, timeout_ms=15000, log_dir=tmp_path, rate=15)
    wave.statuses, wave.ok, wave.last_ok_seconds, wave.admissions, wave.abandoned, ...
    wave.log_errors                      # Counter of the causes the 503s logged
    wave.metric_total("MongoConnectionsCreated")   # summed over every environment's metrics
    wave.figures()                       # the same, as a dict for reports and the benchmark

Each environment is a process of its own under awslambdaric (fleet.py) that initialises, asks
for work, and gets its first request (a POST, so the function connects, authenticates and
writes) at the same moment as the others, with the function's full timeout; its clock starts
when it takes the event, as Lambda's does. What the primary's limiter saw (admissions,
attempts queued, abandoned by their client, spent on clients already gone) says why.

From the project's folder, one wave with its figures as JSON (the benchmark runs it so):

    python -m tests.support.cold_wave --environments 81 [--rate 15] [--burst-seconds 1]
        [--max-queue-depth 0] [--uri-option connectTimeoutMS=3000] [--timeout-ms 15000]
        [--connect-in-init]
"""

import argparse
import collections
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import auth
from tests.support.fleet import Fleet
from tests.support.lambda_process import lambda_environment
from tests.support.mongo import TIER
from tests.support.project import EVENTS, HANDLER, SRC, deployed_uri_for
from tests.support.replica_set import start_replica_set

READY_SECONDS_PER_ENVIRONMENT = 0.5  # generous: forked environments initialise in ~50 ms each


@dataclass
class Wave:
    environments: int
    timeout_ms: int
    statuses: collections.Counter  # status code (None: no response before the deadline)
    seconds: list[float]  # each environment's first request, from taking the event to responding
    ok_seconds: list[float]
    caller_ok_seconds: list[float]  # the 2xx as their callers waited: initialisation included
    admissions: int  # connections the primary's limiter admitted
    needed: int  # the connections the wave needs on the primary: a monitor and a pool each
    queued: int
    abandoned: int  # queued attempts whose client gave up first (each queues again)
    wasted: int  # admissions spent on clients already gone
    refused: int  # attempts closed unserved for a full queue or a wait too long
    longest_queue_wait: float
    log_errors: collections.Counter = field(default_factory=collections.Counter)
    records: list[dict] = field(default_factory=list, repr=False)  # every environment's JSON logs

    @property
    def ok(self) -> int:
        return sum(count for status, count in self.statuses.items() if status and status < 300)

    @property
    def last_ok_seconds(self) -> float | None:
        return max(self.ok_seconds) if self.ok_seconds else None

    @property
    def slowest_seconds(self) -> float:
        return max(self.seconds)

    def metric_total(self, name: str) -> float:
        """A metric's values summed over the embedded-metric-format records of every environment."""
        return sum(
            sum(record[name]) for record in self.records if "_aws" in record and name in record
        )

    def figures(self) -> dict:
        return {
            "environments": self.environments,
            "timeout_ms": self.timeout_ms,
            "ok": self.ok,
            "statuses": {
                str(status): count for status, count in sorted(self.statuses.items(), key=str)
            },
            "last_ok_ms": round(self.last_ok_seconds * 1000) if self.ok_seconds else None,
            "last_ok_caller_ms": round(max(self.caller_ok_seconds) * 1000)
            if self.caller_ok_seconds
            else None,
            "slowest_ms": round(self.slowest_seconds * 1000),
            "primary_admissions": self.admissions,
            "primary_admissions_needed": self.needed,
            "primary_queued": self.queued,
            "primary_abandoned": self.abandoned,
            "primary_wasted": self.wasted,
            "primary_refused": self.refused,
            "primary_longest_queue_wait_ms": round(self.longest_queue_wait * 1000),
            "log_errors": dict(self.log_errors),
        }


def first_request() -> dict:
    event = json.loads((EVENTS / "post-item.json").read_text())
    return event | {"body": json.dumps({"cold_wave": True})}


def wave_environment(deployment, local_auth, **uri_options) -> dict[str, str]:
    """What Lambda and template.yaml give each environment, pointed at the deployment (with
    uri_options overriding what template.yaml puts in the connection string)."""
    extra = {
        "MONGODB_URI": deployed_uri_for(deployment, **uri_options),
        "MONGODB_DATABASE": "cold_waves",
        "POWERTOOLS_METRICS_NAMESPACE": "cold-waves",
        "POWERTOOLS_SERVICE_NAME": "cold-waves",
    } | local_auth.environment(deployment)
    return lambda_environment("set-by-the-fleet", SRC, HANDLER, extra, function_name="cold-waves")


def run_wave(
    local_auth,
    environments: int,
    timeout_ms: int,
    log_dir: Path,
    rate: float,
    limits: dict | None = None,
    connect_in_init: bool = False,
    **uri_options,
) -> "Wave":
    """A wave against a fresh local replica set whose members admit `rate` new connections a
    second (limits: limiter.py's other options), with this auth mode's credentials."""
    login = local_auth.login()
    deployment = start_replica_set(login, new_connections_per_second=rate, **(limits or {}))
    try:
        env = wave_environment(deployment, local_auth, **uri_options)
        return cold_wave(deployment, env, environments, timeout_ms, log_dir, connect_in_init)
    finally:
        deployment.close()


def cold_wave(
    deployment,
    env: dict,
    environments: int,
    timeout_ms: int,
    log_dir: Path,
    connect_in_init: bool = False,
) -> Wave:
    """Start `environments` environments of the function (env: lambda_environment()'s), wait
    until all have initialised, then give each its first request at once.

    connect_in_init: as if every environment connected during its initialisation (the function
    does so where Lambda provisions it ahead of traffic): the requests are queued at once, as a
    wave's are, and each environment takes its own after an initialisation spent connecting."""
    primary = deployment.primary
    before = _limiter_counts(primary)
    if connect_in_init:
        env = env | {"AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency"}
    started = time.monotonic()
    fleet = Fleet(env, log_dir, environments).start()
    try:
        if not connect_in_init:
            ready = fleet.wait_ready(30 + READY_SECONDS_PER_ENVIRONMENT * environments)
            if ready != environments:
                raise RuntimeError(f"only {ready} of {environments} environments initialised")
            started = time.monotonic()  # the requests arrive now, at environments already waiting
        arrived = time.monotonic() - started  # connecting in init: since the first one started
        results = fleet.invoke_all(first_request(), timeout_ms)
        after = _limiter_counts(primary)
        records = fleet.log_records()
    finally:
        fleet.stop()
    statuses = collections.Counter(
        (result.payload or {}).get("statusCode") if result.status == "success" else None
        for result in results
    )
    ok = [
        result
        for result in results
        if result.status == "success" and (result.payload or {}).get("statusCode", 500) < 300
    ]
    errors = collections.Counter(
        str(record.get("cause"))
        for record in records
        if record.get("message") == "Database unavailable"
    )
    delta = {name: after[name] - before[name] for name in after}
    return Wave(
        environments=environments,
        timeout_ms=timeout_ms,
        statuses=statuses,
        seconds=[result.elapsed_ms / 1000 for result in results],
        ok_seconds=[result.elapsed_ms / 1000 for result in ok],
        caller_ok_seconds=[arrived + (r.waited_ms + r.elapsed_ms) / 1000 for r in ok],
        admissions=delta["admitted"],
        needed=2 * environments,
        queued=delta["queued"],
        abandoned=delta["abandoned"],
        wasted=delta["wasted"],
        refused=delta["rejected"] + delta["dropped"],
        longest_queue_wait=primary.longest_queue_wait,
        log_errors=errors,
        records=records,
    )


def _limiter_counts(member) -> dict[str, int]:
    limiter = member.limiter
    names = ("admitted", "queued", "abandoned", "rejected", "dropped")
    counts = {name: getattr(limiter, name) for name in names}
    return counts | {"wasted": member.wasted}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.cold_wave")
    parser.add_argument("--environments", type=int, required=True)
    parser.add_argument(
        "--rate", type=float, default=TIER["new_connections_per_second_per_node"] or 15
    )
    parser.add_argument("--burst-seconds", type=float, default=1.0)
    parser.add_argument("--max-queue-depth", type=int, default=None)
    parser.add_argument(
        "--timeout-ms", type=int, default=TIER["budget"]["function_timeout_seconds"] * 1000
    )
    parser.add_argument("--uri-option", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--connect-in-init", action="store_true")
    args = parser.parse_args(argv)
    limits = {"burst_seconds": args.burst_seconds, "max_queue_depth": args.max_queue_depth}
    options = dict(option.split("=", 1) for option in args.uri_option)
    local_auth = auth.LocalAuth().start()
    try:
        with tempfile.TemporaryDirectory(prefix="cold-wave-") as log_dir:
            wave = run_wave(
                local_auth,
                args.environments,
                args.timeout_ms,
                Path(log_dir),
                args.rate,
                limits,
                args.connect_in_init,
                **options,
            )
    finally:
        local_auth.stop()
    print(json.dumps(wave.figures()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
