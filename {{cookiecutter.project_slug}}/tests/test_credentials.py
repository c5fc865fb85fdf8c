"""The database secret (scram projects): read once, kept for the environment's life, re-read once
when the database rejects it (a rotation), never logged."""

import dataclasses
import json
import uuid

import pytest

from tests.conftest import package_module

credentials = package_module("credentials")
database = package_module("database")


@pytest.fixture(scope="session")
def secrets_manager(local_auth):
    return local_auth.secrets_manager


@pytest.fixture
def cold(app, monkeypatch):
    """A fresh execution environment: no cached secret, no client yet."""
    monkeypatch.setattr(credentials, "_cached", None)
    monkeypatch.setattr(database, "_client", None)
    yield
    if database._client is not None:
        database._client.close()


def use_secret(app, monkeypatch, secrets_manager, value) -> str:
    arn = secrets_manager.create_secret(f"db-{uuid.uuid4()}", value)
    monkeypatch.setattr(app, "settings", dataclasses.replace(app.settings, secret_arn=arn))
    return arn


def health(app, event, lambda_context) -> int:
    return app.handler(event("health"), lambda_context())["statusCode"]


def test_secret_is_read_once_for_many_invocations(
    app, cold, mongo, secrets_manager, monkeypatch, event, lambda_context
):
    secret = {"username": mongo.username, "password": mongo.password}
    use_secret(app, monkeypatch, secrets_manager, secret)
    before = secrets_manager.reads
    statuses = {health(app, event, lambda_context) for _ in range(10)}
    assert statuses == {200}
    assert secrets_manager.reads - before == 1


def test_rotated_secret_is_read_again_once(
    app, cold, mongo, secrets_manager, monkeypatch, event, lambda_context, capsys
):
    stale = {"username": mongo.username, "password": "before-rotation"}
    arn = use_secret(app, monkeypatch, secrets_manager, stale)
    credentials.get(arn)
    secrets_manager.put_secret_value(arn, {"username": mongo.username, "password": mongo.password})
    before = secrets_manager.reads

    assert health(app, event, lambda_context) == 200
    assert secrets_manager.reads - before == 1
    assert health(app, event, lambda_context) == 200
    assert secrets_manager.reads - before == 1
    assert mongo.password not in capsys.readouterr().out


def test_wrong_secret_is_503_after_one_re_read(
    app, cold, mongo, secrets_manager, monkeypatch, event, lambda_context, capsys
):
    use_secret(app, monkeypatch, secrets_manager, {"username": mongo.username, "password": "wrong"})
    before = secrets_manager.reads
    assert health(app, event, lambda_context) == 503
    assert secrets_manager.reads - before == 2
    assert '"wrong"' not in capsys.readouterr().out


def test_secret_without_a_password_is_503(
    app, cold, secrets_manager, monkeypatch, event, lambda_context
):
    use_secret(app, monkeypatch, secrets_manager, {"username": "app"})
    assert health(app, event, lambda_context) == 503


def test_password_is_not_in_the_credentials_repr():
    secret = credentials.Credentials(username="app", password=json.dumps("s3cret"))
    assert "s3cret" not in repr(secret)
