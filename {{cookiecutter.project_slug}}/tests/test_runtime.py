"""The function under the real Lambda runtime interface client (awslambdaric), driven through a
local Runtime API: one process, many invocations, faults, and a failed start-up."""

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import FAULT_TIMEOUT_MS, REGION, function_environment, load_event, under_faults
from tests.support import auth
from tests.support.lambda_process import LambdaProcess, lambda_environment
from tests.support.mongo import start_mongo
from tests.support.project import HANDLER, SRC
from tests.support.runtime_api import RuntimeAPI

pytestmark = pytest.mark.slow

INVOCATIONS = 120
FREEZE_SECONDS = 3


@dataclass
class Runtime:
    api: RuntimeAPI
    process: LambdaProcess
    mongo: object
    auth: auth.LocalAuth

    def invoke(self, name: str, timeout_ms: int = 3000, **changes):
        return self.api.invoke(load_event(name) | changes, timeout_ms)

    def status(self, name: str, timeout_ms: int = 3000, **changes) -> int:
        result = self.invoke(name, timeout_ms, **changes)
        assert result.status == "success", (result, self.process.logs()[-2000:])
        return result.payload["statusCode"]

    def log_messages(self) -> list[str]:
        return [record.get("message") for record in self.process.log_records()]


def start_function(tmp_path, env_extra: dict) -> tuple[RuntimeAPI, LambdaProcess]:
    api = RuntimeAPI().start()
    env = lambda_environment(api.address, SRC, HANDLER, env_extra, region=REGION)
    process = LambdaProcess(env, tmp_path / "function.log").start()
    return api, process


@contextlib.contextmanager
def running_function(tmp_path: Path, database: str, env_extra: dict, runtime_class=Runtime):
    """The function in one process, with a database server and the auth mode's stand-ins of its
    own, as a runtime_class (Runtime or a subclass); all of it stopped afterwards."""
    local_auth = auth.LocalAuth(REGION).start()
    mongo = start_mongo(local_auth.login())
    env = function_environment(mongo, local_auth, database) | env_extra
    api, process = start_function(tmp_path, env)
    try:
        yield runtime_class(api, process, mongo, local_auth)
    finally:
        process.stop()
        api.stop()
        local_auth.stop()
        mongo.close()


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    tmp_path, extra = tmp_path_factory.mktemp("runtime"), {"POWERTOOLS_SERVICE_NAME": "items"}
    with running_function(tmp_path, "runtime_tests", extra) as runtime:
        yield runtime


def test_many_invocations_share_one_initialisation_one_client_and_flat_connections(
    runtime, figures
):
    cold = runtime.invoke("health")
    assert cold.payload["statusCode"] == 200
    first = (runtime.mongo.connections_opened, runtime.mongo.connections_live)
    ids = []
    for number in range(INVOCATIONS - 1):
        if number % 3 == 0:
            result = runtime.invoke("post-item")
            assert result.payload["statusCode"] == 201
            ids.append(json.loads(result.payload["body"])["id"])
        elif number % 3 == 1:
            assert runtime.status("get-item", rawPath=f"/items/{ids[-1]}") == 200
        else:
            assert runtime.status("health") == 200
    last = (runtime.mongo.connections_opened, runtime.mongo.connections_live)

    messages = runtime.log_messages()
    figures.values |= {
        "invocations": INVOCATIONS,
        "cold_start_ms": {
            "init": round(cold.waited_ms),
            "first_invocation": round(cold.elapsed_ms),
        },
        "module_initialisations": messages.count("Function environment initialised"),
        "clients_created": messages.count("Creating the MongoClient"),
        "connections_after_first": {"opened": first[0], "live": first[1]},
        "connections_after_last": {"opened": last[0], "live": last[1]},
        **runtime.auth.reads(),
    }
    assert messages.count("Function environment initialised") == 1
    assert messages.count("Creating the MongoClient") == 1
    assert last[0] == first[0]
    if runtime.mongo.embedded:
        assert last[1] <= 2
        assert first[1] <= 2
    # the auth mode's credentials are read, or checked, once per environment (one connection)
    assert all(reads == 1 for reads in runtime.auth.reads().values()), runtime.auth.reads()


def test_malformed_body_is_400_and_unknown_route_is_404(runtime):
    assert runtime.status("malformed-body") == 400
    assert runtime.status("unknown-route") == 404


@pytest.fixture
def controllable(runtime):
    yield from under_faults(runtime.mongo)


@pytest.mark.parametrize("name", ["health", "post-item", "get-item"])
def test_stopped_database_is_503_before_the_deadline_then_200_in_the_same_process(
    runtime, controllable, figures, name
):
    controllable.stop()
    result = runtime.invoke(name, FAULT_TIMEOUT_MS)
    figures.fault(f"database stopped ({name})", result)
    assert result.status == "success"
    assert result.payload["statusCode"] == 503
    assert result.elapsed_ms < FAULT_TIMEOUT_MS

    controllable.start()
    back = runtime.invoke("health")
    figures.fault("database back", back)
    assert back.payload["statusCode"] == 200


