"""Metrics and traces under the real Lambda runtime client (awslambdaric), in one process of its
own: the MongoConnectionsCreated record an invocation prints when it opened connections (the
embedded metric format lines on stdout), over a cold start, many warm invocations and a database
outage; the ColdStart metric; and the X-Ray documents the tracer sends to a local stand-in for the
daemon, with and without a subsegment per database command.
"""

import contextlib
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


@contextlib.contextmanager
def traced_function(tmp_path_factory, name: str, **extra):
    """The function under awslambdaric with a local X-Ray daemon receiving its traces."""
    xray = XRayDaemon().start()
    extra |= {"POWERTOOLS_SERVICE_NAME": SERVICE, "AWS_XRAY_DAEMON_ADDRESS": xray.address}
    tmp_path = tmp_path_factory.mktemp(name)
    try:
        with running_function(tmp_path, "observability_tests", extra, TracedRuntime) as runtime:
            runtime.xray = xray
            yield runtime
    finally:
        xray.stop()


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    with traced_function(tmp_path_factory, "observability") as runtime:
        yield runtime


@pytest.fixture(scope="module")
def command_traced(tmp_path_factory):
    """The same, with a subsegment per database command, as an operator switches it on."""
    with traced_function(tmp_path_factory, "commands", TRACE_DATABASE_COMMANDS="true") as runtime:
        yield runtime


@pytest.fixture
def controllable(runtime):
    yield from under_faults(runtime.mongo)


def value(record: dict) -> float:
    (number,) = record[CONNECTIONS_CREATED]
    return number


def test_a_record_when_connections_open_none_on_warm_invocations(runtime, figures):
    cold, printed = runtime.invoke_and_measure("health")
    assert cold.payload["statusCode"] == 200
    (first,) = printed[CONNECTIONS_CREATED]
    (cold_start,) = printed["ColdStart"]
    warm_records, ids = [], []
    for number in range(WARM_INVOCATIONS):
        name, status = WARM_CYCLE[number % len(WARM_CYCLE)]
        changes = {"rawPath": f"/items/{ids[-1]}"} if name == "get-item" else {}
        result, printed = runtime.invoke_and_measure(name, **changes)
        assert result.payload["statusCode"] == status, result
        if status == 201:
            ids.append(json.loads(result.payload["body"])["id"])
        assert printed["ColdStart"] == []
        warm_records += [value(record) for record in printed[CONNECTIONS_CREATED]]

    figures.values["metrics"] = {
        "invocations": 1 + WARM_INVOCATIONS,
        "connections_created": {"first": value(first), "warm": warm_records},
        "cold_start_records": len(runtime.emf("ColdStart")),
    }
    assert value(first) >= 1
    assert warm_records == [], "a warm invocation opened no connection and publishes nothing"
    assert len(runtime.emf("ColdStart")) == 1
    assert len(runtime.emf(CONNECTIONS_CREATED)) == 1

    # what the alarms in template.yaml select: the namespace and every dimension, service included
    (directive,) = first["_aws"]["CloudWatchMetrics"]
    assert (directive["Namespace"], directive["Dimensions"]) == (METRICS_NAMESPACE, [["service"]])
    assert first["service"] == SERVICE
    (cold_directive,) = cold_start["_aws"]["CloudWatchMetrics"]
    assert cold_directive["Namespace"] == METRICS_NAMESPACE
    assert cold_directive["Dimensions"] == [["function_name", "service"]]
    assert cold_start["function_name"] == runtime.process.env["AWS_LAMBDA_FUNCTION_NAME"]
    assert cold_start["ColdStart"] == [1.0]
    # nothing but the records: the flushes with nothing to publish say nothing either
    assert "No application metrics to publish" not in runtime.process.logs()


def test_an_outage_publishes_the_reconnection(runtime, controllable, figures):
    controllable.stop()
    down, printed_down = runtime.invoke_and_measure("health", FAULT_TIMEOUT_MS)
    assert down.payload["statusCode"] == 503
    during = [value(record) for record in printed_down[CONNECTIONS_CREATED]]
    controllable.start()

    back, printed_back = runtime.invoke_and_measure("health")
    assert back.payload["statusCode"] == 200
    (after,) = printed_back[CONNECTIONS_CREATED]
    _, printed_warm = runtime.invoke_and_measure("health")

    measured = figures.values.setdefault("metrics", {}).setdefault("connections_created", {})
    measured |= {
        "during_outage": sum(during),
        "after_outage": value(after),
        "warm_after_outage": [value(record) for record in printed_warm[CONNECTIONS_CREATED]],
    }
    assert all(number >= 1 for number in during)  # a record only with connections attempted
    assert value(after) >= 1, "the pool was cleared: the first request after the outage reconnects"
    assert printed_warm[CONNECTIONS_CREATED] == []


