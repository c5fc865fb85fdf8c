"""SnapStart's runtime hooks (snapshot.py): registered by importing the handler's module; before
the snapshot nothing of the database or AWS is left; after each restore the ObjectId state and
`random` are drawn again (and the environment refuses to start if bson keeps them elsewhere);
environments restored from one snapshot store every write once; the real runtime client runs the
hooks around a restore; credentials from the container credentials endpoint are read again after
it. The client is created during initialisation throughout: the case the hooks must make safe.
Controls without the hooks show what they prevent.
"""

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from bson import ObjectId
from snapshot_restore_py import get_after_restore, get_before_snapshot

from tests.conftest import (
    METRICS_NAMESPACE,
    REGION,
    function_environment,
    load_event,
    package_module,
)
from tests.support import auth
from tests.support.lambda_process import FAKE_KEYS, LambdaProcess, lambda_environment
from tests.support.project import ROOT, SRC
from tests.support.replica_set import start_replica_set
from tests.support.restore import simulate
from tests.support.runtime_api import RuntimeAPI

ENVIRONMENTS = 3
WRITES = 5
INIT_HANDLER = "tests.support.snap_init.handler"
MOVED = ("_pid", "_inc", "_inc_lock", "_ObjectId__random")


@pytest.fixture(scope="module")
def replica_set(local_auth):
    deployment = start_replica_set(local_auth.login())
    yield deployment
    deployment.close()


def environment(deployment, local_auth, database: str, **extra) -> dict[str, str]:
    """The function's environment, as Lambda and template.yaml set it, on the deployment; extra
    variables override (None removes one)."""
    variables = function_environment(deployment, local_auth, database) | {
        "POWERTOOLS_SERVICE_NAME": "items",
        "POWERTOOLS_TRACE_DISABLED": "true",  # no runtime here to hand out trace ids
    }
    return lambda_environment("127.0.0.1:9", SRC, INIT_HANDLER, variables | extra, region=REGION)


