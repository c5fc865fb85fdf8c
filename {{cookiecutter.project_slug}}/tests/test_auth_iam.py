"""IAM authentication (auth.py): the function signs in with MONGODB-AWS as its execution role.

Every connection here is checked as Atlas checks one: the local servers' MONGODB-AWS side sends the
driver's signed sts:GetCallerIdentity to a local STS that checks SigV4 signatures and session tokens
(tests/support/mongodb_aws.py, sts.py), and maps the role STS names to its database user. The
function's environment holds the role's AssumeRole credentials, as Lambda's does, and its URI is
template.yaml's but for the host and port. A wrong secret, a forged session token, a role without
a database user and an STS that cannot be reached are each refused (18, AuthenticationFailed):
the function answers 503 in time, says so in its log without the secret, backs off (503 without a
login) for AUTH_BACKOFF_SECONDS, and signs in on the first request after that once the
credentials are right, because the driver reads them for every new connection.
"""

import contextlib
import json
import time
import uuid

import pytest

from tests.conftest import REGION, function_environment, load_event, package_module
from tests.support import mongodb_aws
from tests.support.lambda_process import LambdaProcess, lambda_environment
from tests.support.project import HANDLER, SRC, deployed_uri
from tests.support.runtime_api import RuntimeAPI

DEADLINE_MS = 2000


@pytest.fixture(scope="session")
def auth(app):
    """The function's auth module, imported with the function's environment (as app is)."""
    return package_module("auth")


BACK_OFF = "The database refused the login; answering 503 without trying again for a while"


@pytest.fixture
def cold(app, monkeypatch):
    """A fresh execution environment: no client yet, no back-off."""
    database = package_module("database")
    monkeypatch.setattr(database, "_client", None)
    monkeypatch.setattr(database, "_refused_until", 0.0)
    monkeypatch.setattr(database, "_used_at", None)
    yield database
    if database._client is not None:
        database._client.close()


def health(app, lambda_context) -> dict:
    return app.handler(load_event("health"), lambda_context(DEADLINE_MS))


def signed_in_as(database, app) -> list[dict]:
    """Who the function's own connection is signed in as, by the server's account."""
    status = database.client(app.settings).admin.command("connectionStatus")
    return [
        {"user": user["user"], "db": user["db"]}
        for user in status["authInfo"]["authenticatedUsers"]
    ]


def test_the_deployed_uri_signs_in_with_mongodb_aws(app):
    query = deployed_uri().partition("?")[2]
    assert "authMechanism=MONGODB-AWS" in query and "authSource=%24external" in query
    assert "authMechanism=MONGODB-AWS" in app.settings.mongodb_uri  # the function's own URI


def test_the_routes_answer_on_a_connection_signed_in_as_the_role(
    app, cold, mongo, local_auth, lambda_context
):
    if not mongo.embedded:
        pytest.skip("MONGODB_TEST_URI signs in as you, not as the local role")
    assert health(app, lambda_context)["statusCode"] == 200
    assert signed_in_as(cold, app) == [{"user": local_auth.role_arn, "db": "$external"}]


def test_one_sts_exchange_per_new_connection_and_none_when_warm(
    app, cold, mongo, local_auth, lambda_context
):
    if not mongo.embedded:
        pytest.skip("the exchanges are counted by the local servers")
    before = local_auth.reads()["sts_exchanges"]
    statuses = [health(app, lambda_context)["statusCode"] for _ in range(10)]
    assert statuses == [200] * 10
    assert local_auth.reads()["sts_exchanges"] - before == 1  # the pool's one connection


def test_the_client_gets_no_credentials(auth):
    assert auth.credentials() == {}
    assert auth.credentials(refresh=True) == {}


def test_a_refused_login_is_not_retried_with_the_same_role(auth):
    assert auth.renewed() is False
    assert auth.ERRORS == ()


@contextlib.contextmanager
def unreachable_sts(mongo):
    """The servers' STS cannot be reached (a closed port) for the time of the block."""
    users = mongo.login.users
    url = mongodb_aws._STS_URL_OF[users[0].username]
    mongodb_aws.serve(users, "http://127.0.0.1:1")
    try:
        yield
    finally:
        mongodb_aws.serve(users, url)


