"""Metrics and traces under the real Lambda runtime client (awslambdaric), in one process of its
own: the MongoConnectionsCreated record each invocation prints (the embedded metric format lines
on stdout), over a cold start, many warm invocations and a database outage; the ColdStart metric;
and the X-Ray documents the tracer sends to a local stand-in for the daemon.
"""

import json
import time

import pytest

from tests.conftest import FAULT_TIMEOUT_MS, METRICS_NAMESPACE, under_faults
from tests.support import auth
from tests.support.xray import XRayDaemon
from tests.test_runtime import Runtime, running_function

pytestmark = pytest.mark.slow

CONNECTIONS_CREATED = "MongoConnectionsCreated"
SERVICE = "items"
WARM_INVOCATIONS = 30
# (event, expected status): every outcome, with and without the database
WARM_CYCLE = [
    ("post-item", 201),
    ("get-item", 200),
    ("health", 200),
    ("malformed-body", 400),
    ("unknown-route", 404),
]


class TracedRuntime(Runtime):
    """The runtime of test_runtime.py, reading each invocation's metric lines and its trace."""

    xray: XRayDaemon

    def emf(self, name: str, records: list[dict] | None = None) -> list[dict]:
        """The embedded-metric-format records that carry this metric: of `records`, or of
        everything printed so far."""
        records = self.process.log_records() if records is None else records
        return [record for record in records if "_aws" in record and name in record]

    def invoke_and_measure(self, name: str, timeout_ms: int = 3000, **changes):
        """Invoke, and return the result with the records of both metrics it printed."""
        before = len(self.process.log_records())
        result = self.invoke(name, timeout_ms, **changes)
        new = self.process.log_records()[before:]
        printed = {metric: self.emf(metric, new) for metric in (CONNECTIONS_CREATED, "ColdStart")}
        return result, printed

    def trace(self, invocation: int) -> list[dict]:
        """The X-Ray documents of the invocation-th invocation of this process (1 is the first;
        the local Runtime API numbers its trace ids), once its handler subsegment has arrived."""
        suffix = f"-{invocation:024x}"
        deadline = time.monotonic() + 2
        while True:
            docs = [doc for doc in self.xray.documents() if doc["trace_id"].endswith(suffix)]
            if any(doc["name"] == "## handler" for doc in docs) or time.monotonic() > deadline:
                return docs
            time.sleep(0.05)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    xray = XRayDaemon().start()
    extra = {"POWERTOOLS_SERVICE_NAME": SERVICE, "AWS_XRAY_DAEMON_ADDRESS": xray.address}
    tmp_path = tmp_path_factory.mktemp("observability")
    with running_function(tmp_path, "observability_tests", extra, TracedRuntime) as runtime:
        runtime.xray = xray
        yield runtime
    xray.stop()


@pytest.fixture
def controllable(runtime):
    yield from under_faults(runtime.mongo)


def value(record: dict) -> float:
    (number,) = record[CONNECTIONS_CREATED]
    return number


def test_one_record_per_invocation_connections_on_the_cold_one_only(runtime, figures):
    cold, printed = runtime.invoke_and_measure("health")
    assert cold.payload["statusCode"] == 200
    (first,) = printed[CONNECTIONS_CREATED]
    (cold_start,) = printed["ColdStart"]
    warm_values, ids = [], []
    for number in range(WARM_INVOCATIONS):
        name, status = WARM_CYCLE[number % len(WARM_CYCLE)]
        changes = {"rawPath": f"/items/{ids[-1]}"} if name == "get-item" else {}
        result, printed = runtime.invoke_and_measure(name, **changes)
        assert result.payload["statusCode"] == status, result
        if status == 201:
            ids.append(json.loads(result.payload["body"])["id"])
        (record,) = printed[CONNECTIONS_CREATED]  # exactly one record per invocation
        assert printed["ColdStart"] == []
        warm_values.append(value(record))

    figures.values["metrics"] = {
        "invocations": 1 + WARM_INVOCATIONS,
        "connections_created": {"first": value(first), "warm": warm_values},
        "cold_start_records": len(runtime.emf("ColdStart")),
    }
    assert value(first) >= 1
    assert warm_values == [0] * WARM_INVOCATIONS
    assert len(runtime.emf("ColdStart")) == 1
    assert len(runtime.emf(CONNECTIONS_CREATED)) == 1 + WARM_INVOCATIONS

    # what the alarms in template.yaml select: the namespace and every dimension, service included
    (directive,) = first["_aws"]["CloudWatchMetrics"]
    assert (directive["Namespace"], directive["Dimensions"]) == (METRICS_NAMESPACE, [["service"]])
    assert first["service"] == SERVICE
    (cold_directive,) = cold_start["_aws"]["CloudWatchMetrics"]
    assert cold_directive["Namespace"] == METRICS_NAMESPACE
    assert cold_directive["Dimensions"] == [["function_name", "service"]]
    assert cold_start["function_name"] == runtime.process.env["AWS_LAMBDA_FUNCTION_NAME"]
    assert cold_start["ColdStart"] == [1.0]