def test_server_that_never_answers_is_503_before_the_deadline(runtime, controllable, figures):
    controllable.hang()
    result = runtime.invoke("health", FAULT_TIMEOUT_MS)
    figures.fault("server accepts but never answers", result)
    assert result.status == "success"
    assert result.payload["statusCode"] == 503
    assert result.elapsed_ms < FAULT_TIMEOUT_MS

    controllable.resume()
    assert runtime.status("health") == 200


def test_frozen_process_serves_the_next_invocation_after_thawing(runtime, figures):
    assert runtime.status("health") == 200
    runtime.process.freeze()
    time.sleep(FREEZE_SECONDS)
    runtime.process.thaw()
    result = runtime.invoke("health")
    figures.fault(f"process frozen {FREEZE_SECONDS} s, then thawed", result)
    assert result.status == "success"
    assert result.payload["statusCode"] == 200


def test_frozen_process_recovers_when_the_server_dropped_its_connections(
    runtime, controllable, figures
):
    assert runtime.status("health") == 200
    runtime.process.freeze()
    controllable.stop()
    controllable.start()
    runtime.process.thaw()
    result = runtime.invoke("get-item", rawPath="/items/6745f0a1c2d3e4f5a6b7c8d9")
    figures.fault("frozen while the server dropped connections", result)
    assert result.payload["statusCode"] == 404


@pytest.mark.parametrize(
    ("initialisation", "connections_before_the_first_event"),
    [("provisioned-concurrency", "the monitor and the pool"), ("on-demand", "none")],
)
def test_provisioned_environments_connect_during_initialisation_on_demand_ones_do_not(
    tmp_path, figures, initialisation, connections_before_the_first_event
):
    extra = {"AWS_LAMBDA_INITIALIZATION_TYPE": initialisation}
    with running_function(tmp_path, "initialisation_tests", extra) as runtime:
        mongo = runtime.mongo
        assert runtime.api.runtime_waiting.wait(15), runtime.process.logs()[-2000:]
        before_the_event = mongo.connections_opened
        result = runtime.invoke("health")
        after_the_event = mongo.connections_opened
        messages = runtime.log_messages()
    figures.values[f"initialisation_{initialisation}"] = {
        "connections_during_init": before_the_event,
        "connections_in_first_invocation": after_the_event - before_the_event,
        "first_invocation_ms": round(result.elapsed_ms),
    }
    assert result.payload["statusCode"] == 200
    if connections_before_the_first_event == "none":
        assert before_the_event == 0 and after_the_event >= 1
    elif mongo.embedded:
        assert before_the_event == 2 and after_the_event == 2  # nothing left to open
    assert messages.count("Creating the MongoClient") == 1


def init_error(tmp_path, env):
    """Start the function, which is expected to fail its initialisation: the error it reports to
    the Runtime API, its exit code, and the stopped process (for its logs)."""
    api, process = start_function(tmp_path, env)
    try:
        return api.wait_init_error(15), process.wait(10), process
    finally:
        process.stop()
        api.stop()


def test_missing_aws_region_stops_start_up_with_an_error_naming_it(runtime, tmp_path, figures):
    env = function_environment(runtime.mongo, runtime.auth, "app") | {"AWS_REGION": None}
    error, exit_code, process = init_error(tmp_path, env)
    assert error is not None, process.logs()
    assert error["errorType"] == "ConfigurationError"
    assert error["errorMessage"].startswith("AWS_REGION is not set")
    assert exit_code not in (None, 0)
    figures.failures_expected(
        "init_error", error["errorMessage"], "start-up without AWS_REGION stops, naming it"
    )


def test_a_uri_pymongo_refuses_stops_start_up_naming_it_before_any_connection(
    runtime, tmp_path, figures
):
    """loadBalanced=true (what the -lb host's TXT record adds) with srvMaxHosts, which pymongo
    refuses: start-up stops, naming MONGODB_URI, rather than every request failing with a 503. The
    environment is a provisioned one, which would connect during initialisation: nothing does."""
    env = function_environment(runtime.mongo, runtime.auth, "app")
    env |= {
        "MONGODB_URI": f"{env['MONGODB_URI']}&loadBalanced=true&srvMaxHosts=3",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency",
    }
    opened = runtime.mongo.connections_opened
    error, exit_code, process = init_error(tmp_path, env)
    assert error is not None, process.logs()
    message = error["errorMessage"]
    assert error["errorType"] == "ConfigurationError"
    assert message.startswith("MONGODB_URI is not a connection string pymongo accepts")
    assert "srvMaxHosts" in message
    assert exit_code not in (None, 0)
    assert runtime.mongo.connections_opened == opened
    assert "Creating the MongoClient" not in process.logs()
    figures.failures_expected(
        "init_error_mongodb_uri", message, "a URI pymongo refuses stops start-up"
    )
