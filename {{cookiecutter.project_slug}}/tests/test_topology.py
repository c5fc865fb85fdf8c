"""The function's MongoClient settings against a replica set that behaves like Atlas's: who holds
which connection on which member, what a primary step-down or a hung primary does to a stream of
writes, and how pymongo.timeout bounds connecting (tests/support/replica_set.py). A cold wave of
many environments is test_cold_waves.py's, the limiter itself test_limiter.py's.

The client is built like the function's (database._options: maxIdleTimeMS, timeouts, retryable
reads and writes; the options template.yaml puts in the URI, maxPoolSize=1 and connectTimeoutMS
among them) and monitors in poll mode, as pymongo does on Lambda. With MONGODB_TEST_URI set, the
counting test runs against that deployment (figures from each member's serverStatus) and the
tests that need to step the primary down, hang it or throttle connections are skipped, saying
why.
"""

import collections
import contextlib
import json
import threading
import time

import pymongo
import pytest
from pymongo.errors import PyMongoError

from tests.conftest import REGION, function_environment, load_event, local_only, package_module
from tests.support.lambda_process import LambdaProcess, lambda_environment
from tests.support.project import HANDLER, SRC, deployed_uri_for
from tests.support.replica_set import start_replica_set
from tests.support.runtime_api import RuntimeAPI

ATLAS_M10_RATE = 15  # new connections a second per node (Atlas M10/M20)


@pytest.fixture
def replica_set(app, local_auth):
    """The local replica set (app: the function's modules import with its environment)."""
    deployment = start_replica_set(local_auth.login())
    yield deployment
    deployment.close()


def function_client(deployment, **extra) -> pymongo.MongoClient:
    """A MongoClient with the function's options (template.yaml's URI options, database.py's
    defaults) and poll monitoring, Lambda's; extra: options that override them."""
    config, database = package_module("config"), package_module("database")
    settings = config.Settings(
        mongodb_uri=deployed_uri_for(deployment),
        database="topology_tests",
        function_name="topology-tests",
        region=REGION,
    )
    options = database._options(settings) | {"serverMonitoringMode": "poll"} | extra
    options |= deployment.login.function_options  # IAM: the role's, from the environment
    return pymongo.MongoClient(settings.mongodb_uri, **options)