def test_an_outage_publishes_on_the_503_and_counts_the_reconnection(runtime, controllable, figures):
    controllable.stop()
    down, printed_down = runtime.invoke_and_measure("health", FAULT_TIMEOUT_MS)
    assert down.payload["statusCode"] == 503
    (during,) = printed_down[CONNECTIONS_CREATED]
    controllable.start()

    back, printed_back = runtime.invoke_and_measure("health")
    assert back.payload["statusCode"] == 200
    (after,) = printed_back[CONNECTIONS_CREATED]
    _, printed_warm = runtime.invoke_and_measure("health")
    (then,) = printed_warm[CONNECTIONS_CREATED]

    measured = figures.values.setdefault("metrics", {}).setdefault("connections_created", {})
    measured |= {
        "during_outage": value(during),
        "after_outage": value(after),
        "warm_after_outage": value(then),
    }
    assert value(after) >= 1, "the pool was cleared: the first request after the outage reconnects"
    assert value(then) == 0


def test_the_handler_and_each_database_operation_are_traced(runtime):
    first = runtime.trace(1)
    assert first, "the tracer sent nothing to AWS_XRAY_DAEMON_ADDRESS"
    (handler,) = [doc for doc in first if doc["name"] == "## handler"]
    assert handler["annotations"] == {"route": "GET /health", "ColdStart": True, "Service": SERVICE}
    assert "metadata" not in handler, "the handler's response (the items) stays out of the trace"
    (database,) = [doc for doc in first if doc["name"] == "## database"]
    assert database["parent_id"] == handler["id"]
    assert database["annotations"]["new_connection"] is True
    assert database["annotations"]["connections_created"] >= 1
    # inside it: the AWS calls the auth mode makes first, the new connection's sign-in, the ping
    inside = [doc for doc in first if doc["parent_id"] == database["id"]]
    aws_calls = [doc["aws"]["operation"] for doc in inside if doc["namespace"] == "aws"]
    assert aws_calls == list(auth.FUNCTION_AWS_CALLS)
    remote = [doc for doc in inside if doc["namespace"] == "remote"]
    commands = [doc["annotations"]["mongodb_command_name"] for doc in remote]
    assert commands[-1] == "ping"
    assert all(name.startswith("sasl") for name in commands[:-1]), commands

    warm = runtime.trace(2)  # POST /items
    (database,) = [doc for doc in warm if doc["name"] == "## database"]
    assert database["annotations"] == {"connections_created": 0, "new_connection": False}
    (handler,) = [doc for doc in warm if doc["name"] == "## handler"]
    assert handler["annotations"]["ColdStart"] is False
    assert handler["annotations"]["route"] == "POST /items"
    commands = [doc for doc in warm if doc.get("namespace") == "remote"]
    assert [doc["annotations"]["mongodb_command_name"] for doc in commands] == ["insert"]
    assert "metadata" not in commands[0], "the documents stay out of the trace"
    if runtime.mongo.password:
        assert runtime.mongo.password not in json.dumps(runtime.xray.documents())


def test_a_failed_database_operation_is_a_fault_in_its_subsegment(runtime, controllable):
    controllable.stop()
    number = runtime.api.invocations + 1
    result = runtime.invoke("health", FAULT_TIMEOUT_MS)
    controllable.start()
    assert result.payload["statusCode"] == 503
    (database,) = [doc for doc in runtime.trace(number) if doc["name"] == "## database"]
    assert database.get("fault") is True
    assert database["cause"]["exceptions"][0]["type"] == "Unavailable"