def tampered(local_auth, name: str) -> dict[str, str]:
    """The role's credential `name`, changed: still well formed, no longer the one STS issued."""
    value = local_auth.credentials()[name]
    return {name: value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB")}


FAULTS = {
    "wrong secret": lambda local_auth: tampered(local_auth, "AWS_SECRET_ACCESS_KEY"),
    "forged session token": lambda local_auth: tampered(local_auth, "AWS_SESSION_TOKEN"),
    "role without a database user": lambda local_auth: local_auth.credentials("unmapped"),
    "unreachable STS": lambda local_auth: {},
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_refused_login_is_a_503_in_time_then_the_next_request_signs_in(
    fault, app, cold, mongo, local_auth, lambda_context, function_logs, monkeypatch
):
    if not mongo.embedded:
        pytest.skip("needs the local STS and servers to refuse a login")
    monkeypatch.setattr(cold, "AUTH_BACKOFF_SECONDS", 1.0)
    changes = FAULTS[fault](local_auth)
    refused_before = mongodb_aws.EXCHANGES["refused"]
    with contextlib.ExitStack() as stack:
        if fault == "unreachable STS":
            stack.enter_context(unreachable_sts(mongo))
        with monkeypatch.context() as patch:
            for name, value in changes.items():
                patch.setenv(name, value)
            context = lambda_context(DEADLINE_MS)
            response = app.handler(load_event("health"), context)
            left_ms = context.get_remaining_time_in_millis()
    assert response["statusCode"] == 503, response
    assert json.loads(response["body"]) == {
        "error": "the database is unavailable or too slow; try again"
    }
    assert left_ms > 0, "answered after the deadline"
    assert mongodb_aws.EXCHANGES["refused"] - refused_before == 1
    (record,) = function_logs.records("Database unavailable")
    assert (record["cause"], record["error"]) == ("authentication", "OperationFailure")
    for value in changes.values():
        assert value not in function_logs.text
    assert local_auth.credentials()["AWS_SECRET_ACCESS_KEY"] not in function_logs.text
    # the credentials are right again: during the back-off no login is tried; after it, the same
    # client signs in on its next connection
    client = cold.client(app.settings)
    assert health(app, lambda_context)["statusCode"] == 503
    assert mongodb_aws.EXCHANGES["refused"] - refused_before == 1
    time.sleep(cold.AUTH_BACKOFF_SECONDS)
    assert health(app, lambda_context)["statusCode"] == 200
    assert cold.client(app.settings) is client


def test_a_post_whose_login_is_refused_is_the_plain_503(
    app, cold, mongo, local_auth, lambda_context, monkeypatch
):
    """The login failed, so the insert was never sent: the 503 says try again, with no id."""
    if not mongo.embedded:
        pytest.skip("needs the local STS and servers to refuse a login")
    event = load_event("post-item")
    event["headers"] |= {"idempotency-key": f"order-{uuid.uuid4()}"}
    with monkeypatch.context() as patch:
        for name, value in FAULTS["wrong secret"](local_auth).items():
            patch.setenv(name, value)
        response = app.handler(event, lambda_context(DEADLINE_MS))
    assert (response["statusCode"], json.loads(response["body"])) == (
        503,
        {"error": "the database is unavailable or too slow; try again"},
    )


def test_a_role_without_a_database_user_backs_off_instead_of_a_login_per_request(
    app, cold, mongo, local_auth, lambda_context, function_logs, monkeypatch
):
    """Ten requests as a role Atlas has no user for: one refused login, then 503s that touch
    nothing (without the back-off, every request opened a connection and signed in again)."""
    if not mongo.embedded:
        pytest.skip("needs the local STS and servers to refuse a login")
    for name, value in local_auth.credentials("unmapped").items():
        monkeypatch.setenv(name, value)
    refused, opened = mongodb_aws.EXCHANGES["refused"], mongo.connections_opened

    statuses = [health(app, lambda_context)["statusCode"] for _ in range(10)]

    assert statuses == [503] * 10
    assert mongodb_aws.EXCHANGES["refused"] - refused == 1
    assert len(function_logs.records("Creating the MongoClient")) == 1
    assert mongo.connections_opened - opened <= 2  # the monitor's and the refused login's
    causes = [record["cause"] for record in function_logs.records("Database unavailable")]
    assert causes == ["authentication"] * 10
    (warning,) = function_logs.records(BACK_OFF)
    assert (warning["level"], warning["cause"]) == ("WARNING", "authentication")


def test_new_credentials_of_the_role_sign_in_on_the_next_connection(
    app, cold, mongo, local_auth, lambda_context, monkeypatch
):
    """Lambda's rotation: an environment gets the role's credentials when it starts; the driver
    reads the environment for each new connection, so new ones are used as soon as they exist."""
    if not mongo.embedded:
        pytest.skip("needs the local STS")
    for name, value in local_auth.assume_again().items():
        monkeypatch.setenv(name, value)
    assert health(app, lambda_context)["statusCode"] == 200
    assert signed_in_as(cold, app) == [{"user": local_auth.role_arn, "db": "$external"}]


# ---- under the runtime client: one environment each, in its own process


def run_environment(tmp_path, mongo, local_auth, credentials: dict, name: str):
    """Start the function in a process with these AWS credentials; (api, process)."""
    api = RuntimeAPI().start()
    extra = function_environment(mongo, local_auth, "iam_runtime") | credentials
    env = lambda_environment(api.address, SRC, HANDLER, extra, region=REGION)
    return api, LambdaProcess(env, tmp_path / f"{name}.log").start()


@pytest.mark.slow
def test_an_environment_with_a_wrong_secret_answers_503_and_keeps_serving(
    tmp_path, mongo, local_auth
):
    if not mongo.embedded:
        pytest.skip("needs the local STS and servers to refuse a login")
    credentials = local_auth.credentials() | tampered(local_auth, "AWS_SECRET_ACCESS_KEY")
    api, process = run_environment(tmp_path, mongo, local_auth, credentials, "wrong-secret")
    try:
        results = [api.invoke(load_event("health"), DEADLINE_MS) for _ in range(2)]
    finally:
        process.stop()
        api.stop()
    assert [result.status for result in results] == ["success", "success"], process.logs()[-2000:]
    assert [result.payload["statusCode"] for result in results] == [503, 503]
    assert all(result.margin_ms > 0 for result in results)
    causes = [
        r.get("cause") for r in process.log_records() if r.get("message") == "Database unavailable"
    ]
    assert causes == ["authentication", "authentication"]
    assert credentials["AWS_SECRET_ACCESS_KEY"] not in process.logs()


@pytest.mark.slow
def test_an_environment_started_with_new_credentials_signs_in_with_them(
    tmp_path, mongo, local_auth
):
    if not mongo.embedded:
        pytest.skip("needs the local STS")
    before = local_auth.reads()["sts_exchanges"]
    api, process = run_environment(
        tmp_path, mongo, local_auth, local_auth.assume_again(), "rotated"
    )
    try:
        statuses = [
            api.invoke(load_event("health"), DEADLINE_MS).payload["statusCode"] for _ in range(3)
        ]
    finally:
        process.stop()
        api.stop()
    assert statuses == [200, 200, 200], process.logs()[-2000:]
    assert local_auth.reads()["sts_exchanges"] - before == 1