def wait_until(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_one_client_holds_a_monitor_per_member_and_one_pool_connection_on_the_primary(
    replica_set, figures
):
    if not replica_set.embedded and not getattr(replica_set, "is_replica_set", True):
        pytest.skip("MONGODB_TEST_URI is not a replica set (no replicaSet option)")
    before = {member.address: member.connections_live for member in replica_set.members}
    client = function_client(replica_set)
    try:
        with pymongo.timeout(5):
            inserted = client.topology_tests.items.insert_one({"kind": "probe"}).inserted_id
            assert client.topology_tests.items.find_one({"_id": inserted}) is not None
        primary = replica_set.primary
        expected = {m.address: 2 if m is primary else 1 for m in replica_set.members}

        def added():
            return {m.address: m.connections_live - before[m.address] for m in replica_set.members}

        wait_until(lambda: added() == expected)
        live = added()
        figures.values["topology_connections"] = {
            "primary": live[primary.address],
            "secondaries": [live[member.address] for member in replica_set.secondaries],
        }
        assert live == expected
        if replica_set.embedded:
            monitors = {m.address: len(m.live("monitor")) for m in replica_set.members}
            pools = {m.address: len(m.live("pool")) for m in replica_set.members}
            assert set(monitors.values()) == {1}
            assert pools == {m.address: int(m is primary) for m in replica_set.members}
            records = replica_set.connections()
            assert all(record.tls_version in ("TLSv1.2", "TLSv1.3") for record in records)
            assert all(record.op_codes.keys() == {2013} for record in records)  # OP_MSG only
            assert {record.first_command for record in records} == {"ismaster"}
            figures.values["topology_tls_versions"] = dict(replica_set.tls_versions())
    finally:
        client.close()


def test_step_down_during_writes_loses_no_acknowledged_write_and_fails_only_with_pymongo_errors(
    replica_set, figures
):
    local_only(replica_set)
    client = function_client(replica_set)
    items = client.topology_tests.items
    acknowledged, failed, elapsed = [], [], {}
    started = time.monotonic()
    stepped_down = threading.Event()

    def write_for(seconds: float) -> None:
        number = 0
        while time.monotonic() - started < seconds:
            number += 1
            began = time.monotonic()
            try:
                with pymongo.timeout(2.0):  # the function: the invocation's remaining time - 1 s
                    items.insert_one({"number": number})
                acknowledged.append(number)
            except Exception as error:  # the test checks the type below
                failed.append((number, error, stepped_down.is_set()))
            elapsed[number] = time.monotonic() - began
            time.sleep(0.02)

    try:
        with pymongo.timeout(5):
            items.insert_one({"number": 0})
        old = replica_set.primary
        old_election_id = client.topology_description.server_descriptions()[
            ("127.0.0.1", old.port)
        ].election_id
        writer = threading.Thread(target=write_for, args=(5.5,))
        writer.start()
        time.sleep(1.0)
        elected = replica_set.step_down(election_seconds=3.0)
        stepped_down.set()
        writer.join(30)
        assert replica_set.wait_for_primary(1) is elected is not old

        stored = collections.Counter(
            document["number"]
            for document in replica_set.backend_client().topology_tests.items.find({})
        )
        new_election_id = client.topology_description.server_descriptions()[
            ("127.0.0.1", elected.port)
        ].election_id
    finally:
        client.close()
    figures.failures_expected(
        "step_down",
        shows="writes during the election fail, none is lost",
        value={
            "writes_acknowledged": len(acknowledged),
            "writes_failed": len(failed),
            "failures": sorted({type(error).__name__ for _, error, _ in failed}),
            "longest_write_ms": round(max(elapsed.values()) * 1000),
        },
    )
    assert all(stored[number] == 1 for number in acknowledged), "an acknowledged write is lost"
    assert all(count == 1 for count in stored.values()), "a retried write was applied twice"
    assert failed, "no write overlapped the 3 s election: the test did not test anything"
    assert all(isinstance(error, PyMongoError) for _, error, _ in failed)  # 503, never 500
    assert all(after for _, _, after in failed), "a write failed before the step-down"
    assert acknowledged[-1] > max(number for number, _, _ in failed), "no write after the election"
    assert new_election_id > old_election_id
    # pymongo.timeout bounds every write; server selection re-checks it only every 500 ms.
    assert max(elapsed.values()) < 2.0 + 1.0


def test_a_write_in_flight_at_step_down_is_interrupted_then_retried_and_applied_once(
    replica_set, figures
):
    local_only(replica_set)
    client = function_client(replica_set)
    items = client.topology_tests.items
    outcome = {}

    def write() -> None:
        began = time.monotonic()
        try:
            with pymongo.timeout(5):
                outcome["id"] = items.insert_one({"in_flight": True}).inserted_id
        except PyMongoError as error:
            outcome["error"] = error
        outcome["seconds"] = time.monotonic() - began

    try:
        with pymongo.timeout(5):
            items.insert_one({"in_flight": False})
        old = replica_set.primary
        replica_set.write_latency = 0.6  # the write is applied, its reply held back 0.6 s
        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.3)
        elected = replica_set.step_down(election_seconds=1.0)
        replica_set.write_latency = 0.0
        writer.join(15)
        stored = replica_set.backend_client().topology_tests.items.count_documents(
            {"in_flight": True}
        )
    finally:
        client.close()
    interrupted = sum(record.errors[11602] for record in old.connections)
    figures.values["write_in_flight_at_step_down"] = {
        "outcome": "acknowledged" if "id" in outcome else type(outcome.get("error")).__name__,
        "ms": round(outcome["seconds"] * 1000),
    }
    assert "error" not in outcome, outcome
    assert interrupted == 1  # InterruptedDueToReplStateChange, with RetryableWriteError
    assert stored == 1  # the retry on the new primary was answered, not applied again
    assert elected.connections and any(record.kind == "pool" for record in elected.connections)
    assert 1.0 <= outcome["seconds"] < 5.0


# the monitors before the connection budget set their connect timeout, and as deployed now
MONITORS = {
    "3s-monitors": {"connectTimeoutMS": 3000, "heartbeatFrequencyMS": 10_000},
    "deployed": {},
}