def test_one_subsegment_per_invocation_annotated_with_its_connections(runtime):
    first = runtime.trace(1)
    assert first, "the tracer sent nothing to AWS_XRAY_DAEMON_ADDRESS"
    (handler,) = [doc for doc in first if doc["name"] == "## handler"]
    annotations = handler["annotations"]
    assert {
        name: annotations[name] for name in ("route", "ColdStart", "Service", "new_connection")
    } == {
        "route": "GET /health",
        "ColdStart": True,
        "Service": SERVICE,
        "new_connection": True,
    }
    assert annotations["connections_created"] >= 1
    assert "metadata" not in handler, "the handler's response (the items) stays out of the trace"
    # inside it, only the AWS calls the auth mode makes itself: no subsegment per command
    inside = [doc for doc in first if doc.get("parent_id") == handler["id"]]
    assert [doc["aws"]["operation"] for doc in inside if doc["namespace"] == "aws"] == list(
        auth.FUNCTION_AWS_CALLS
    )
    assert [doc for doc in first if doc.get("namespace") == "remote"] == []

    warm = runtime.trace(2)  # POST /items, on the connection the first request opened
    (handler,) = [doc for doc in warm if doc["name"] == "## handler"]
    assert handler["annotations"] == {
        "ColdStart": False,
        "Service": SERVICE,
        "route": "POST /items",
    }, "a warm request opens no connection and records no connection annotations"
    assert [doc["name"] for doc in warm] == ["## handler"]
    if runtime.mongo.password:
        assert runtime.mongo.password not in json.dumps(runtime.xray.documents())


def test_switched_on_each_database_command_has_a_subsegment_without_documents(command_traced):
    for name in ("health", "post-item"):
        assert command_traced.invoke(name).payload["statusCode"] in (200, 201)
    first, second = command_traced.trace(1), command_traced.trace(2)
    (handler,) = [doc for doc in first if doc["name"] == "## handler"]
    remote = [doc for doc in first if doc.get("namespace") == "remote"]
    assert all(doc["parent_id"] == handler["id"] for doc in remote)
    commands = [doc["annotations"]["mongodb_command_name"] for doc in remote]
    assert commands[-1] == "ping"
    assert all(name.startswith("sasl") for name in commands[:-1]), commands
    inserts = [doc for doc in second if doc.get("namespace") == "remote"]
    assert [doc["annotations"]["mongodb_command_name"] for doc in inserts] == ["insert"]
    assert "metadata" not in inserts[0], "the documents stay out of the trace"


def test_a_duplicate_key_names_the_field_but_no_value_in_the_answer_traces_or_logs(command_traced):
    """The server's duplicate-key error quotes the value and names the database, collection and
    index; none of it may reach the 400 answer, the trace (every command traced) or the logs."""
    database = command_traced.process.env["MONGODB_DATABASE"]
    items = command_traced.mongo.admin_client()[database]["items"]
    index = items.create_index("email", unique=True, sparse=True)  # the other tests have none
    email = "alice@example.com"
    try:
        body = json.dumps({"email": email, "name": "Alice"})
        first = command_traced.api.invocations + 1
        statuses = [command_traced.invoke("post-item", body=body).payload for _ in range(2)]
    finally:
        items.drop_index(index)
    assert [payload["statusCode"] for payload in statuses] == [201, 400]
    (error,) = json.loads(statuses[1]["body"]).values()
    assert error.startswith("the database refused the document (DuplicateKey, code 11000): ")
    assert "email" in error
    for quoted in (email, database, "items", index):
        assert quoted not in error, (quoted, error)
    assert items.count_documents({"email": email}) == 1
    traces = command_traced.trace(first) + command_traced.trace(first + 1)
    assert any(doc["name"] == "## handler" for doc in traces)
    assert email not in json.dumps(command_traced.xray.documents())
    assert email not in command_traced.process.logs()
    (refused,) = [
        record
        for record in command_traced.process.log_records()
        if record.get("message") == "The database refused the document"
    ]
    assert refused["code"] == 11000


def test_a_failed_database_operation_marks_the_handler_subsegment_a_fault(runtime, controllable):
    controllable.stop()
    number = runtime.api.invocations + 1
    result = runtime.invoke("health", FAULT_TIMEOUT_MS)
    controllable.start()
    assert result.payload["statusCode"] == 503
    (handler,) = [doc for doc in runtime.trace(number) if doc["name"] == "## handler"]
    assert handler.get("fault") is True
    (exception,) = handler["cause"]["exceptions"]
    assert exception["type"] in ("ServerSelectionTimeoutError", "AutoReconnect", "NetworkTimeout")
