"""Shared fixtures: a real MongoDB wire-protocol server, what the auth mode needs besides it
(tests/support/auth.py), a Lambda context, the sample events, the function's logs, and the
figures the runtime-level tests report.

MONGODB_TEST_URI (a local mongod, Atlas) replaces the embedded server; a user and password in it
are what the function signs in with (tests/support/auth.py hands them on). The fault tests that
need to stop or hang the server are then skipped.
"""

import copy
import importlib
import io
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import auth
from tests.support.lambda_process import FAKE_CREDENTIALS
from tests.support.mongo import start_mongo
from tests.support.project import EVENTS, PACKAGE, deployed_uri_for

REGION = "us-east-1"
# The invocation timeout of the fault tests: time for a 503 (the server-selection wait ends
# DEADLINE_MARGIN_MS before the deadline), short enough to keep the suite quick.
FAULT_TIMEOUT_MS = 2000
FIGURES_ENV = "TEST_FIGURES_JSON"
# template.yaml names the metrics' namespace after the stack; the tests' own stands for it
METRICS_NAMESPACE = "local-tests"


def package_module(name: str):
    """Import a module of the function package (src/<package>/<name>.py). Modules that import
    auth.py need the function's environment (an auth mode may read its settings at start-up):
    import them after the app fixture has set it."""
    return importlib.import_module(f"{PACKAGE}.{name}")


def under_faults(mongo):
    """Hand mongo to a test that stops or hangs it (skipped against MONGODB_TEST_URI, whose
    server the tests do not control) and leave it running and answering afterwards.
    Fixtures yield from it."""
    if not mongo.embedded:
        pytest.skip("needs the embedded server (MONGODB_TEST_URI is set)")
    yield mongo
    mongo.resume()
    mongo.start()


def local_only(deployment) -> None:
    """Skip a test that must fault or throttle the deployment when it is MONGODB_TEST_URI's."""
    if not deployment.embedded:
        pytest.skip("needs the local replica set (MONGODB_TEST_URI is set) to fault or throttle")


def load_event(name: str) -> dict:
    return json.loads((EVENTS / f"{name}.json").read_text())


@dataclass
class Figures:
    """What the runtime-level tests measured, reported at the end of the run. Failures a test
    exists to show (a counter-example, a refusal, a 503 under a fault) are reported apart and
    labelled, so that a passing run does not read like a failing one."""

    values: dict = field(default_factory=dict)
    faults: list = field(default_factory=list)
    expected: dict = field(default_factory=dict)  # name -> what its failures show

    def failures_expected(self, name: str, value, shows: str) -> None:
        self.values[name] = value
        self.expected[name] = shows

    def fault(self, case: str, result) -> None:
        self.faults.append(
            {
                "case": case,
                "status": result.payload.get("statusCode") if result.payload else None,
                "elapsed_ms": round(result.elapsed_ms),
                "deadline_ms": result.timeout_ms,
                "before_deadline_by_ms": round(result.margin_ms),
            }
        )


FIGURES = Figures()


@pytest.fixture(scope="session")
def figures() -> Figures:
    return FIGURES


@pytest.fixture(scope="session")
def local_auth():
    """What the auth mode needs besides the database, started once (tests/support/auth.py)."""
    services = auth.LocalAuth(REGION).start()
    yield services
    services.stop()


@pytest.fixture(scope="session")
def mongo(local_auth):
    server = start_mongo(local_auth.login())
    yield server
    server.close()


def function_environment(deployment, local_auth, database: str, **options) -> dict[str, str]:
    """The variables template.yaml gives the function, pointed at the deployment: its URI is
    template.yaml's but for the host and port (options override what template.yaml sets), and
    the auth mode's credentials are the local ones."""
    return {
        "MONGODB_URI": deployed_uri_for(deployment, **options),
        "MONGODB_DATABASE": database,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
    } | local_auth.environment(deployment)


@pytest.fixture(scope="session")
def app(mongo, local_auth):
    """The function's app module, imported in this process with the function's environment."""
    patch = pytest.MonkeyPatch()
    env = (
        {
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            **FAKE_CREDENTIALS,  # the auth mode's own credentials, if it has any, replace them
            "AWS_LAMBDA_FUNCTION_NAME": "unit-tests",
            "POWERTOOLS_SERVICE_NAME": "items",
        }
        | function_environment(mongo, local_auth, f"tests_{uuid.uuid4().hex[:8]}")
    )
    for name, value in env.items():
        if value is None:
            patch.delenv(name, raising=False)
        else:
            patch.setenv(name, value)
    yield package_module("app")
    patch.undo()


class FunctionLogs:
    """What the function's logger wrote during one test: the text and the JSON records in it."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self, message: str | None = None) -> list[dict]:
        """The JSON records, all of them or those with this message."""
        lines = [line for line in self.text.splitlines() if line.startswith("{")]
        records = [json.loads(line) for line in lines]
        return [record for record in records if message in (None, record.get("message"))]


@pytest.fixture
def function_logs(app):
    """The function's log output during the test. Its logger writes to the stream it was created
    with, which capsys does not see, so its handler writes to a buffer meanwhile."""
    logs = FunctionLogs()
    handler = package_module("logs").logger.registered_handler
    previous = handler.setStream(logs.stream)
    yield logs
    handler.setStream(previous)


class LambdaContext:
    """The attributes of Lambda's context object that the function and Powertools read."""

    def __init__(self, timeout_ms: int) -> None:
        self.function_name = "unit-tests"
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 1024
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:unit-tests"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = "/aws/lambda/unit-tests"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@pytest.fixture
def lambda_context():
    """A factory: lambda_context(timeout_ms=3000) -> a context whose deadline starts now."""
    return lambda timeout_ms=3000: LambdaContext(timeout_ms)


@pytest.fixture
def event():
    """A factory: event("post-item", body=...) -> a fresh copy of events/post-item.json."""

    def make(name: str, **changes) -> dict:
        loaded = copy.deepcopy(load_event(name))
        loaded.update(changes)
        return loaded

    return make


def pytest_terminal_summary(terminalreporter):
    if not (FIGURES.values or FIGURES.faults):
        return
    report = {"auth_mode": auth.MODE, **FIGURES.values, "faults": FIGURES.faults}
    terminalreporter.section("runtime figures")
    for name, value in report.items():
        if name != "faults" and name not in FIGURES.expected:
            terminalreporter.line(f"{name}: {value}")
    terminalreporter.section("expected failures: what the tests above show going wrong, on purpose")
    for name, shows in FIGURES.expected.items():
        terminalreporter.line(f"{name} ({shows}): {report[name]}")
    for fault in FIGURES.faults:
        terminalreporter.line(
            f"fault {fault['case']} (answered within the deadline): {fault['status']} in "
            f"{fault['elapsed_ms']} ms (deadline {fault['deadline_ms']} ms, "
            f"{fault['before_deadline_by_ms']} ms to spare)"
        )
    if os.environ.get(FIGURES_ENV):
        report["expected_failures"] = FIGURES.expected
        Path(os.environ[FIGURES_ENV]).write_text(json.dumps(report, indent=2))