@pytest.mark.slow
@pytest.mark.parametrize("monitors", list(MONITORS))
def test_a_primary_that_hangs_is_left_for_the_elected_one_within_a_heartbeat(
    replica_set, monitors, figures
):
    """A partition: the primary stops answering without refusing anything, and the other members
    elect a new one. Writes fail (pymongo.timeout ends each) until the client learns of the new
    primary: when a monitor of another member reports it at its next check, or when the hung
    primary's own monitor gives up on its check after connectTimeoutMS (a selection that then
    finds no primary asks every monitor to check at once). So the long connect timeout the
    budget gives monitors on M10/M20 would leave writes failing for up to a heartbeat after the
    election; the deployed heartbeat is half the driver's to shorten that. Both settings run: the
    time to the first write on the new primary is reported, and bounded by the election plus
    one heartbeat plus the write under way then."""
    local_only(replica_set)
    client = function_client(replica_set, **MONITORS[monitors])
    items = client.topology_tests.items
    heartbeat_seconds = client.options.heartbeat_frequency
    election_seconds, write_timeout = 2.0, 2.0
    old = replica_set.primary
    outcomes: list[tuple[float, bool]] = []
    try:
        with pymongo.timeout(5):
            items.insert_one({"hung": False})
        hung_at = time.monotonic()
        old.hanging = True
        elected = replica_set.step_down(election_seconds=election_seconds)
        deadline = hung_at + election_seconds + heartbeat_seconds + 15
        while time.monotonic() < deadline and not any(ok for _, ok in outcomes):
            try:
                with pymongo.timeout(write_timeout):
                    items.insert_one({"hung": True})
                outcomes.append((time.monotonic() - hung_at, True))
            except PyMongoError:
                outcomes.append((time.monotonic() - hung_at, False))
        assert replica_set.wait_for_primary(1) is elected
        connect_timeout_ms = round(client.options.pool_options.connect_timeout * 1000)
    finally:
        old.hanging = False
        client.close()
    recovered = next((seconds for seconds, ok in outcomes if ok), None)
    figures.failures_expected(
        f"hung_primary_{monitors}",
        shows="writes fail until the monitors find the new primary",
        value={
            "connect_timeout_ms": connect_timeout_ms,
            "heartbeat_ms": round(heartbeat_seconds * 1000),
            "election_after_ms": round(election_seconds * 1000),
            "first_write_after_ms": None if recovered is None else round(recovered * 1000),
            "writes_failed_meanwhile": sum(1 for _, ok in outcomes if not ok),
        },
    )
    assert recovered is not None, "no write reached the new primary"
    assert recovered < election_seconds + heartbeat_seconds + write_timeout + 1.0