def in_function(env: dict[str, str], code: str) -> subprocess.CompletedProcess:
    """Run code in a process of its own with the function's environment."""
    variables = env | {"PYTHONPATH": os.pathsep.join([str(SRC), str(ROOT)])}
    return subprocess.run(
        [sys.executable, "-c", code],
        env=variables,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def last_json(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def stored_ids(deployment, database: str) -> list[ObjectId]:
    with contextlib.closing(deployment.backend_client()) as client:
        return [document["_id"] for document in client[database]["items"].find({}, {"_id": 1})]


def emf(records: list[dict], name: str) -> list[dict]:
    return [record for record in records if "_aws" in record and name in record]


# -- registration and the hooks themselves


def test_importing_the_handler_module_registers_both_hooks(app):
    snapshot = package_module("snapshot")
    assert snapshot.handler is app.handler
    assert snapshot.forget_connections in [hook for hook, _, _ in get_before_snapshot()]
    assert snapshot.renew in [hook for hook, _, _ in get_after_restore()]


# Established TCP connections of this process, from /proc (the kernel's view: what a snapshot keeps)
OPEN_TCP = """
import os


def open_tcp():
    inodes = set()
    for name in ("tcp", "tcp6"):
        for line in open(f"/proc/net/{name}").read().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01":
                inodes.add(fields[9])
    mine = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            mine.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # closed meanwhile (listdir's own, or a thread's)
            pass
    return sum(1 for link in mine if link.startswith("socket:[") and link[8:-1] in inodes)
"""


BEFORE_SNAPSHOT = """
import importlib, json, threading
from awslambdaric import lambda_runtime_hooks_runner
import tests.support.snap_init
from tests.support.project import PACKAGE
database = importlib.import_module(PACKAGE + ".database")
auth = importlib.import_module(PACKAGE + ".auth")
observability = importlib.import_module(PACKAGE + ".observability")

def state():
    return dict(
        client=database._client is not None,
        threads=sorted(t.name for t in threading.enumerate() if t.name.startswith("pymongo_")),
        tcp=open_tcp(),
        secret=getattr(auth, "_cached", None) is not None,
        sdk_client=getattr(auth, "_SECRETS", None) is not None,
    )

before = state()
lambda_runtime_hooks_runner.run_before_snapshot()
after = state()
print(json.dumps(dict(before=before, after=after, untaken=observability.connections.take())))
"""


def test_before_the_snapshot_no_client_connection_thread_or_credentials_are_left(
    replica_set, local_auth
):
    env = environment(replica_set, local_auth, "before_snapshot")
    code = OPEN_TCP + BEFORE_SNAPSHOT
    found = last_json(in_function(env, code))
    before, after = found["before"], found["after"]
    assert before["client"] and before["threads"] and before["tcp"] >= 1, before
    assert before["secret"] == before["sdk_client"] == (auth.MODE == "scram"), before
    assert after == {"client": False, "threads": [], "tcp": 0, "secret": False, "sdk_client": False}
    assert found["untaken"] == 0  # init's connections are no restored environment's to publish


RENEWAL = """
import json, random
from bson.objectid import ObjectId
from tests.support import snap_init
state = lambda: {"value": ObjectId._ObjectId__random.hex(), "counter": ObjectId._inc}
before, draw = state(), random.getstate()
snap_init.snapshot.renew()
after = state()
made = ObjectId().binary[4:9].hex()
print(json.dumps({"before": before, "after": after, "made": made,
                  "random_renewed": random.getstate() != draw}))
"""


def test_after_restore_renews_the_object_id_value_and_counter_and_random(replica_set, local_auth):
    found = last_json(in_function(environment(replica_set, local_auth, "renewal"), RENEWAL))
    before, after = found["before"], found["after"]
    assert after["value"] != before["value"] and found["made"] == after["value"]
    assert after["counter"] != before["counter"]
    assert found["random_renewed"]


@pytest.mark.parametrize("name", MOVED)
def test_after_restore_fails_loudly_when_bson_keeps_its_state_elsewhere(
    replica_set, local_auth, name
):
    env = environment(replica_set, local_auth, "moved", MOVE_OBJECT_ID_STATE=name)
    done = in_function(env, "from tests.support import snap_init; snap_init.snapshot.renew()")
    assert done.returncode != 0
    assert f"RuntimeError: bson's ObjectId has no {name}" in done.stderr, done.stderr[-2000:]


def test_after_restore_fails_loudly_when_bson_ignores_the_renewed_value(replica_set, local_auth):
    code = (
        "from bson.objectid import ObjectId\n"
        "from tests.support import snap_init\n"
        "ObjectId._random = classmethod(lambda cls: b'fixed')\n"
        "snap_init.snapshot.renew()\n"
    )
    done = in_function(environment(replica_set, local_auth, "ignored"), code)
    assert done.returncode != 0
    assert "did not take the renewed process value" in done.stderr, done.stderr[-2000:]


# -- environments restored from one snapshot


@pytest.mark.slow
def test_restored_environments_store_every_write_once_with_distinct_ids(
    replica_set, local_auth, tmp_path, figures
):
    env = environment(replica_set, local_auth, "restored")
    outcome = simulate(env, tmp_path / "run", environments=ENVIRONMENTS, writes=WRITES)
    assert outcome.parent["client_during_init"] and not outcome.parent["client_after_hooks"]
    answers = [answer for child in outcome.environments for answer in child["answers"]]
    assert [answer["status"] for answer in answers] == [201] * ENVIRONMENTS * WRITES, answers
    acknowledged = [ObjectId(answer["body"]["id"]) for answer in answers]
    stored = stored_ids(replica_set, "restored")
    assert len(set(acknowledged)) == len(acknowledged)  # no id twice
    assert sorted(stored) == sorted(acknowledged)  # every acknowledged write stored, once
    # the environments' first writes fell in the same second: without the hooks, the same ids
    firsts = {
        ObjectId(child["answers"][0]["body"]["id"]).generation_time
        for child in outcome.environments
    }
    assert len(firsts) == 1, firsts
    assert len({child["random"] for child in outcome.environments}) == ENVIRONMENTS
    # ColdStart: once per restored environment, on its first invocation; MongoConnectionsCreated:
    # the one connection each opened (maxPoolSize=1), none of initialisation's
    for child in outcome.environments:
        assert len(emf(child["records"], "ColdStart")) == 1
        created = emf(child["records"], "MongoConnectionsCreated")
        assert [record["MongoConnectionsCreated"] for record in created] == [[1.0]], created
    figures.values["restored_environments"] = {
        "environments": ENVIRONMENTS,
        "writes": len(answers),
        "acknowledged": len(acknowledged),
        "stored": len(stored),
    }


@pytest.mark.slow
def test_control_without_the_hooks_restored_environments_repeat_ids(
    replica_set, local_auth, tmp_path, figures
):
    env = environment(replica_set, local_auth, "control")
    outcome = simulate(env, tmp_path / "run", environments=ENVIRONMENTS, writes=WRITES, hooks=False)
    answers = [answer for child in outcome.environments for answer in child["answers"]]
    refused = [answer for answer in answers if answer["status"] != 201]
    stored = stored_ids(replica_set, "control")
    # the same _ids in every environment: the later writes of each id are refused, blamed on the
    # caller (the id taken by another body reads as a reused Idempotency-Key, 422)
    assert refused, answers
    assert all(answer["status"] in (400, 422) for answer in refused), refused
    assert len(stored) == len(answers) - len(refused) < len(answers)
    assert len({child["random"] for child in outcome.environments}) == 1  # one random state
    figures.failures_expected(
        "restored_without_hooks",
        {"writes": len(answers), "refused": len(refused), "stored": len(stored)},
        "restored environments repeat _ids without the hooks",
    )


@pytest.mark.slow
def test_a_handler_run_during_initialisation_leaves_each_restored_environment_its_cold_start(
    replica_set, local_auth, tmp_path
):
    env = environment(replica_set, local_auth, "primed")
    outcome = simulate(env, tmp_path / "run", environments=2, writes=2, prime=True)
    assert outcome.parent["primed"] == 200  # Powertools counted that invocation's cold start
    for child in outcome.environments:
        assert [answer["status"] for answer in child["answers"]] == [201, 201]
        assert len(emf(child["records"], "ColdStart")) == 1


# -- under the real runtime client


@contextlib.contextmanager
def snap_start_function(tmp_path, deployment, local_auth, database: str, **extra):
    api = RuntimeAPI(sampled=False).start()
    env = environment(deployment, local_auth, database, **extra)
    env |= {
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
        "PYTHONPATH": os.pathsep.join([str(SRC), str(ROOT)]),
    }
    process = LambdaProcess(env, tmp_path / "function.log").start()
    try:
        yield api, process
    finally:
        process.stop()
        api.stop()


def live_connections(deployment) -> int:
    return sum(member.connections_live for member in deployment.members)


@pytest.mark.slow
def test_the_runtime_client_runs_the_hooks_around_a_restore_then_serves(
    replica_set, local_auth, tmp_path
):
    running = snap_start_function(tmp_path, replica_set, local_auth, "runtime_restore")
    with running as (api, process):
        assert api.snapshot_taken.wait(15), process.logs()[-3000:]
        deadline = time.monotonic() + 3
        while live_connections(replica_set) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live_connections(replica_set) == 0  # the snapshot holds no connection
        assert not api.runtime_waiting.is_set()
        api.restore()
        first = api.invoke(load_event("post-item"), 5000)
        second = api.invoke(load_event("post-item"), 5000)
        assert [first.status, second.status] == ["success", "success"], process.logs()[-3000:]
        assert [first.payload["statusCode"], second.payload["statusCode"]] == [201, 201]
        records = process.log_records()
    messages = [record.get("message") for record in records]
    order = [
        "Function environment initialised",
        "Creating the MongoClient",  # during initialisation (tests/support/snap_init.py)
        "Snapshot: the database client and the credentials are dropped",
        "Restored: ObjectId state and random renewed",
        "Creating the MongoClient",
    ]
    found = [message for message in messages if message in order]
    assert found[: len(order)] == order, messages
    assert api.wait_restore_error(0) is None
    cold = emf(records, "ColdStart")
    assert len(cold) == 1 and cold[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == (
        METRICS_NAMESPACE
    )


@pytest.mark.slow
def test_a_failing_after_restore_hook_is_reported_and_nothing_is_served(
    replica_set, local_auth, tmp_path
):
    with snap_start_function(
        tmp_path, replica_set, local_auth, "failed_restore", MOVE_OBJECT_ID_STATE="_inc"
    ) as (api, process):
        assert api.snapshot_taken.wait(15), process.logs()[-3000:]
        api.restore()
        error = api.wait_restore_error(10)
        assert error is not None, process.logs()[-3000:]
        assert api.restore_error_type == "Runtime.AfterRestoreError"
        assert error["errorType"] == "RuntimeError"
        assert "bson's ObjectId has no _inc" in error["errorMessage"]
        assert process.wait(5) == 65  # awslambdaric's exit after a restore error
        assert api.invocations == 0 and not api.runtime_waiting.is_set()
    assert stored_ids(replica_set, "failed_restore") == []


# -- credentials from the container credentials endpoint


class ContainerCredentials:
    """The container credentials endpoint Lambda gives a SnapStart function
    (AWS_CONTAINER_CREDENTIALS_FULL_URI, with AWS_CONTAINER_AUTHORIZATION_TOKEN in the
    Authorization header), as botocore's ContainerProvider reads it
    (botocore/credentials.py, ContainerMetadataFetcher): JSON with AccessKeyId, SecretAccessKey,
    Token and Expiration. Each request's time is kept."""

    TOKEN = "container-token"  # a local test value

    def __init__(self, credentials: dict[str, str]) -> None:
        self.credentials = credentials
        self.reads: list[float] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):
                pass

            def do_GET(self):
                if self.headers.get("Authorization") != owner.TOKEN:
                    self.send_response(401)
                    self.end_headers()
                    return
                owner.reads.append(time.time())
                expiration = datetime.now(UTC) + timedelta(hours=6)
                body = json.dumps(
                    owner.credentials | {"Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ")}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def variables(self) -> dict[str, str | None]:
        """The function's variables: the endpoint, and no access-key variables at all."""
        port = self._server.server_address[1]
        return dict.fromkeys(FAKE_KEYS) | {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://127.0.0.1:{port}/credentials",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": self.TOKEN,
        }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def container_credentials(local_auth):
    if auth.MODE == "iam":  # the function's role, which the MONGODB-AWS stand-in knows
        keys = local_auth.credentials()
        credentials = {
            "AccessKeyId": keys["AWS_ACCESS_KEY_ID"],
            "SecretAccessKey": keys["AWS_SECRET_ACCESS_KEY"],
            "Token": keys["AWS_SESSION_TOKEN"],
        }
    else:
        credentials = {"AccessKeyId": "testing", "SecretAccessKey": "testing", "Token": "testing"}
    endpoint = ContainerCredentials(credentials)
    yield endpoint
    endpoint.close()


@pytest.mark.slow
@pytest.mark.parametrize("hooks", [True, False], ids=["hooks", "control-without-hooks"])
def test_container_credentials_are_read_again_after_a_restore(
    replica_set, local_auth, container_credentials, tmp_path, hooks
):
    database = f"container_{'hooks' if hooks else 'control'}"
    env = environment(replica_set, local_auth, database, **container_credentials.variables)
    outcome = simulate(env, tmp_path / "run", environments=1, writes=1, hooks=hooks)
    (child,) = outcome.environments
    assert [answer["status"] for answer in child["answers"]] == [201], child
    assert len(stored_ids(replica_set, database)) == 1
    during_init = [at for at in container_credentials.reads if at < outcome.snapshot_at]
    after_restore = [at for at in container_credentials.reads if at > child["restored_at"]]
    assert during_init  # the client created during initialisation signed in with them
    if hooks:
        assert after_restore  # the restored environment read its own
    else:
        assert not after_restore  # the snapshot's, reused: what the hooks prevent
