"""Start-up settings: what the function needs from its environment, and what it says if absent."""

import pytest
from pymongo import MongoClient

from tests.conftest import package_module

config = package_module("config")


@pytest.fixture(scope="module")
def database(app):
    """The function's database module, imported with the function's environment (as app is)."""
    return package_module("database")


ENV = {
    "AWS_REGION": "eu-west-1",
    "MONGODB_URI": "mongodb://db.example.net/?authSource=admin",
    "MONGODB_DATABASE": "app",
    "AWS_LAMBDA_FUNCTION_NAME": "orders-fn",
}


def test_missing_aws_region_names_it_and_says_why():
    env = {name: value for name, value in ENV.items() if name != "AWS_REGION"}
    with pytest.raises(config.ConfigurationError) as raised:
        config.load(env)
    message = str(raised.value)
    assert message.startswith("AWS_REGION is not set")
    assert "Lambda sets it" in message


@pytest.mark.parametrize("name", ["MONGODB_URI", "MONGODB_DATABASE"])
def test_missing_connection_settings_are_named(name):
    env = {key: value for key, value in ENV.items() if key != name}
    with pytest.raises(config.ConfigurationError, match=f"^{name} is not set"):
        config.load(env)


def test_settings_come_from_the_environment():
    settings = config.load(ENV)
    assert (settings.region, settings.database, settings.function_name) == (
        "eu-west-1",
        "app",
        "orders-fn",
    )


def test_client_options_fill_in_what_the_uri_leaves_out(database):
    options = database._options(config.load(ENV))
    assert options == {
        "maxIdleTimeMS": 60_000,
        "maxPoolSize": 2,
        "serverSelectionTimeoutMS": 5_000,
        "connectTimeoutMS": 3_000,
        "appname": "orders-fn",
        "retryWrites": True,
        "retryReads": True,
    }


def test_the_uri_options_win_over_the_defaults(database):
    uri = "mongodb+srv://c.example.net/?maxPoolSize=1&maxIdleTimeMS=5000&w=majority"
    options = database._options(config.load(ENV | {"MONGODB_URI": uri}))
    assert "maxPoolSize" not in options
    assert "maxIdleTimeMS" not in options
    assert options["appname"] == "orders-fn"


DEPLOYED_AUTH = {
    "iam": ("authSource=%24external&authMechanism=MONGODB-AWS", {}),
    "scram": ("authMechanism=SCRAM-SHA-256&authSource=admin", {"username": "u", "password": "p"}),
}


@pytest.mark.parametrize(("auth", "credentials"), DEPLOYED_AUTH.values(), ids=DEPLOYED_AUTH)
def test_the_deployed_uri_and_the_code_defaults_make_a_lambda_sized_client(
    database, auth, credentials
):
    uri = f"mongodb://cluster0.example.net/?{auth}&retryWrites=true&w=majority&maxPoolSize=1"
    options = database._options(config.load(ENV | {"MONGODB_URI": uri}))
    client = MongoClient(uri, connect=False, **options, **credentials)
    try:
        settings = client.options
        assert settings.pool_options.max_pool_size == 1
        assert settings.pool_options.max_idle_time_seconds == 60
        assert settings.pool_options.metadata["application"] == {"name": "orders-fn"}
        assert settings.server_selection_timeout == 5
        assert settings.pool_options.connect_timeout == 3
        assert settings.retry_writes
        assert settings.retry_reads
        assert settings.write_concern.document == {"w": "majority"}
    finally:
        client.close()