def test_a_burst_of_cold_starts_is_bounded_by_the_operation_timeout(
    app, local_auth, figures, monkeypatch
):
    """30 new clients at once against members limited to 15 new connections a second: the
    primary must admit 60 (a monitor and a pool connection each), about 3 s of tokens. Under
    pymongo.timeout(1.5) every request ends within that 1.5 s (plus pymongo's 500 ms re-check),
    not after serverSelectionTimeoutMS (5 s) or connectTimeoutMS: inside pymongo.timeout the
    remaining time replaces both for the request's own connection and server selection."""
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")  # pymongo sees Lambda
    deployment = start_replica_set(local_auth.login(), new_connections_per_second=ATLAS_M10_RATE)
    results: list = [None] * 30
    try:
        local_only(deployment)
        clients = [function_client(deployment) for _ in results]
        start = threading.Barrier(len(results))

        def cold_start(index: int) -> None:
            start.wait()
            began = time.monotonic()
            try:
                with pymongo.timeout(1.5):
                    clients[index].topology_tests.items.insert_one({"client": index})
                results[index] = (None, time.monotonic() - began)
            except Exception as error:  # the test checks the type below
                results[index] = (error, time.monotonic() - began)

        threads = [threading.Thread(target=cold_start, args=(i,)) for i in range(len(results))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        for client in clients:
            client.close()
        primary = deployment.primary
    finally:
        deployment.close()
    failed = [(error, seconds) for error, seconds in results if error is not None]
    figures.failures_expected(
        "burst_of_30_cold_starts",
        shows="the clients the limiter cannot admit within 1.5 s fail fast",
        value={
            "timeout_s": 1.5,
            "acknowledged": len(results) - len(failed),
            "failed": dict(collections.Counter(type(error).__name__ for error, _ in failed)),
            "longest_ms": round(max(seconds for _, seconds in results) * 1000),
            "primary_queued": primary.queued,
            "primary_longest_queue_wait_ms": round(primary.longest_queue_wait * 1000),
        },
    )
    assert failed, "60 connections at 15/s cannot all be admitted within 1.5 s"
    assert all(isinstance(error, PyMongoError) for error, _ in failed)  # 503, never 500
    assert all(seconds < 1.5 + 1.0 for _, seconds in results)  # not 5 s, not connectTimeoutMS
    assert primary.queued > 0 and primary.limiter.dropped == 0


# ---- the function itself ------------------------------------------------------------------------
# The tests above drive a client built like the function's; these run the function: its handler
# under the real runtime client (awslambdaric), one execution environment (test_cold_waves.py
# starts many at once).


@contextlib.contextmanager
def running_function(deployment, local_auth, tmp_path, name: str):
    """One execution environment of the function, named `name` (its MongoClient's appname)."""
    api = RuntimeAPI().start()
    extra = function_environment(deployment, local_auth, "topology_function")
    env = lambda_environment(api.address, SRC, HANDLER, extra, function_name=name)
    process = LambdaProcess(env, tmp_path / f"{name}.log").start()
    try:
        yield api, process
    finally:
        process.stop()
        api.stop()


def records_of(deployment, name: str) -> list:
    """The live connections the function named `name` holds, as the members saw them."""
    return [
        record
        for record in deployment.connections()
        if record.live and (record.client or {}).get("application", {}).get("name") == name
    ]


@pytest.mark.slow
def test_the_function_holds_a_monitor_per_member_and_its_pool_on_the_primary(
    replica_set, local_auth, tmp_path, figures
):
    local_only(replica_set)
    name = "topology-one-environment"
    with running_function(replica_set, local_auth, tmp_path, name) as (api, process):
        events = ["health", "post-item", "health", "post-item", "health"]
        statuses = [api.invoke(load_event(event), 5000).payload["statusCode"] for event in events]
        assert statuses == [200, 201, 200, 201, 200], process.logs()[-2000:]
        primary = replica_set.primary
        expected = {
            (member.address, kind): (1 if kind == "monitor" or member is primary else 0)
            for member in replica_set.members
            for kind in ("monitor", "pool")
        }

        def counted():
            found = collections.Counter((r.member, r.kind) for r in records_of(replica_set, name))
            return {key: found.get(key, 0) for key in expected}

        wait_until(lambda: counted() == expected)
        held = counted()
        tls = {record.tls_version for record in records_of(replica_set, name)}
    figures.values["function_connections_per_member"] = {
        "primary": {kind: held[(primary.address, kind)] for kind in ("monitor", "pool")},
        "secondaries": [
            {kind: held[(member.address, kind)] for kind in ("monitor", "pool")}
            for member in replica_set.secondaries
        ],
        "tls": sorted(tls),
    }
    assert held == expected
    assert tls <= {"TLSv1.2", "TLSv1.3"} and None not in tls


@pytest.mark.slow
def test_a_failover_during_the_functions_writes_stores_every_acknowledged_one(
    replica_set, local_auth, tmp_path, figures
):
    local_only(replica_set)
    name = "topology-failover"
    outcomes: list[tuple[int, str | None, bool]] = []
    election = threading.Event()
    with running_function(replica_set, local_auth, tmp_path, name) as (api, _):
        assert api.invoke(load_event("post-item"), 5000).payload["statusCode"] == 201

        def write(seconds: float) -> None:
            started = time.monotonic()
            number = 0
            while time.monotonic() - started < seconds:
                number += 1
                event = load_event("post-item") | {"body": json.dumps({"failover": number})}
                payload = api.invoke(event, 3000).payload or {}
                created = json.loads(payload.get("body") or "{}").get("id")
                outcomes.append((payload.get("statusCode"), created, election.is_set()))

        writer = threading.Thread(target=write, args=(7.0,))
        writer.start()
        time.sleep(1.0)
        old = replica_set.primary
        elected = replica_set.step_down(election_seconds=3.0)
        election.set()
        writer.join(60)
        assert replica_set.wait_for_primary(1) is elected is not old
        stored = {
            str(document["_id"])
            for document in replica_set.backend_client().topology_function.items.find(
                {"failover": {"$exists": True}}
            )
        }
    statuses = collections.Counter(status for status, _, _ in outcomes)
    figures.failures_expected(
        "failover_through_the_function",
        shows="the function answers 503 during the election, then 201",
        value={
            "invocations": len(outcomes),
            "statuses": dict(statuses),
            "acknowledged_stored": sum(1 for _, created, _ in outcomes if created in stored),
        },
    )
    assert set(statuses) <= {201, 503}, statuses  # never a 500
    acknowledged = [created for status, created, _ in outcomes if status == 201]
    assert acknowledged and all(created in stored for created in acknowledged)
    during = [status for status, _, after in outcomes if after]
    assert during and during[-3:] == [201, 201, 201], "writes must succeed again after the election"
    assert all(status == 201 for status, _, after in outcomes if not after)
