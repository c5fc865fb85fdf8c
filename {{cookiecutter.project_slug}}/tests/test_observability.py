"""The function's metrics in this process: one MongoConnectionsCreated record for an invocation
that opened connections, whatever its outcome, none for one that opened none, in the namespace
and with the dimension template.yaml's alarms read; the counter behind it sees the application
pool's connections and not the monitor's.

Tracing is off here (Powertools turns it off where LAMBDA_TASK_ROOT is unset); the traces, the
cold-start metric and the figures over many invocations are test_observability_runtime.py's.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import METRICS_NAMESPACE, LambdaContext, package_module
from tests.support.project import PACKAGE, SRC

CONNECTIONS_CREATED = "MongoConnectionsCreated"


def metric_records(text: str, name: str = CONNECTIONS_CREATED) -> list[dict]:
    """The embedded-metric-format records among the printed lines that carry the metric name."""
    records = [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]
    return [record for record in records if name in record]


@pytest.fixture
def observability(app):
    return package_module("observability")


@pytest.fixture
def printed(capsys):
    """A function returning what was printed since the test started, or since its last call."""
    capsys.readouterr()
    return lambda: capsys.readouterr().out


def test_the_metric_name_is_the_one_the_module_publishes(observability):
    assert observability.CONNECTIONS_CREATED == CONNECTIONS_CREATED


def test_a_missing_namespace_stops_start_up_with_an_error_naming_it():
    """Powertools would only fail when the first invocation flushes; start-up fails instead."""
    env = dict(os.environ)
    env.pop("POWERTOOLS_METRICS_NAMESPACE", None)
    started = subprocess.run(
        [sys.executable, "-c", f"import {PACKAGE}.observability"],
        cwd=SRC,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode != 0
    assert "ConfigurationError: POWERTOOLS_METRICS_NAMESPACE is not set" in started.stderr


@pytest.fixture
def cold(app):
    """A fresh execution environment: its first database request opens the pool's connection."""
    database = package_module("database")
    old, database._client = database._client, None
    yield database
    if database._client is not None:
        database._client.close()
    database._client = old


@pytest.mark.parametrize(("name", "status"), [("health", 200), ("post-item", 201)])
def test_an_invocation_that_opens_connections_prints_one_record_in_the_alarms_namespace(
    app, cold, event, lambda_context, printed, name, status
):
    assert app.handler(event(name), lambda_context())["statusCode"] == status
    (record,) = metric_records(printed())
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == METRICS_NAMESPACE
    assert directive["Dimensions"] == [["service"]]
    assert record["service"] == "items"  # POWERTOOLS_SERVICE_NAME
    assert directive["Metrics"] == [{"Name": CONNECTIONS_CREATED, "Unit": "Count"}]
    assert record[CONNECTIONS_CREATED] == [1.0]


@pytest.mark.parametrize(
    ("name", "status"),
    [("health", 200), ("post-item", 201), ("malformed-body", 400), ("unknown-route", 404)],
)
def test_an_invocation_that_opens_none_prints_no_record(
    app, event, lambda_context, printed, name, status
):
    app.handler(event("health"), lambda_context())  # the environment is warm: its pool is open
    printed()
    assert app.handler(event(name), lambda_context())["statusCode"] == status
    assert metric_records(printed()) == []


def test_the_connections_a_failed_invocation_opened_are_published_too(
    app, cold, event, lambda_context, printed, monkeypatch
):
    """A 500 after the database was used: the connections it opened still count."""
    database, routes = package_module("database"), package_module("routes")
    run = database.run

    def run_then_fail(settings, operation):
        run(settings, operation)
        raise RuntimeError("injected failure")

    monkeypatch.setattr(routes.database, "run", run_then_fail)
    assert app.handler(event("health"), lambda_context())["statusCode"] == 500
    (record,) = metric_records(printed())
    assert record[CONNECTIONS_CREATED] == [1.0]


def test_a_handler_that_raises_still_publishes_the_connections(
    app, cold, event, printed, monkeypatch
):
    settings = app.settings

    def resolve(event, context):
        cold.client(settings).admin.command("ping")
        raise RuntimeError("injected failure")

    monkeypatch.setattr(package_module("routes").app, "resolve", resolve)
    with pytest.raises(RuntimeError, match="injected failure"):
        app.handler(event("health"), LambdaContext(3000))
    (record,) = metric_records(printed())
    assert record[CONNECTIONS_CREATED] == [1.0]


def test_the_counter_sees_the_pools_connections_and_not_the_monitors(mongo, observability):
    counter = observability.ConnectionCounter()
    opened_before = mongo.connections_opened
    client = mongo.admin_client(event_listeners=[counter])
    try:
        client.admin.command("ping")
        client.admin.command("ping")
        opened = mongo.connections_opened - opened_before
    finally:
        client.close()
    assert counter.created == 1, "one pooled connection serves both pings"
    if mongo.embedded:  # the server counts every connection: the monitor's as well
        assert opened > counter.created
    assert counter.take() == 1
    assert counter.take() == 0, "take() counts from the last take"


def test_the_trace_header_is_parsed_once_per_invocation_and_each_has_its_own_segment(
    observability, monkeypatch
):
    """The tracer's context (installed where Powertools traces, in Lambda) parses the header when
    a new invocation's arrives, and each invocation's look-ups find that invocation's segment."""
    from aws_xray_sdk.core.models.trace_header import TraceHeader

    parsed = []
    parse = TraceHeader.from_header_str.__func__
    monkeypatch.setattr(
        TraceHeader,
        "from_header_str",
        classmethod(lambda cls, header: parsed.append(header) or parse(cls, header)),
    )
    context = observability.TraceHeaderParsedOnce()
    headers = [f"Root=1-5759e988-{n:024x};Parent=53995c3f42cd8ad8;Sampled=1" for n in (1, 2)]
    for header in headers:
        monkeypatch.setenv("_X_AMZN_TRACE_ID", header)
        segments = {id(context.get_trace_entity()) for _ in range(7)}  # an invocation's look-ups
        assert len(segments) == 1
        assert context.get_trace_entity().trace_id == header.split(";")[0].removeprefix("Root=")
    assert parsed == headers
